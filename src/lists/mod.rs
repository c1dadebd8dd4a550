//! Lists: loading a configured source, parsing it in its format, and compiling it into a
//! [`CompiledList`] (a matcher plus attribution side tables). Bad lines are skipped and counted by
//! `parse`; a list whose source cannot be read is reported (`CompiledList::error`) and compiles
//! empty, so that one missing file never takes the daemon down with it.

pub mod attribute;
pub mod builtin;
pub mod catalogue;
pub mod doh;
pub mod name;
pub mod owners;
pub mod parse;
pub mod supply;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use crate::config::{ListConfig, ListFormat, ListSource};
use crate::matcher::{Matcher, MatcherBuilder};
pub use builtin::{builtin_catalogue, builtin_category};
use catalogue::{Catalogue, HostStatus};
pub use parse::Action;
use parse::{MatchKind, ParseReport};

/// Rule action codes stored in a payload nibble.
mod code {
    /// No rule for this position.
    pub const NONE: u32 = 0;
    /// Block with the zone's configured response.
    pub const BLOCK: u32 = 1;
    /// Allow (adblock `@@`, RPZ passthru).
    pub const ALLOW: u32 = 2;
    /// NXDOMAIN (RPZ `CNAME .`).
    pub const NXDOMAIN: u32 = 3;
    /// NODATA (RPZ `CNAME *.`).
    pub const NODATA: u32 = 4;
}

/// Payload layout: bits 0-3 = action when the rule's name equals the query name, bits 4-7 = action
/// for strict subdomains, bits 8-31 = 1 + index into [`CompiledList::attrs`] (0 = no attribution).
pub fn payload(exact: u32, sub: u32, attr: Option<u32>) -> u32 {
    (exact & 0xf) | ((sub & 0xf) << 4) | (attr.map_or(0, |a| (a + 1) << 8))
}

/// The action a payload carries for an exact or a subdomain hit (`None`: no rule there).
pub fn payload_action(p: u32, exact: bool) -> Option<Action> {
    match if exact { p & 0xf } else { (p >> 4) & 0xf } {
        code::BLOCK => Some(Action::Block),
        code::ALLOW => Some(Action::Allow),
        code::NXDOMAIN => Some(Action::Nxdomain),
        code::NODATA => Some(Action::Nodata),
        _ => None,
    }
}

/// The attribution index of a payload.
pub fn payload_attr(p: u32) -> Option<usize> {
    let a = p >> 8;
    (a > 0).then(|| (a - 1) as usize)
}

fn merge_nibble(old: u32, new: u32) -> u32 {
    // Allow beats block inside one list (adblock exceptions, RPZ passthru); otherwise first wins.
    if old == code::ALLOW || new == code::ALLOW {
        code::ALLOW
    } else if old != code::NONE {
        old
    } else {
        new
    }
}

fn merge(old: u32, new: u32) -> u32 {
    let exact = merge_nibble(old & 0xf, new & 0xf);
    let sub = merge_nibble((old >> 4) & 0xf, (new >> 4) & 0xf);
    let attr = if old >> 8 != 0 { old >> 8 } else { new >> 8 };
    exact | (sub << 4) | (attr << 8)
}

/// Attribution of a catalogue host.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Vendor id (metric label).
    pub vendor: Arc<str>,
    /// Category label.
    pub category: &'static str,
    /// block / caution (shared hosts are never compiled).
    pub status: HostStatus,
}

