//! `pixelguard audit --csp`: a Content-Security-Policy built from what the audit saw.
//!
//! Per page, [`PageUse`] records what the page makes the browser load (host sources per
//! directive, from the same references the findings come from) and its inline scripts (their
//! `'sha256-…'` hashes). Once the page's findings are known, [`PageCsp::decide`] allows what is
//! not a tracker and excludes every tracker host (catalogue, configured lists, CNAME-cloaked
//! first-party hosts) and every inline script holding a tracker snippet (the Meta Pixel's
//! `fbq(…)` loader is never hashed into a policy). [`build`] merges the ordinary pages into one
//! site-wide policy and gives each sensitive page its own, stricter one: no tracker at all, not
//! even a vendor the organisation keeps elsewhere with `--csp-allow`. `render` prints them as
//! header lines, nginx and Apache snippets and a Report-Only trial form, with the reason for
//! every allowed source.

mod render;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::extract::{Extracted, InlineScript, RefKind};
use super::report::{PageReport, Report};

pub use render::text;

/// The JSON form's schema id.
pub const SCHEMA: &str = "pixelguard.csp/1";
/// The `report-to` group name (and the `Reporting-Endpoints` key).
pub const REPORT_GROUP: &str = "csp-endpoint";
/// Longest inline-script excerpt shown in explanations.
const EXCERPT: usize = 60;

/// Directives in the order they are printed.
const ORDER: [&str; 12] = [
    "default-src",
    "script-src",
    "style-src",
    "img-src",
    "font-src",
    "connect-src",
    "media-src",
    "frame-src",
    "manifest-src",
    "object-src",
    "base-uri",
    "form-action",
];

/// The CSP hash source (`'sha256-…'`) of an inline script's text.
pub fn hash_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// One host source a page loads from.
#[derive(Debug, Clone)]
struct Load {
    directive: &'static str,
    source: String,
    host: String,
    how: &'static str,
}

/// What one page loads, before its findings are known.
#[derive(Debug, Clone, Default)]
pub struct PageUse {
    path: String,
    loads: Vec<Load>,
    inline: Vec<InlineScript>,
}

/// The directives that govern a reference; none when no policy needs it (resource hints,
/// existing CSP allowances, snippets). A host named in an inline script may be loaded as a
/// script or sent data: both.
fn directives(kind: RefKind, detail: &str) -> &'static [&'static str] {
    match kind {
        RefKind::ScriptSrc => &["script-src"],
        RefKind::InlineScript => &["script-src", "connect-src"],
        RefKind::Img | RefKind::Pixel | RefKind::NoscriptImg => &["img-src"],
        RefKind::Iframe | RefKind::NoscriptIframe => &["frame-src"],
        RefKind::FormAction => &["form-action"],
        RefKind::Media => &["media-src"],
        RefKind::Ping => &["connect-src"],
        RefKind::Network => &["default-src"],
        RefKind::Link => {
            let d = detail.to_ascii_lowercase();
            if d.contains("stylesheet") {
                &["style-src"]
            } else if d.contains("icon") {
                &["img-src"]
            } else if d.contains("manifest") {
                &["manifest-src"]
            } else {
                &[]
            }
        }
        RefKind::ResourceHint
        | RefKind::Noscript
        | RefKind::CspHeader
        | RefKind::CspMeta
        | RefKind::Snippet
        | RefKind::Cname => &[],
    }
}

impl PageUse {
    /// What the page at `url` loads, from its extraction.
    pub fn new(url: &Url, ex: &Extracted) -> PageUse {
        let own = url.origin();
        let mut loads = Vec::new();
        for r in &ex.refs {
            let Some(u) = &r.url else { continue };
            if u.origin() == own {
                continue;
            }
            let source = u.origin().ascii_serialization();
            if source == "null" {
                continue;
            }
            for directive in directives(r.kind, &r.detail) {
                loads.push(Load {
                    directive,
                    source: source.clone(),
                    host: r.host.clone(),
                    how: r.kind.as_str(),
                });
            }
        }
        PageUse {
            path: url.path().to_owned(),
            loads,
            inline: ex.inline_scripts.clone(),
        }
    }
}

/// A source a policy allows, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Allowed {
    /// The directive.
    pub directive: String,
    /// The source expression (an origin, or a `'sha256-…'` hash).
    pub source: String,
    /// Why it is allowed.
    pub reason: String,
}

/// A tracker the policy leaves out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Excluded {
    /// The host, or `inline script` for a tracker snippet.
    pub what: String,
    /// Catalogue vendor id.
    pub vendor_id: String,
    /// Vendor name.
    pub vendor: String,
    /// Catalogue category.
    pub category: String,
}

