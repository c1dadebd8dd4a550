//! Validation: turns the raw TOML shape into a [`Catalogue`], rejecting anything questionable
//! with an error naming the offending entry (see [`Catalogue::parse`] for the rules).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::schema::{RawCatalogue, VENDOR_KEYS};
use super::{
    Canary, Catalogue, CatalogueError, Category, CloakVendor, HostStatus, Vendor, VendorCategory,
};
use crate::lists::name;

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> CatalogueError {
    CatalogueError::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A TOML key as it would be written in a dotted path: bare when possible, else quoted.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Where a vendor host was first seen.
struct Seen {
    path: String,
    status: HostStatus,
}

impl RawCatalogue {
    pub(super) fn validate(self) -> Result<Catalogue, CatalogueError> {
        if let Some(v) = self.schema_version
            && v != 1
        {
            return Err(invalid(
                "schema_version",
                format!("unsupported version {v}; expected 1"),
            ));
        }
        if let Some(m) = &self.match_kind
            && m != "suffix"
        {
            return Err(invalid(
                "match",
                format!("unsupported match {m:?}; expected \"suffix\""),
            ));
        }
        for (tag, text) in &self.sources {
            if text.trim().is_empty() {
                return Err(invalid(
                    format!("sources.{}", key(tag)),
                    "empty description",
                ));
            }
        }
        let sources = &self.sources;

        let mut vendors = Vec::with_capacity(self.vendor.0.len());
        let mut seen: HashMap<String, Seen> = HashMap::new();
        // `do_not_block` hosts: infrastructure nothing may be blocked under (host -> path).
        let mut infra: HashMap<String, String> = HashMap::new();
        for (id, raw) in self.vendor.0 {
            let vpath = format!("vendor.{}", key(&id));
            check_id(&vpath, &id)?;
            let name = match raw.head {
                Some(n) if !n.trim().is_empty() => n,
                Some(_) => return Err(invalid(format!("{vpath}.name"), "empty name")),
                None => return Err(invalid(format!("{vpath}.name"), "missing vendor name")),
            };
            if raw.sections.is_empty() {
                return Err(invalid(vpath, "vendor has no category table"));
            }
            let mut categories = Vec::with_capacity(raw.sections.len());
            for (cat_id, c) in raw.sections {
                let cpath = format!("{vpath}.{cat_id}");
                let category = Category::from_id(&cat_id).ok_or_else(|| {
                    invalid(
                        &cpath,
                        format!("unknown category; expected one of {VENDOR_KEYS:?}"),
                    )
                })?;
                check_sources(&format!("{cpath}.sources"), &c.sources, sources)?;
                if c.block.is_empty() && c.caution.is_empty() && c.shared.is_empty() {
                    return Err(invalid(cpath, "no block, caution or shared hosts"));
                }
                for (status, hosts) in [
                    (HostStatus::Block, &c.block),
                    (HostStatus::Caution, &c.caution),
                    (HostStatus::Shared, &c.shared),
                ] {
                    for (i, host) in hosts.iter().enumerate() {
                        let path = format!("{cpath}.{status}[{i}]");
                        check_host(&path, host)?;
                        if category == Category::DoNotBlock {
                            infra.insert(host.clone(), path.clone());
                        }
                        if category == Category::ServerSide {
                            // Watched, never blocked: a server-side endpoint is often also a
                            // browser collector listed in another category.
                            if status != HostStatus::Shared {
                                return Err(invalid(
                                    path,
                                    "server_side hosts are watched, never blocked: list them as shared",
                                ));
                            }
                            continue;
                        }
                        record(&mut seen, host, path, status)?;
                    }
                }
                for (i, p) in c.shared_paths.iter().enumerate() {
                    if !p.starts_with('/') {
                        return Err(invalid(
                            format!("{cpath}.shared_paths[{i}]"),
                            format!("path {p:?} must start with '/'"),
                        ));
                    }
                }
                if !c.shared_paths.is_empty() && c.shared.is_empty() {
                    return Err(invalid(
                        format!("{cpath}.shared_paths"),
                        "shared_paths without any shared host",
                    ));
                }
                categories.push(VendorCategory {
                    category,
                    block: c.block,
                    caution: c.caution,
                    shared: c.shared,
                    shared_paths: c.shared_paths,
                    sources: c.sources,
                    notes: c.notes,
                });
            }
            vendors.push(Vendor {
                id,
                name,
                categories,
            });
        }
        check_shared_not_covered(&seen)?;
        check_infra_not_blocked(&seen, &infra)?;

        let mut cloak = Vec::new();
        if let Some(raw) = self.cname_cloak {
            if !raw.targets.0.is_empty() || !raw.sources.is_empty() {
                check_sources("cname_cloak.sources", &raw.sources, sources)?;
            }
            let mut targets: HashMap<String, String> = HashMap::new();
            for (name, hosts) in raw.targets.0 {
                let tpath = format!("cname_cloak.targets.{}", key(&name));
                if name.trim().is_empty() {
                    return Err(invalid(tpath, "empty vendor name"));
                }
                if hosts.is_empty() {
                    return Err(invalid(tpath, "no target hosts"));
                }
                for (i, host) in hosts.iter().enumerate() {
                    let path = format!("{tpath}[{i}]");
                    check_host(&path, host)?;
                    if let Some(first) = targets.insert(host.clone(), path.clone()) {
                        return Err(invalid(
                            path,
                            format!("{host:?} is already listed at {first}"),
                        ));
                    }
                }
                cloak.push(CloakVendor { name, hosts });
            }
        }

        let mut canaries = Vec::with_capacity(self.canary.0.len());
        let mut canary_names: HashMap<String, String> = HashMap::new();
        for (id, c) in self.canary.0 {
            let cpath = format!("canary.{}", key(&id));
            check_id(&cpath, &id)?;
            if c.names.is_empty() {
                return Err(invalid(format!("{cpath}.names"), "no names"));
            }
            if c.answer.trim().is_empty() {
                return Err(invalid(format!("{cpath}.answer"), "empty answer"));
            }
            check_sources(&format!("{cpath}.sources"), &c.sources, sources)?;
            for (i, n) in c.names.iter().enumerate() {
                let path = format!("{cpath}.names[{i}]");
                check_host(&path, n)?;
                if let Some(first) = canary_names.insert(n.clone(), path.clone()) {
                    return Err(invalid(path, format!("{n:?} is already listed at {first}")));
                }
            }
            canaries.push(Canary {
                id,
                names: c.names,
                answer: c.answer,
                sources: c.sources,
                notes: c.notes,
            });
        }

        let mut doh_hosts = Vec::new();
        if let Some(doh) = self.doh {
            let mut doh_seen: HashMap<String, String> = HashMap::new();
            for (id, g) in doh.sections {
                let gpath = format!("doh.{}", key(&id));
                check_id(&gpath, &id)?;
                check_sources(&format!("{gpath}.sources"), &g.sources, sources)?;
                if g.doh.is_empty() && g.dot.is_empty() {
                    return Err(invalid(gpath, "no doh or dot hosts"));
                }
                for (list, hosts) in [("doh", g.doh), ("dot", g.dot)] {
                    for (i, host) in hosts.into_iter().enumerate() {
                        let path = format!("{gpath}.{list}[{i}]");
                        check_host(&path, &host)?;
                        if let Some(canary) = canary_names.get(&host) {
                            return Err(invalid(
                                path,
                                format!("{host:?} is a canary ({canary}), not a DoH endpoint"),
                            ));
                        }
                        if let Some(first) = doh_seen.insert(host.clone(), path.clone()) {
                            return Err(invalid(
                                path,
                                format!("{host:?} is already listed at {first}"),
                            ));
                        }
                        doh_hosts.push(host);
                    }
                }
            }
        }

        Ok(Catalogue {
            sources: self.sources,
            vendors,
            cloak,
            canaries,
            doh_hosts,
        })
    }
}

/// Vendor, canary and DoH group ids: lower-case ASCII letters, digits and `_`, starting with a
/// letter (they appear in metric labels and explanations).
fn check_id(path: &str, id: &str) -> Result<(), CatalogueError> {
    let ok = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("id {id:?} must be lower-case letters, digits and '_', starting with a letter"),
        ))
    }
}

