//! Attribution and policy: which tracker a host belongs to (the shipped catalogue, most
//! specific entry wins; hosts that only a configured list blocks are reported as `other`), what
//! pixelguard's configured zones would do with it, how severe each finding is, and the
//! assembly of one page's findings from its references, snippets, CSP and network requests.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use url::Url;

use super::extract::script::{self, TrackerId};
use super::extract::{Extracted, RefKind, csp};
use super::report::{Evidence, Finding, PolicyView, Severity};
use crate::config::Mode;
use crate::lists::catalogue::{Catalogue, CatalogueError, Category, HostStatus};
use crate::lists::slug;
use crate::matcher::{Matcher, MatcherBuilder, QueryName};
use crate::policy::{self, Decision};
use crate::snapshot::Snapshot;

/// Most evidence items kept per finding.
pub const MAX_EVIDENCE: usize = 20;
/// Most IDs kept per finding.
pub const MAX_IDS: usize = 20;

/// The catalogue, indexed for host lookups.
pub struct Known {
    catalogue: Catalogue,
    hosts: Matcher,
    entries: Vec<Entry>,
    cloak: Matcher,
}

struct Entry {
    vendor: usize,
    category: Category,
    status: HostStatus,
}

/// A catalogue host that matched.
#[derive(Debug, Clone)]
pub struct HostInfo<'a> {
    /// Vendor id.
    pub vendor_id: &'a str,
    /// Vendor display name.
    pub vendor_name: &'a str,
    /// Category.
    pub category: Category,
    /// Status.
    pub status: HostStatus,
    /// The matching entry (a suffix of the host).
    pub rule: String,
    /// Tracking paths on a shared host.
    pub shared_paths: &'a [String],
}

impl Known {
    /// The built-in catalogue.
    pub fn builtin() -> Result<Known, CatalogueError> {
        Ok(Known::new(Catalogue::builtin()?))
    }

    /// Indexes a catalogue.
    pub fn new(catalogue: Catalogue) -> Known {
        let mut b = MatcherBuilder::new();
        let mut entries = Vec::new();
        for (host, vendor, category, status) in catalogue.all_hosts() {
            let idx = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            entries.push(Entry {
                vendor,
                category,
                status,
            });
            b.insert(host, idx, |old, _| old);
        }
        let mut c = MatcherBuilder::new();
        for (host, i) in catalogue.cloak_targets() {
            c.insert(host, u32::try_from(i).unwrap_or(u32::MAX), |old, _| old);
        }
        Known {
            catalogue,
            hosts: b.build(),
            entries,
            cloak: c.build(),
        }
    }

    fn info(&self, idx: u32, host: &str, start: usize) -> Option<HostInfo<'_>> {
        let e = self.entries.get(idx as usize)?;
        let v = self.catalogue.vendors.get(e.vendor)?;
        let shared_paths = v
            .categories
            .iter()
            .find(|c| c.category == e.category)
            .map_or(&[][..], |c| c.shared_paths.as_slice());
        Some(HostInfo {
            vendor_id: &v.id,
            vendor_name: &v.name,
            category: e.category,
            status: e.status,
            rule: host.get(start..).unwrap_or(host).to_owned(),
            shared_paths,
        })
    }

    /// The most specific catalogue entry covering `host`.
    pub fn lookup(&self, host: &str) -> Option<HostInfo<'_>> {
        let q = QueryName::new(host.as_bytes());
        let (idx, start) = self
            .hosts
            .find(&q, |h| ControlFlow::Break((h.payload, h.start)))?;
        self.info(idx, host, start)
    }

    /// For a CSP wildcard `*.host`: the most telling catalogue host under it (a `block` host
    /// of a tracking category before anything else), else the entry covering `host` itself.
    pub fn lookup_wildcard(&self, host: &str) -> Option<(String, HostInfo<'_>)> {
        let suffix = format!(".{host}");
        let mut best: Option<(u8, &str)> = None;
        for (h, _, category, status) in self.catalogue.all_hosts() {
            if !(h == host || h.ends_with(&suffix)) || category == Category::DoNotBlock {
                continue;
            }
            let rank = match (status, category) {
                (HostStatus::Block, Category::WholeService) => 3,
                (HostStatus::Block, _) => 0,
                (HostStatus::Caution, Category::WholeService) => 4,
                (HostStatus::Caution, _) => 1,
                (HostStatus::Shared, _) => 2,
            };
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, h));
            }
        }
        match best {
            Some((_, h)) => self.lookup(h).map(|i| (h.to_owned(), i)),
            None => self.lookup(host).map(|i| (host.to_owned(), i)),
        }
    }

    /// The cloak-target company whose suffix covers `target`, and the suffix.
    pub fn cloak_target(&self, target: &str) -> Option<(&str, String)> {
        let q = QueryName::new(target.as_bytes());
        let (idx, start) = self
            .cloak
            .find(&q, |h| ControlFlow::Break((h.payload, h.start)))?;
        let c = self.catalogue.cloak.get(idx as usize)?;
        Some((
            c.name.as_str(),
            target.get(start..).unwrap_or(target).to_owned(),
        ))
    }
}