/// One page's decision.
#[derive(Debug, Clone, Default)]
pub struct PageCsp {
    /// The URL path (the `location` for a per-page policy).
    pub path: String,
    /// Whether the page is sensitive.
    pub sensitive: bool,
    /// False when the page could not be audited (nothing to decide).
    pub audited: bool,
    /// Allowed sources.
    pub allowed: BTreeSet<Allowed>,
    /// Excluded trackers.
    pub excluded: BTreeSet<Excluded>,
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= EXCERPT {
        return s.to_owned();
    }
    let cut: String = s.chars().take(EXCERPT).collect();
    format!("{cut}…")
}

impl PageCsp {
    /// Decides what `page` may load: trackers (its findings) are excluded unless their vendor is
    /// in `keep` and the page is not sensitive.
    pub fn decide(u: PageUse, page: &PageReport, keep: &[String]) -> PageCsp {
        let mut out = PageCsp {
            path: u.path,
            sensitive: page.sensitive,
            audited: page.error.is_none(),
            ..PageCsp::default()
        };
        let trackers: BTreeMap<&str, (&str, &str, &str)> = page
            .findings
            .iter()
            .map(|f| {
                (
                    f.host.as_str(),
                    (f.vendor_id.as_str(), f.vendor.as_str(), f.category.as_str()),
                )
            })
            .collect();
        let vendor_of = |id: &'static str| -> (&str, &str, &str) {
            page.findings
                .iter()
                .find(|f| f.vendor_id == id)
                .map_or((id, id, "other"), |f| {
                    (f.vendor_id.as_str(), f.vendor.as_str(), f.category.as_str())
                })
        };
        let kept = |vendor_id: &str| !page.sensitive && keep.iter().any(|k| k == vendor_id);
        for l in u.loads {
            match trackers.get(l.host.as_str()) {
                Some(&(id, name, cat)) if kept(id) => {
                    out.allowed.insert(Allowed {
                        directive: l.directive.to_owned(),
                        source: l.source,
                        reason: format!(
                            "tracker {name} ({cat}) kept on ordinary pages by --csp-allow {id} ({})",
                            l.how
                        ),
                    });
                }
                Some(&(id, name, cat)) => {
                    out.excluded.insert(Excluded {
                        what: l.host,
                        vendor_id: id.to_owned(),
                        vendor: name.to_owned(),
                        category: cat.to_owned(),
                    });
                }
                None => {
                    out.allowed.insert(Allowed {
                        directive: l.directive.to_owned(),
                        source: l.source,
                        reason: format!("{} {} (not a tracker)", l.how, l.host),
                    });
                }
            }
        }
        for s in u.inline {
            let vendor = s.snippet_vendors.first().map(|v| vendor_of(v)).or_else(|| {
                s.hosts
                    .iter()
                    .find_map(|h| trackers.get(h.as_str()).copied())
            });
            match vendor {
                Some((id, name, cat)) if !kept(id) => {
                    out.excluded.insert(Excluded {
                        what: format!("inline script \"{}\"", shorten(&s.excerpt)),
                        vendor_id: id.to_owned(),
                        vendor: name.to_owned(),
                        category: cat.to_owned(),
                    });
                }
                Some((id, name, _)) => {
                    out.allowed.insert(Allowed {
                        directive: "script-src".to_owned(),
                        source: s.hash,
                        reason: format!(
                            "inline {name} snippet kept by --csp-allow {id}: \"{}\"",
                            shorten(&s.excerpt)
                        ),
                    });
                }
                None => {
                    out.allowed.insert(Allowed {
                        directive: "script-src".to_owned(),
                        source: s.hash,
                        reason: format!("inline script \"{}\"", shorten(&s.excerpt)),
                    });
                }
            }
        }
        out
    }
}

