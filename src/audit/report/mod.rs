//! The audit report: its data model (the JSON schema, [`SCHEMA`]; field names are stable),
//! [`Report::tally`] of the totals, and its three renderings: a table for people ([`table()`],
//! in `text`), JSON for machines ([`json()`], here: the serde form of the model) and SARIF 2.1.0
//! for code-scanning dashboards ([`sarif()`], in `sarif`).

mod sarif;
mod text;

use std::collections::BTreeSet;

use serde::Serialize;

use super::extract::script::TrackerId;

pub use sarif::sarif;
pub use text::{short_vendor, table};

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
    /// Per page (same order), what a Content-Security-Policy must allow (`--csp`; not in the
    /// JSON report).
    #[serde(skip)]
    pub csp: Vec<super::csp::PageCsp>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order() {
        assert!(
            Severity::Critical > Severity::High
                && Severity::High > Severity::Medium
                && Severity::Medium > Severity::Low
        );
    }
}