/// What the configured zones would do with `host` (and, through uncloaking, with the CNAME
/// `chain` behind it).
pub fn policy_view(
    snap: &Snapshot,
    host: &str,
    chain: &[String],
    catalogue: &str,
    rule: Option<String>,
) -> PolicyView {
    let mut v = PolicyView {
        catalogue: catalogue.to_owned(),
        rule,
        ..PolicyView::default()
    };
    let q = QueryName::new(host.as_bytes());
    for zone in &snap.zones {
        if zone.mode == Mode::Off {
            continue;
        }
        let mut blocked = matches!(
            policy::decide(&snap.lists, zone, &q),
            Some(Decision::Block(..))
        );
        if !blocked && zone.uncloak {
            blocked = chain.iter().any(|t| {
                let tq = QueryName::new(t.as_bytes());
                matches!(
                    policy::decide_target(&snap.lists, zone, &tq),
                    Some(Decision::Block(..))
                )
            });
        }
        if blocked {
            match zone.mode {
                Mode::Enforce => v.blocked_in.push(zone.name.to_string()),
                Mode::Log => v.logged_in.push(zone.name.to_string()),
                Mode::Off => {}
            }
        }
    }
    v
}

/// The first configured list that blocks `host` in any zone: (vendor id, list name, rule).
fn listed(snap: &Snapshot, host: &str) -> Option<(Option<String>, String, String)> {
    let q = QueryName::new(host.as_bytes());
    snap.zones
        .iter()
        .filter(|z| z.mode != Mode::Off)
        .find_map(|z| match policy::decide(&snap.lists, z, &q) {
            Some(Decision::Block(v, _)) => Some((
                v.vendor.map(|s| s.to_string()),
                v.list_name.to_string(),
                v.rule,
            )),
            _ => None,
        })
}

/// The registrable domain of a host (public suffix list), or the host itself for IP addresses,
/// single labels and public suffixes.
pub fn registrable(host: &str) -> String {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h.parse::<std::net::IpAddr>().is_ok() || h.starts_with('[') {
        return h;
    }
    psl::domain_str(&h).map_or_else(|| h.clone(), str::to_owned)
}

/// A finding under construction: strength decides severity later.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The finding (severity provisional).
    pub finding: Finding,
    /// Catalogue category (for severity), `None` for cloaked / list-only findings.
    pub category: Option<Category>,
    /// True once evidence shows the tracker really loads (not only a CSP allowance, not only a
    /// non-tracking asset on a shared vendor host).
    pub strong: bool,
}

/// Base severity by category.
fn category_severity(c: Option<Category>) -> Severity {
    match c {
        Some(Category::Advertising | Category::Social | Category::SessionReplay) => Severity::High,
        Some(
            Category::Analytics
            | Category::TagManager
            | Category::MarketingAutomation
            | Category::AbTesting
            | Category::WholeService,
        ) => Severity::Medium,
        Some(Category::Monitoring | Category::DoNotBlock | Category::ServerSide) => Severity::Low,
        None => Severity::High,
    }
}

impl Draft {
    /// Finishes the finding: severity from strength, category and the page's sensitivity.
    pub fn finish(mut self, sensitive: bool) -> Finding {
        self.finding.ids.sort();
        self.finding.severity = if !self.strong {
            if sensitive {
                Severity::Medium
            } else {
                Severity::Low
            }
        } else if sensitive {
            Severity::Critical
        } else {
            category_severity(self.category)
        };
        self.finding
    }
}

