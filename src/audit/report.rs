//! The audit report: its data model (the JSON schema, [`SCHEMA`]; field names are stable) and
//! its three renderings: a table for people ([`table`]), JSON for machines ([`json()`]) and SARIF
//! 2.1.0 for code-scanning dashboards ([`sarif`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::json;

use super::extract::script::TrackerId;

/// The JSON report's schema id; bumped on any incompatible change of field names or meaning.
pub const SCHEMA: &str = "pixelguard.audit/1";

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Evidence without a confirmed load (a CSP allowance), vendor infrastructure on an ordinary
    /// page, real-user monitoring.
    Low,
    /// Analytics, tag managers, marketing suites, A/B testing.
    Medium,
    /// Advertising, social and session-replay trackers, and CNAME-cloaked trackers.
    High,
    /// Any tracker on a sensitive page.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The SARIF level: `error` for critical and high, `warning` for medium, `note` for low.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low => "note",
        }
    }
}

/// One piece of evidence for a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// How the page refers to the tracker: `script_src`, `inline_script`, `img`, `pixel_img`,
    /// `iframe`, `link`, `resource_hint`, `form_action`, `media`, `a_ping`, `noscript_img`,
    /// `noscript_iframe`, `noscript`, `csp_header`, `csp_meta`, `network_request`, `snippet`,
    /// `cname`.
    pub kind: String,
    /// The element, snippet or CNAME chain, shortened.
    pub detail: String,
}

/// What pixelguard's policy would do with a tracker host on the organisation's own network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyView {
    /// The shipped catalogue's status of the host: `block` (blocked by default), `caution`
    /// (blocked only in zones with `catalogue = "strict"`), `shared` (never blocked at DNS: the
    /// tracker is a path on a host that serves the vendor's main service), `cloak_target`
    /// (blocked only by CNAME uncloaking), `not_listed` (not in the catalogue; found by a
    /// configured list).
    pub catalogue: String,
    /// The catalogue or list entry that matched (a suffix of the host).
    pub rule: Option<String>,
    /// Configured zones in `enforce` mode that would block it.
    pub blocked_in: Vec<String>,
    /// Configured zones in `log` mode that would record it as would-block.
    pub logged_in: Vec<String>,
}

impl PolicyView {
    /// One short phrase for tables.
    pub fn describe(&self) -> String {
        let zones = if !self.blocked_in.is_empty() {
            format!("blocked in {}", self.blocked_in.join(", "))
        } else if !self.logged_in.is_empty() {
            format!("logged in {}", self.logged_in.join(", "))
        } else {
            "not blocked by this config".to_owned()
        };
        match self.catalogue.as_str() {
            "block" => format!("block: {zones}"),
            "caution" => format!("caution (strict zones only): {zones}"),
            "shared" if self.blocked_in.is_empty() && self.logged_in.is_empty() => {
                "shared host: DNS cannot block it without the vendor's own site".to_owned()
            }
            "shared" => format!("shared host (only with the whole service): {zones}"),
            "cloak_target" => format!("cloaked (uncloaking): {zones}"),
            other => format!("{other}: {zones}"),
        }
    }
}

/// One tracker (vendor and host) on one page.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Catalogue vendor id (`meta`, `google`, ...), a slug of the cloak vendor, or `other`.
    pub vendor_id: String,
    /// Vendor display name.
    pub vendor: String,
    /// Catalogue category id (`advertising`, `analytics`, ...), or `cname_cloak` / `other`.
    pub category: String,
    /// The tracker host (for CSP wildcards the pattern, e.g. `*.facebook.net`; for cloaked
    /// trackers the first-party host).
    pub host: String,
    /// Account and container IDs (pixel ID, GA4 measurement ID, GTM container, ...).
    pub ids: Vec<TrackerId>,
    /// Why.
    pub evidence: Vec<Evidence>,
    /// For cloaked trackers: the CNAME chain from the first-party host, in order.
    pub cloaked_via: Vec<String>,
    /// What pixelguard would do on the organisation's own network.
    pub policy: PolicyView,
    /// 1-based line in the page source where the host or ID first appears, when known.
    pub line: Option<u32>,
}