/// A list ready for the request path.
#[derive(Debug)]
pub struct CompiledList {
    /// Its configured name.
    pub name: Arc<str>,
    /// Where it came from.
    pub source: ListSource,
    /// The format it was parsed as.
    pub format: ListFormat,
    /// Query-name rules.
    pub matcher: Matcher,
    /// Names matched only as answer targets (the catalogue's CNAME-cloak section).
    pub cloak: Matcher,
    /// Vendor attribution, indexed by payload.
    pub attrs: Vec<Attr>,
    /// Parse statistics (skipped lines by reason, the first few with line numbers).
    pub report: ParseReport,
    /// Set when the source could not be read or parsed at all; the list is then empty.
    pub error: Option<String>,
    /// For file sources: (modification time, length) when read, so an unchanged file is not
    /// parsed again on reload.
    pub stamp: Option<(std::time::SystemTime, u64)>,
    /// Set when [`attribute::apply`] added vendors to this list: the list as compiled, and a key
    /// of the owner lists used.
    pub base: Option<(Arc<CompiledList>, u64)>,
}

impl CompiledList {
    /// Number of names (query rules plus cloak targets).
    pub fn entries(&self) -> usize {
        self.matcher.len() + self.cloak.len()
    }
}

/// Turns a vendor display name into a label-safe id ("Adobe Experience Cloud" → "adobe_experience_cloud").
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Loads and compiles one list. Never fails: problems land in `error` and `report`.
pub fn load(cfg: &ListConfig) -> CompiledList {
    let name: Arc<str> = Arc::from(cfg.name.as_str());
    let empty = |format, error: String| CompiledList {
        name: name.clone(),
        source: cfg.source.clone(),
        format,
        matcher: Matcher::empty(),
        cloak: Matcher::empty(),
        attrs: Vec::new(),
        report: ParseReport::default(),
        error: Some(error),
        stamp: None,
        base: None,
    };
    match &cfg.source {
        ListSource::Builtin(b) => {
            let text = match b.as_str() {
                "trackers" => catalogue::BUILTIN_TRACKERS,
                other => {
                    return empty(
                        ListFormat::Catalogue,
                        format!("unknown builtin list {other:?}"),
                    );
                }
            };
            match Catalogue::parse(text) {
                Ok(c) => compile_catalogue(name, cfg.source.clone(), &c),
                Err(e) => empty(ListFormat::Catalogue, format!("builtin:{b}: {e}")),
            }
        }
        ListSource::File(path) => {
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    return empty(
                        cfg.format.unwrap_or(ListFormat::Domains),
                        format!("cannot read {}: {e}", path.display()),
                    );
                }
            };
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let format = match cfg.format {
                Some(f) => f,
                None => match reader.fill_buf() {
                    Ok(head) => guess(head, path.extension().and_then(|e| e.to_str())),
                    Err(e) => {
                        return empty(
                            ListFormat::Domains,
                            format!("cannot read {}: {e}", path.display()),
                        );
                    }
                },
            };
            if matches!(format, ListFormat::Disconnect | ListFormat::TrackerRadar) {
                let mut bytes = Vec::new();
                if let Err(e) = reader.read_to_end(&mut bytes) {
                    return empty(format, format!("cannot read {}: {e}", path.display()));
                }
                let mut list = owners::compile(name, cfg.source.clone(), format, &bytes, path);
                list.stamp = file_stamp(path);
                return list;
            }
            if format == ListFormat::Catalogue {
                let mut text = String::new();
                if let Err(e) = reader.read_to_string(&mut text) {
                    return empty(format, format!("cannot read {}: {e}", path.display()));
                }
                return match Catalogue::parse(&text) {
                    Ok(c) => compile_catalogue(name, cfg.source.clone(), &c),
                    Err(e) => empty(format, format!("{}: {e}", path.display())),
                };
            }
            let stamp = file_stamp(path);
            let mut list = compile_rules(name, cfg.source.clone(), format, reader, path);
            list.stamp = stamp;
            list
        }
        ListSource::Url(u) => empty(
            cfg.format.unwrap_or(ListFormat::Domains),
            format!("{u}: no download and no disk copy yet"),
        ),
    }
}