/// Builds the findings of one page.
pub struct PageFindings<'a> {
    known: &'a Known,
    snap: &'a Snapshot,
    drafts: BTreeMap<(String, String), Draft>,
    /// First-party hosts the page refers to (candidates for uncloaking), with evidence.
    pub first_party: BTreeMap<String, Vec<Evidence>>,
    page_host: String,
    site_domains: &'a [String],
}

impl<'a> PageFindings<'a> {
    /// Starts on a page at `url`; hosts under `site_domains` or the page's own host are first
    /// party.
    pub fn new(
        known: &'a Known,
        snap: &'a Snapshot,
        url: &Url,
        site_domains: &'a [String],
    ) -> Self {
        PageFindings {
            known,
            snap,
            drafts: BTreeMap::new(),
            first_party: BTreeMap::new(),
            page_host: url.host_str().unwrap_or("").to_ascii_lowercase(),
            site_domains,
        }
    }

    fn in_site(&self, host: &str) -> bool {
        let r = registrable(host);
        self.site_domains.contains(&r)
    }

    fn add(&mut self, kind: RefKind, host: &str, url: Option<&Url>, detail: &str) {
        if host == self.page_host || self.in_site(host) {
            if self.in_site(host) {
                let ev = self.first_party.entry(host.to_owned()).or_default();
                if ev.len() < MAX_EVIDENCE {
                    ev.push(Evidence {
                        kind: kind.as_str().to_owned(),
                        detail: detail.to_owned(),
                    });
                }
            }
            return;
        }
        self.add_as(kind, host, host, url, detail);
    }

    /// Adds evidence for the tracker at `lookup` (catalogue or configured lists), keyed and shown
    /// as `shown` (a CSP wildcard pattern, or the host itself).
    fn add_as(
        &mut self,
        kind: RefKind,
        shown: &str,
        lookup: &str,
        url: Option<&Url>,
        detail: &str,
    ) {
        let path = url.map_or("", Url::path);
        let (vendor_id, vendor, category, catalogue, rule, strong) = match self.known.lookup(lookup)
        {
            Some(info) if info.category == Category::DoNotBlock => return,
            Some(info) => {
                // On a shared host only the tracking paths show a tracker really loads.
                let strong = info.status != HostStatus::Shared
                    || info
                        .shared_paths
                        .iter()
                        .any(|p| path.starts_with(p.trim_end_matches('/')));
                (
                    info.vendor_id.to_owned(),
                    info.vendor_name.to_owned(),
                    Some(info.category),
                    info.status.as_str(),
                    info.rule,
                    strong,
                )
            }
            None => match listed(self.snap, lookup) {
                Some((vendor, list, rule)) => {
                    let id = vendor.unwrap_or_else(|| "other".to_owned());
                    // Unknown vendor: rated like analytics.
                    (
                        id.clone(),
                        format!("{id} (list {list})"),
                        Some(Category::Analytics),
                        "not_listed",
                        rule,
                        true,
                    )
                }
                None => return,
            },
        };
        // A CSP allowance alone does not show that the tracker loads.
        let strong = strong && !matches!(kind, RefKind::CspHeader | RefKind::CspMeta);
        let ids = url.map(script::ids_from_url).unwrap_or_default();
        let snap = self.snap;
        let d = self
            .drafts
            .entry((vendor_id.clone(), shown.to_owned()))
            .or_insert_with(|| Draft {
                finding: Finding {
                    severity: Severity::Low,
                    vendor_id,
                    vendor,
                    category: if catalogue == "not_listed" {
                        "other".to_owned()
                    } else {
                        category.map_or("other", Category::as_str).to_owned()
                    },
                    host: shown.to_owned(),
                    ids: Vec::new(),
                    evidence: Vec::new(),
                    cloaked_via: Vec::new(),
                    policy: policy_view(snap, lookup, &[], catalogue, Some(rule)),
                    line: None,
                },
                category,
                strong: false,
            });
        d.strong |= strong || !ids.is_empty();
        push_evidence(&mut d.finding, kind, detail);
        for id in ids {
            push_id(&mut d.finding, id);
        }
    }