/// A policy: sources per directive.
#[derive(Debug, Clone)]
pub struct Policy {
    directives: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Policy {
    fn base() -> Policy {
        let mut directives: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        for (d, s) in [
            ("default-src", "'self'"),
            ("script-src", "'self'"),
            ("style-src", "'self'"),
            ("style-src", "'unsafe-inline'"),
            ("img-src", "'self'"),
            ("img-src", "data:"),
            ("object-src", "'none'"),
            ("base-uri", "'self'"),
            ("form-action", "'self'"),
        ] {
            directives.entry(d).or_default().insert(s.to_owned());
        }
        Policy { directives }
    }

    fn allow(&mut self, a: &Allowed) {
        let Some(d) = ORDER.iter().find(|d| **d == a.directive) else {
            return;
        };
        let set = self.directives.entry(d).or_default();
        if set.is_empty() && *d != "default-src" {
            set.insert("'self'".to_owned());
        }
        set.insert(a.source.clone());
    }

    /// The policy text, with the report endpoint when given.
    pub fn render(&self, report: Option<&Url>) -> String {
        let mut parts: Vec<String> = Vec::new();
        for d in ORDER {
            if let Some(set) = self.directives.get(d) {
                let mut sources: Vec<&str> = set.iter().map(String::as_str).collect();
                // Keywords first, then hosts, then hashes: easier to read.
                sources.sort_by_key(|s| (s.starts_with("'sha"), !s.starts_with('\''), *s));
                if d == "script-src" && report.is_some() {
                    sources.push("'report-sample'");
                }
                parts.push(format!("{d} {}", sources.join(" ")));
            }
        }
        if let Some(u) = report {
            parts.push(format!("report-uri {u}"));
            parts.push(format!("report-to {REPORT_GROUP}"));
        }
        parts.join("; ")
    }
}

/// A sensitive page's own policy.
#[derive(Debug, Clone, Serialize)]
pub struct PagePolicy {
    /// The URL path.
    pub path: String,
    /// The policy.
    pub policy: String,
    /// What it allows, and why.
    pub allowed: Vec<Allowed>,
}

/// A tracker left out, with the pages it was found on.
#[derive(Debug, Clone, Serialize)]
pub struct ExcludedOn {
    /// The tracker.
    #[serde(flatten)]
    pub tracker: Excluded,
    /// Where.
    pub pages: Vec<String>,
}

/// Everything `--csp` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CspDoc {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The start URLs.
    pub start_urls: Vec<String>,
    /// The site-wide policy for ordinary pages.
    pub policy: String,
    /// The ordinary pages it was built from.
    pub pages: Vec<String>,
    /// What it allows, and why.
    pub allowed: Vec<Allowed>,
    /// Sensitive pages, each with a stricter policy.
    pub sensitive: Vec<PagePolicy>,
    /// Trackers no policy allows.
    pub excluded: Vec<ExcludedOn>,
    /// The report endpoint, when given.
    pub report_uri: Option<String>,
    /// The `Reporting-Endpoints` header value that `report-to` needs.
    pub reporting_endpoints: Option<String>,
}

/// Builds the site-wide and the per-sensitive-page policies.
pub fn build(report: &Report, pages: &[PageCsp], endpoint: Option<&Url>) -> CspDoc {
    let mut site = Policy::base();
    let mut allowed: BTreeSet<Allowed> = BTreeSet::new();
    let mut site_pages = Vec::new();
    let mut sensitive = Vec::new();
    let mut excluded: BTreeMap<Excluded, Vec<String>> = BTreeMap::new();
    for p in pages.iter().filter(|p| p.audited) {
        for e in &p.excluded {
            let list = excluded.entry(e.clone()).or_default();
            if !list.contains(&p.path) {
                list.push(p.path.clone());
            }
        }
        if p.sensitive {
            let mut own = Policy::base();
            for a in &p.allowed {
                own.allow(a);
            }
            sensitive.push(PagePolicy {
                path: p.path.clone(),
                policy: own.render(endpoint),
                allowed: p.allowed.iter().cloned().collect(),
            });
        } else {
            site_pages.push(p.path.clone());
            for a in &p.allowed {
                site.allow(a);
                allowed.insert(a.clone());
            }
        }
    }
    CspDoc {
        schema: SCHEMA,
        start_urls: report.start_urls.clone(),
        policy: site.render(endpoint),
        pages: site_pages,
        allowed: allowed.into_iter().collect(),
        sensitive,
        excluded: excluded
            .into_iter()
            .map(|(tracker, pages)| ExcludedOn { tracker, pages })
            .collect(),
        report_uri: endpoint.map(Url::to_string),
        reporting_endpoints: endpoint.map(|u| format!("{REPORT_GROUP}=\"{u}\"")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn hash_matches_the_csp_spec_example() {
        // echo -n "alert('Hello, world.');" | openssl dgst -sha256 -binary | base64
        assert_eq!(
            hash_source("alert('Hello, world.');"),
            "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
        );
    }

    #[test]
    fn policy_renders_in_order_with_endpoint() {
        let mut p = Policy::base();
        p.allow(&Allowed {
            directive: "font-src".into(),
            source: "https://fonts.gstatic.com".into(),
            reason: String::new(),
        });
        let u = Url::parse("https://dns.force.test:8443/csp-report").unwrap();
        let text = p.render(Some(&u));
        assert_eq!(
            text,
            "default-src 'self'; script-src 'self' 'report-sample'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; font-src 'self' https://fonts.gstatic.com; object-src 'none'; \
             base-uri 'self'; form-action 'self'; report-uri https://dns.force.test:8443/csp-report; \
             report-to csp-endpoint"
        );
    }
}