/// The line parser of a configured format (the catalogue has its own loader; `Domains` stands in).
pub fn parser_format(f: ListFormat) -> parse::Format {
    match f {
        ListFormat::Hosts => parse::Format::Hosts,
        ListFormat::Adblock => parse::Format::Adblock,
        ListFormat::Rpz => parse::Format::Rpz,
        ListFormat::Domains
        | ListFormat::Catalogue
        | ListFormat::Disconnect
        | ListFormat::TrackerRadar => parse::Format::Domains,
    }
}

/// (modification time, length) of a file, to tell whether it changed.
pub fn file_stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Compiles a list from bytes in memory (a download or its disk copy); `label` names it in
/// messages.
pub fn compile_bytes(cfg: &ListConfig, bytes: &[u8], label: &std::path::Path) -> CompiledList {
    let name: Arc<str> = Arc::from(cfg.name.as_str());
    let format = cfg
        .format
        .unwrap_or_else(|| guess(bytes, label.extension().and_then(|e| e.to_str())));
    if matches!(format, ListFormat::Disconnect | ListFormat::TrackerRadar) {
        return owners::compile(name, cfg.source.clone(), format, bytes, label);
    }
    if format == ListFormat::Catalogue {
        let text = String::from_utf8_lossy(bytes);
        return match Catalogue::parse(&text) {
            Ok(c) => compile_catalogue(name, cfg.source.clone(), &c),
            Err(e) => CompiledList {
                name,
                source: cfg.source.clone(),
                format,
                matcher: Matcher::empty(),
                cloak: Matcher::empty(),
                attrs: Vec::new(),
                report: ParseReport::default(),
                error: Some(format!("{}: {e}", label.display())),
                stamp: None,
                base: None,
            },
        };
    }
    compile_rules(name, cfg.source.clone(), format, bytes, label)
}

fn guess(head: &[u8], ext: Option<&str>) -> ListFormat {
    let text = String::from_utf8_lossy(&head[..head.len().min(8192)]);
    if ext == Some("toml") || text.contains("[vendor.") {
        return ListFormat::Catalogue;
    }
    if owners::looks_like_disconnect(&text) {
        return ListFormat::Disconnect;
    }
    if owners::looks_like_tracker_radar(&text) {
        return ListFormat::TrackerRadar;
    }
    match parse::guess_format(head) {
        parse::Format::Domains => ListFormat::Domains,
        parse::Format::Hosts => ListFormat::Hosts,
        parse::Format::Adblock => ListFormat::Adblock,
        parse::Format::Rpz => ListFormat::Rpz,
    }
}

fn action_code(a: Action) -> u32 {
    match a {
        Action::Block => code::BLOCK,
        Action::Allow => code::ALLOW,
        Action::Nxdomain => code::NXDOMAIN,
        Action::Nodata => code::NODATA,
    }
}

fn compile_rules(
    name: Arc<str>,
    source: ListSource,
    format: ListFormat,
    reader: impl BufRead,
    path: &std::path::Path,
) -> CompiledList {
    let pformat = parser_format(format);
    let mut b = MatcherBuilder::new();
    let result = parse::parse(pformat, reader, |rule| {
        let a = action_code(rule.action);
        let p = match rule.kind {
            MatchKind::Subtree => payload(a, a, None),
            MatchKind::Exact => payload(a, code::NONE, None),
            MatchKind::Subdomains => payload(code::NONE, a, None),
        };
        b.insert(&rule.name, p, merge);
    });
    let (report, error) = match result {
        Ok(r) => (r, None),
        Err(e) => (
            ParseReport::default(),
            Some(format!("cannot read {}: {e}", path.display())),
        ),
    };
    let error = error.or_else(|| {
        (b.is_empty() && report.skipped_total() > 0).then(|| {
            format!(
                "{}: no valid entries ({} lines skipped)",
                path.display(),
                report.skipped_total()
            )
        })
    });
    CompiledList {
        name,
        source,
        format,
        matcher: b.build(),
        cloak: Matcher::empty(),
        attrs: Vec::new(),
        report,
        error,
        stamp: None,
        base: None,
    }
}