    /// Adds every reference and snippet of an extracted page.
    pub fn add_extracted(&mut self, ex: &Extracted) {
        for r in &ex.refs {
            self.add(r.kind, &r.host, r.url.as_ref(), &r.detail);
        }
        for s in &ex.snippets {
            self.add(RefKind::Snippet, s.host, None, &s.evidence);
            let key = (s.vendor.to_owned(), s.host.to_owned());
            if let Some(d) = self.drafts.get_mut(&key) {
                d.strong = true;
                d.category = Some(s.category);
                d.finding.category = s.category.as_str().to_owned();
                if let Some(id) = &s.id {
                    push_id(&mut d.finding, id.clone());
                }
            }
        }
        for c in &ex.csp_meta {
            self.add_csp(c, RefKind::CspMeta);
        }
    }

    /// Adds the hosts a Content-Security-Policy allows.
    pub fn add_csp(&mut self, policy: &str, kind: RefKind) {
        for h in csp::hosts(policy) {
            if h.host == self.page_host || self.in_site(&h.host) {
                continue;
            }
            let detail = format!("{} allows {}", h.directive, h.source);
            if h.wildcard {
                if let Some((rep, _)) = self.known.lookup_wildcard(&h.host) {
                    self.add_as(kind, &format!("*.{}", h.host), &rep, None, &detail);
                }
            } else {
                self.add(kind, &h.host, None, &detail);
            }
        }
    }

    /// Adds a request the browser made (HAR).
    pub fn add_request(&mut self, url: &Url) {
        if let Some(host) = url.host_str() {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            let detail = shorten(url.as_str());
            self.add(RefKind::Network, &host, Some(url), &detail);
        }
    }

    /// The drafts, with source lines looked up in `body` when given.
    pub fn into_drafts(self, body: Option<&str>) -> Vec<Draft> {
        let mut out: Vec<Draft> = self.drafts.into_values().collect();
        if let Some(body) = body {
            for d in &mut out {
                let needle = d
                    .finding
                    .ids
                    .first()
                    .map_or(d.finding.host.trim_start_matches("*."), |i| i.id.as_str());
                d.finding.line = line_of(body, needle);
            }
        }
        out
    }
}

fn shorten(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_owned();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn push_evidence(f: &mut Finding, kind: RefKind, detail: &str) {
    let e = Evidence {
        kind: kind.as_str().to_owned(),
        detail: detail.to_owned(),
    };
    if f.evidence.len() < MAX_EVIDENCE && !f.evidence.contains(&e) {
        f.evidence.push(e);
    }
}

fn push_id(f: &mut Finding, id: TrackerId) {
    if f.ids.len() < MAX_IDS && !f.ids.contains(&id) {
        f.ids.push(id);
    }
}

/// 1-based line of the first occurrence of `needle` in `body`.
pub fn line_of(body: &str, needle: &str) -> Option<u32> {
    if needle.is_empty() {
        return None;
    }
    let at = body.find(needle)?;
    u32::try_from(body[..at].bytes().filter(|&b| b == b'\n').count() + 1).ok()
}

/// A finding for a first-party host whose CNAME chain reaches a tracker, or `None`.
pub fn cloaked(
    known: &Known,
    snap: &Snapshot,
    host: &str,
    chain: &[String],
    evidence: &[Evidence],
) -> Option<Draft> {
    let (vendor, rule) = chain.iter().find_map(|t| {
        if let Some((name, rule)) = known.cloak_target(t) {
            return Some((name.to_owned(), rule));
        }
        known
            .lookup(t)
            .filter(|i| i.category != Category::DoNotBlock && i.status != HostStatus::Shared)
            .map(|i| (i.vendor_name.to_owned(), i.rule.clone()))
    })?;
    let mut f = Finding {
        severity: Severity::High,
        vendor_id: slug(&vendor),
        vendor,
        category: "cname_cloak".to_owned(),
        host: host.to_owned(),
        ids: Vec::new(),
        evidence: Vec::new(),
        cloaked_via: chain.to_vec(),
        policy: policy_view(snap, host, chain, "cloak_target", Some(rule)),
        line: None,
    };
    let mut path = vec![host.to_owned()];
    path.extend(chain.iter().cloned());
    f.evidence.push(Evidence {
        kind: RefKind::Cname.as_str().to_owned(),
        detail: format!("CNAME {}", path.join(" → ")),
    });
    for e in evidence.iter().take(MAX_EVIDENCE - 1) {
        f.evidence.push(e.clone());
    }
    Some(Draft {
        finding: f,
        category: None,
        strong: true,
    })
}