/// One audited page.
#[derive(Debug, Clone, Serialize)]
pub struct PageReport {
    /// The page URL (for `--input` HTML files: the path as given).
    pub url: String,
    /// `crawl`, `html` or `har`.
    pub source: String,
    /// Link depth from the start URL (crawl only).
    pub depth: Option<u32>,
    /// HTTP status.
    pub status: Option<u16>,
    /// `<title>`.
    pub title: Option<String>,
    /// Whether the page is sensitive.
    pub sensitive: bool,
    /// Why it is sensitive.
    pub sensitive_reasons: Vec<String>,
    /// Why it could not be audited (timeout, connection refused, ...).
    pub error: Option<String>,
    /// Remarks: truncation, redirects, tag-manager caveats.
    pub notes: Vec<String>,
    /// Trackers, most severe first.
    pub findings: Vec<Finding>,
}

/// A URL the crawl did not audit as a page.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The URL.
    pub url: String,
    /// Why (not HTML, redirected off-site, duplicate after redirect).
    pub reason: String,
}

/// Links found but not followed, by reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NotFollowed {
    /// Beyond `--depth`.
    pub depth: usize,
    /// Beyond `--max-pages`.
    pub max_pages: usize,
    /// On another site.
    pub off_site: usize,
}

/// What the crawl did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrawlStats {
    /// HTTP requests made.
    pub requests: usize,
    /// Pages audited from the crawl.
    pub pages: usize,
    /// Pages that failed (timeout, connection error).
    pub failed: usize,
    /// Pages cut at `--max-body`.
    pub truncated: usize,
    /// `--max-pages`.
    pub max_pages: usize,
    /// `--depth`.
    pub depth: u32,
    /// True when `--max-pages` stopped the crawl with links left.
    pub limit_reached: bool,
    /// Links not followed.
    pub not_followed: NotFollowed,
    /// URLs fetched but not audited as pages.
    pub skipped: Vec<Skipped>,
    /// Wall-clock time of the crawl, in milliseconds.
    pub elapsed_ms: u64,
}

/// What uncloaking did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UncloakStats {
    /// Whether it ran.
    pub enabled: bool,
    /// The upstream resolvers asked.
    pub upstreams: Vec<String>,
    /// First-party hosts resolved.
    pub checked: usize,
    /// Of those, CNAMEd to a tracker.
    pub cloaked: usize,
    /// Hosts whose resolution failed.
    pub failed: Vec<String>,
    /// Why it did not run, or what it left out.
    pub note: Option<String>,
}

/// Per-vendor totals.
#[derive(Debug, Clone, Serialize)]
pub struct VendorSummary {
    /// Vendor id.
    pub vendor_id: String,
    /// Display name.
    pub vendor: String,
    /// Categories seen.
    pub categories: Vec<String>,
    /// Hosts seen.
    pub hosts: Vec<String>,
    /// IDs seen.
    pub ids: Vec<TrackerId>,
    /// Pages with this vendor.
    pub pages: usize,
    /// Sensitive pages with this vendor.
    pub sensitive_pages: usize,
    /// Findings.
    pub findings: usize,
    /// Worst severity.
    pub worst: Severity,
}

/// Totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Pages audited (including failed ones).
    pub pages: usize,
    /// Pages that could not be audited.
    pub pages_failed: usize,
    /// Sensitive pages.
    pub sensitive_pages: usize,
    /// Pages with at least one finding.
    pub pages_with_trackers: usize,
    /// Findings.
    pub findings: usize,
    /// Findings by severity.
    pub critical: usize,
    /// High findings.
    pub high: usize,
    /// Medium findings.
    pub medium: usize,
    /// Low findings.
    pub low: usize,
    /// The worst severity, if any finding.
    pub worst: Option<Severity>,
}

/// Tool identification.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// `pixelguard`.
    pub name: &'static str,
    /// The crate version.
    pub version: &'static str,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Tool.
    pub tool: Tool,
    /// Start URLs.
    pub start_urls: Vec<String>,
    /// `--input` files.
    pub inputs: Vec<String>,
    /// Registrable domains treated as first party (uncloaking).
    pub site_domains: Vec<String>,
    /// Totals.
    pub summary: Summary,
    /// The crawl.
    pub crawl: CrawlStats,
    /// Uncloaking.
    pub uncloak: UncloakStats,
    /// Per vendor, worst first.
    pub vendors: Vec<VendorSummary>,
    /// Pages, in crawl order (inputs first).
    pub pages: Vec<PageReport>,
}