pub(crate) fn compile_catalogue(name: Arc<str>, source: ListSource, c: &Catalogue) -> CompiledList {
    let mut attrs: Vec<Attr> = Vec::new();
    let mut index: std::collections::HashMap<(usize, &'static str, bool), u32> = Default::default();
    let mut b = MatcherBuilder::new();
    let mut rules = 0u64;
    for (host, vendor, category, status) in c.blockable(true) {
        let caution = status == HostStatus::Caution;
        let key = (vendor, category.as_str(), caution);
        let attr = *index.entry(key).or_insert_with(|| {
            attrs.push(Attr {
                vendor: Arc::from(c.vendors.get(vendor).map_or("other", |v| v.id.as_str())),
                category: category.as_str(),
                status,
            });
            (attrs.len() - 1) as u32
        });
        b.insert(host, payload(code::BLOCK, code::BLOCK, Some(attr)), merge);
        rules += 1;
    }
    let mut cb = MatcherBuilder::new();
    for (host, cloak_vendor) in c.cloak_targets() {
        let vendor = c
            .cloak
            .get(cloak_vendor)
            .map_or_else(|| "other".to_owned(), |v| slug(&v.name));
        attrs.push(Attr {
            vendor: Arc::from(vendor.as_str()),
            category: "cname_cloak",
            status: HostStatus::Block,
        });
        let attr = (attrs.len() - 1) as u32;
        cb.insert(host, payload(code::BLOCK, code::BLOCK, Some(attr)), merge);
        rules += 1;
    }
    let report = ParseReport {
        rules,
        lines: rules,
        ..ParseReport::default()
    };
    CompiledList {
        name,
        source,
        format: ListFormat::Catalogue,
        matcher: b.build(),
        cloak: cb.build(),
        attrs,
        report,
        error: None,
        stamp: None,
        base: None,
    }
}

/// A remote list served from a disk copy that no download has confirmed in this run (`/readyz`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StaleList {
    /// The list name.
    pub list: String,
    /// Seconds since the copy was downloaded (`None`: unknown).
    pub age_seconds: Option<u64>,
    /// True while its first download of this run has not finished.
    pub pending: bool,
    /// The reason of the last failed download, if one failed.
    pub last_failure: Option<String>,
}

impl std::fmt::Display for StaleList {
    /// `NAME (downloaded 3h 12m ago, first download pending)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (", self.list)?;
        match self.age_seconds {
            // Whole minutes past an hour: "3h 12m", not "3h 12m 5s".
            Some(a) => write!(
                f,
                "downloaded {} ago",
                humantime::format_duration(std::time::Duration::from_secs(if a >= 3600 {
                    a - a % 60
                } else {
                    a
                }),)
            )?,
            None => f.write_str("download time unknown")?,
        }
        match (&self.last_failure, self.pending) {
            (_, true) => f.write_str(", first download pending)"),
            (Some(r), false) => write!(f, ", download failed: {r})"),
            (None, false) => f.write_str(", not downloaded)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_roundtrip_and_merge() {
        let p = payload(code::BLOCK, code::NONE, Some(7));
        assert_eq!(payload_action(p, true), Some(Action::Block));
        assert_eq!(payload_action(p, false), None);
        assert_eq!(payload_attr(p), Some(7));
        let sub = payload(code::NONE, code::NXDOMAIN, None);
        let m = merge(p, sub);
        assert_eq!(payload_action(m, true), Some(Action::Block));
        assert_eq!(payload_action(m, false), Some(Action::Nxdomain));
        assert_eq!(payload_attr(m), Some(7));
        let allow = payload(code::ALLOW, code::ALLOW, None);
        assert_eq!(payload_action(merge(p, allow), true), Some(Action::Allow));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Adobe Experience Cloud"), "adobe_experience_cloud");
        assert_eq!(slug("customer.io"), "customer_io");
        assert_eq!(slug("A8.net"), "a8_net");
    }
}