/// A host must be a valid name already in canonical form.
fn check_host(path: &str, host: &str) -> Result<(), CatalogueError> {
    match name::normalize(host) {
        Err(e) => Err(invalid(path, format!("invalid host {host:?}: {e}"))),
        Ok(canonical) if canonical != host => Err(invalid(
            path,
            format!("host {host:?} is not in canonical form; write {canonical:?}"),
        )),
        Ok(_) => Ok(()),
    }
}

fn check_sources(
    path: &str,
    tags: &[String],
    defined: &BTreeMap<String, String>,
) -> Result<(), CatalogueError> {
    if tags.is_empty() {
        return Err(invalid(path, "at least one source tag is required"));
    }
    let mut seen = HashSet::new();
    for (i, tag) in tags.iter().enumerate() {
        if !defined.contains_key(tag) {
            return Err(invalid(
                format!("{path}[{i}]"),
                format!("source tag {tag:?} is not defined in [sources]"),
            ));
        }
        if !seen.insert(tag.as_str()) {
            return Err(invalid(
                format!("{path}[{i}]"),
                format!("source tag {tag:?} repeated"),
            ));
        }
    }
    Ok(())
}

/// Records a vendor host; a host may appear only once across all vendors and statuses. A clash
/// between a blocked (`block`/`caution`) and a `shared` entry is reported at the blocked entry.
fn record(
    seen: &mut HashMap<String, Seen>,
    host: &str,
    path: String,
    status: HostStatus,
) -> Result<(), CatalogueError> {
    let Some(first) = seen.get(host) else {
        seen.insert(host.to_owned(), Seen { path, status });
        return Ok(());
    };
    let shared_clash = (first.status == HostStatus::Shared) != (status == HostStatus::Shared);
    if shared_clash {
        let (blocked_path, blocked_status, shared_path) = if status == HostStatus::Shared {
            (first.path.clone(), first.status, path)
        } else {
            (path, status, first.path.clone())
        };
        return Err(invalid(
            blocked_path,
            format!(
                "{host:?} is listed as {blocked_status} but is also shared at {shared_path}; \
                 a shared host is never blocked"
            ),
        ));
    }
    Err(invalid(
        path,
        format!("{host:?} is already listed at {}", first.path),
    ))
}