impl Report {
    /// Fills `summary` and `vendors` from `pages`.
    pub fn tally(&mut self) {
        let mut s = Summary {
            pages: self.pages.len(),
            ..Summary::default()
        };
        let mut vendors: Vec<VendorSummary> = Vec::new();
        for p in &self.pages {
            s.pages_failed += usize::from(p.error.is_some());
            s.sensitive_pages += usize::from(p.sensitive);
            s.pages_with_trackers += usize::from(!p.findings.is_empty());
            let mut seen_here: BTreeSet<&str> = BTreeSet::new();
            for f in &p.findings {
                s.findings += 1;
                match f.severity {
                    Severity::Critical => s.critical += 1,
                    Severity::High => s.high += 1,
                    Severity::Medium => s.medium += 1,
                    Severity::Low => s.low += 1,
                }
                s.worst = s.worst.max(Some(f.severity));
                let i = match vendors.iter().position(|v| v.vendor_id == f.vendor_id) {
                    Some(i) => i,
                    None => {
                        vendors.push(VendorSummary {
                            vendor_id: f.vendor_id.clone(),
                            vendor: f.vendor.clone(),
                            categories: Vec::new(),
                            hosts: Vec::new(),
                            ids: Vec::new(),
                            pages: 0,
                            sensitive_pages: 0,
                            findings: 0,
                            worst: f.severity,
                        });
                        vendors.len() - 1
                    }
                };
                let v = &mut vendors[i];
                v.findings += 1;
                v.worst = v.worst.max(f.severity);
                if !v.categories.contains(&f.category) {
                    v.categories.push(f.category.clone());
                }
                if !v.hosts.contains(&f.host) {
                    v.hosts.push(f.host.clone());
                }
                for id in &f.ids {
                    if !v.ids.contains(id) {
                        v.ids.push(id.clone());
                    }
                }
                if seen_here.insert(f.vendor_id.as_str()) {
                    v.pages += 1;
                    v.sensitive_pages += usize::from(p.sensitive);
                }
            }
        }
        vendors.sort_by(|a, b| {
            b.worst
                .cmp(&a.worst)
                .then(b.pages.cmp(&a.pages))
                .then(a.vendor_id.cmp(&b.vendor_id))
        });
        self.summary = s;
        self.vendors = vendors;
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// The report as pretty-printed JSON.
pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

// ---------------------------------------------------------------------------------------------
// Table

/// The display name's head: "Meta Platforms (Facebook, Instagram) - Meta Pixel" → "Meta Platforms".
pub fn short_vendor(name: &str) -> &str {
    let cut = [" (", " - "]
        .iter()
        .filter_map(|s| name.find(s))
        .min()
        .unwrap_or(name.len());
    name[..cut].trim()
}

/// The page's URL as shown in tables: the path when it is on the first start URL's origin.
fn short_url<'a>(url: &'a str, origin: Option<&str>) -> &'a str {
    match origin {
        Some(o) if url.len() > o.len() && url.starts_with(o) && url.as_bytes()[o.len()] == b'/' => {
            &url[o.len()..]
        }
        Some(o) if url == o => "/",
        _ => url,
    }
}

fn origin_of(r: &Report) -> Option<String> {
    let u = url::Url::parse(r.start_urls.first()?).ok()?;
    Some(u.origin().ascii_serialization())
}

fn ids_text(ids: &[TrackerId]) -> String {
    if ids.is_empty() {
        "-".to_owned()
    } else {
        ids.iter()
            .map(TrackerId::label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

/// The report as text for people: a headline, one block per page with trackers (sensitivity
/// reasons, one line per tracker with its evidence under it), vendor totals, clean pages,
/// problems, and what the crawl and uncloaking did.
pub fn table(r: &Report) -> String {
    let mut o = String::new();
    let s = &r.summary;
    let origin = origin_of(r);
    let target = if r.start_urls.is_empty() {
        r.inputs.join(", ")
    } else {
        r.start_urls.join(", ")
    };
    let _ = writeln!(
        o,
        "pixelguard audit of {target}: {} page{}, {} sensitive, {} with trackers; {} finding{} ({} critical, {} high, {} medium, {} low)",
        s.pages,
        if s.pages == 1 { "" } else { "s" },
        s.sensitive_pages,
        s.pages_with_trackers,
        s.findings,
        if s.findings == 1 { "" } else { "s" },
        s.critical,
        s.high,
        s.medium,
        s.low
    );
    // Column widths over every finding.
    let all: Vec<&Finding> = r.pages.iter().flat_map(|p| p.findings.iter()).collect();
    let w_vendor = all
        .iter()
        .map(|f| short_vendor(&f.vendor).chars().count())
        .max()
        .unwrap_or(0);
    let w_cat = all.iter().map(|f| f.category.len()).max().unwrap_or(0);
    let w_host = all
        .iter()
        .map(|f| f.host.chars().count())
        .max()
        .unwrap_or(0);
    let w_ids = all
        .iter()
        .map(|f| ids_text(&f.ids).chars().count())
        .max()
        .unwrap_or(0);
    for p in r.pages.iter().filter(|p| !p.findings.is_empty()) {
        let _ = writeln!(o);
        let title = p
            .title
            .as_deref()
            .map(|t| format!("  \"{t}\""))
            .unwrap_or_default();
        let _ = writeln!(o, "{}{title}", short_url(&p.url, origin.as_deref()));
        if p.sensitive {
            let _ = writeln!(o, "  SENSITIVE: {}", p.sensitive_reasons.join("; "));
        }
        for f in &p.findings {
            let _ = writeln!(
                o,
                "  {}  {}  {}  {}  {}  {}",
                pad(f.severity.as_str(), 8),
                pad(short_vendor(&f.vendor), w_vendor),
                pad(&f.category, w_cat),
                pad(&f.host, w_host),
                pad(&ids_text(&f.ids), w_ids),
                f.policy.describe()
            );
            for e in f.evidence.iter().take(3) {
                let _ = writeln!(o, "            {}: {}", e.kind, e.detail);
            }
            if f.evidence.len() > 3 {
                let _ = writeln!(o, "            … {} more", f.evidence.len() - 3);
            }
        }
        for n in &p.notes {
            let _ = writeln!(o, "  note: {n}");
        }
    }
    if !r.vendors.is_empty() {
        let _ = writeln!(o);
        let w = r
            .vendors
            .iter()
            .map(|v| short_vendor(&v.vendor).chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let _ = writeln!(o, "{}  PAGES  SENSITIVE  WORST     IDS", pad("VENDOR", w));
        for v in &r.vendors {
            let _ = writeln!(
                o,
                "{}  {}  {}  {}  {}",
                pad(short_vendor(&v.vendor), w),
                pad(&v.pages.to_string(), 5),
                pad(&v.sensitive_pages.to_string(), 9),
                pad(v.worst.as_str(), 8),
                ids_text(&v.ids)
            );
        }
    }
    let clean: Vec<&str> = r
        .pages
        .iter()
        .filter(|p| p.findings.is_empty() && p.error.is_none() && p.status.is_none_or(|s| s < 400))
        .map(|p| short_url(&p.url, origin.as_deref()))
        .collect();
    if !clean.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "No trackers found ({}): {}",
            clean.len(),
            clean.join(", ")
        );
    }
    let mut problems: Vec<String> = Vec::new();
    for p in &r.pages {
        if let Some(e) = &p.error {
            problems.push(format!("{}: {e}", short_url(&p.url, origin.as_deref())));
            continue;
        }
        if let Some(status) = p.status.filter(|s| *s >= 400) {
            let what = if p.findings.is_empty() {
                "no trackers on the error page"
            } else {
                "error page audited"
            };
            problems.push(format!(
                "{}: HTTP {status} ({what})",
                short_url(&p.url, origin.as_deref())
            ));
        }
        if p.findings.is_empty() {
            for n in &p.notes {
                problems.push(format!("{}: {n}", short_url(&p.url, origin.as_deref())));
            }
        }
    }
    for sk in &r.crawl.skipped {
        problems.push(format!(
            "{}: {}",
            short_url(&sk.url, origin.as_deref()),
            sk.reason
        ));
    }
    if !problems.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "Not fully audited:");
        for p in problems.iter().take(50) {
            let _ = writeln!(o, "  {p}");
        }
        if problems.len() > 50 {
            let _ = writeln!(o, "  … {} more", problems.len() - 50);
        }
    }
    let _ = writeln!(o);
    let c = &r.crawl;
    if !r.start_urls.is_empty() {
        let _ = writeln!(
            o,
            "Crawl: {} requests, {} pages ({} failed, {} truncated) in {:.1}s; depth {}, max {} pages{}; not followed: {} beyond depth, {} beyond max pages, {} off-site",
            c.requests,
            c.pages,
            c.failed,
            c.truncated,
            c.elapsed_ms as f64 / 1000.0,
            c.depth,
            c.max_pages,
            if c.limit_reached {
                " (limit reached)"
            } else {
                ""
            },
            c.not_followed.depth,
            c.not_followed.max_pages,
            c.not_followed.off_site
        );
    }
    let u = &r.uncloak;
    if u.enabled {
        let _ = writeln!(
            o,
            "Uncloaking: {} first-party host{} under {} resolved via {}; {} cloaked{}",
            u.checked,
            if u.checked == 1 { "" } else { "s" },
            if r.site_domains.is_empty() {
                "-".to_owned()
            } else {
                r.site_domains.join(", ")
            },
            if u.upstreams.is_empty() {
                "-".to_owned()
            } else {
                u.upstreams.join(", ")
            },
            u.cloaked,
            if u.failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", u.failed.len())
            }
        );
    } else if let Some(n) = &u.note {
        let _ = writeln!(o, "Uncloaking: {n}");
    }
    o
}