/// No `shared` host may lie under a `block` entry: suffix matching would block it in every zone.
/// (A `caution` parent is allowed: a strict zone that blocks a whole service blocks it all.)
fn check_shared_not_covered(seen: &HashMap<String, Seen>) -> Result<(), CatalogueError> {
    let mut shared: Vec<(&String, &Seen)> = seen
        .iter()
        .filter(|(_, s)| s.status == HostStatus::Shared)
        .collect();
    shared.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    for (host, s) in shared {
        let mut rest = host.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(p) = seen.get(parent)
                && p.status == HostStatus::Block
            {
                return Err(invalid(
                    &p.path,
                    format!(
                        "blocking {parent:?} would also block {host:?}, which is shared at {}",
                        s.path
                    ),
                ));
            }
            rest = parent;
        }
    }
    Ok(())
}

/// No `block` or `caution` host may be a `do_not_block` host or lie under one: those are
/// infrastructure the web depends on (fonts, static assets, consent managers), so even a strict
/// zone must never block any part of them.
fn check_infra_not_blocked(
    seen: &HashMap<String, Seen>,
    infra: &HashMap<String, String>,
) -> Result<(), CatalogueError> {
    let mut blocked: Vec<(&String, &Seen)> = seen
        .iter()
        .filter(|(_, s)| s.status != HostStatus::Shared)
        .collect();
    blocked.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    for (host, s) in blocked {
        let mut rest = host.as_str();
        loop {
            if let Some(infra_path) = infra.get(rest) {
                return Err(invalid(
                    &s.path,
                    format!(
                        "{host:?} is {} but lies under {rest:?}, which is do_not_block at \
                         {infra_path}; nothing under a do_not_block host may be blocked",
                        s.status
                    ),
                ));
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => break,
            }
        }
    }
    Ok(())
}