// ---------------------------------------------------------------------------------------------
// SARIF

struct Rule {
    id: &'static str,
    name: &'static str,
    text: &'static str,
    level: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        id: "PGA001",
        name: "tracker-on-sensitive-page",
        text: "A third-party tracker loads on a sensitive page (crime reporting, health, a form collecting personal data).",
        level: "error",
    },
    Rule {
        id: "PGA002",
        name: "cname-cloaked-tracker",
        text: "A first-party host name is a CNAME alias for a tracker (CNAME cloaking).",
        level: "error",
    },
    Rule {
        id: "PGA003",
        name: "tracker",
        text: "A third-party tracker loads on the page.",
        level: "warning",
    },
    Rule {
        id: "PGA004",
        name: "csp-allows-tracker",
        text: "The Content-Security-Policy allows a tracker host, which a tag manager can load at run time.",
        level: "note",
    },
];

fn rule_for(p: &PageReport, f: &Finding) -> usize {
    if !f.cloaked_via.is_empty() {
        1
    } else if p.sensitive && f.severity == Severity::Critical {
        0
    } else if f
        .evidence
        .iter()
        .all(|e| e.kind == "csp_header" || e.kind == "csp_meta")
    {
        3
    } else {
        2
    }
}

/// The report as a SARIF 2.1.0 log: one result per finding, located at the page (URL, or the
/// input file's path so code scanning maps it to the repository) and, when known, the line.
pub fn sarif(r: &Report) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|ru| {
            json!({
                "id": ru.id,
                "name": ru.name,
                "shortDescription": {"text": ru.text},
                "defaultConfiguration": {"level": ru.level},
            })
        })
        .collect();
    let mut results = Vec::new();
    for p in &r.pages {
        for f in &p.findings {
            let ri = rule_for(p, f);
            let ids = if f.ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", ids_text(&f.ids))
            };
            let where_ = if p.sensitive {
                "sensitive page"
            } else {
                "page"
            };
            let mut text = format!(
                "{} {} tracker {}{ids} on {where_} {}",
                short_vendor(&f.vendor),
                f.category,
                f.host,
                p.url
            );
            if p.sensitive {
                let _ = write!(text, " [{}]", p.sensitive_reasons.join("; "));
            }
            let _ = write!(text, ". pixelguard: {}.", f.policy.describe());
            let mut physical = json!({"artifactLocation": {"uri": p.url}});
            if let Some(line) = f.line {
                physical["region"] = json!({"startLine": line});
            }
            results.push(json!({
                "ruleId": RULES[ri].id,
                "ruleIndex": ri,
                "level": f.severity.sarif_level(),
                "message": {"text": text},
                "locations": [{"physicalLocation": physical}],
                "partialFingerprints": {"pixelguardAudit/v1": format!("{}|{}|{}", f.vendor_id, f.host, p.url)},
                "properties": {
                    "severity": f.severity.as_str(),
                    "vendor_id": f.vendor_id,
                    "category": f.category,
                    "host": f.host,
                    "ids": f.ids,
                    "sensitive": p.sensitive,
                },
            }));
        }
    }
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": r.tool.name,
                "version": r.tool.version,
                "informationUri": "https://example.invalid/pixelguard",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(
            short_vendor("Meta Platforms (Facebook, Instagram) - Meta Pixel"),
            "Meta Platforms"
        );
        assert_eq!(short_vendor("Snap Inc. - Snap Pixel"), "Snap Inc.");
        assert_eq!(short_vendor("Hotjar"), "Hotjar");
        assert_eq!(
            short_url("http://a:1/x.html", Some("http://a:1")),
            "/x.html"
        );
        assert_eq!(short_url("http://a:1", Some("http://a:1")), "/");
        assert_eq!(
            short_url("http://a:10/x", Some("http://a:1")),
            "http://a:10/x"
        );
    }

    #[test]
    fn severity_order() {
        assert!(
            Severity::Critical > Severity::High
                && Severity::High > Severity::Medium
                && Severity::Medium > Severity::Low
        );
    }
}
