//! `pixelguard audit --baseline previous.json`: what changed since a previous JSON report.
//!
//! A change that means a pixel came back is an alert (exit code 4): a vendor on a page where it
//! was not before, a tracker ID (pixel, measurement, container) not seen on that page before, or
//! trackers on a page that is sensitive now and was not then. Trackers that went away, pages
//! that left the crawl and pages no longer sensitive are printed as information. Only the
//! differences are printed. Pages are matched by URL (for `--input` files: the path as given).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::extract::script::TrackerId;
use super::report::{PageReport, Report};

/// Largest baseline file read.
pub const MAX_BASELINE: u64 = 256 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct OldReport {
    schema: String,
    #[serde(default)]
    pages: Vec<OldPage>,
}

#[derive(Debug, Deserialize)]
struct OldPage {
    url: String,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    findings: Vec<OldFinding>,
}

#[derive(Debug, Deserialize)]
struct OldFinding {
    vendor_id: String,
    #[serde(default)]
    ids: Vec<TrackerId>,
}

/// A previous report, reduced to what a comparison needs.
#[derive(Debug)]
pub struct Baseline {
    pages: BTreeMap<String, Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    sensitive: bool,
    audited: bool,
    vendors: BTreeSet<String>,
    ids: BTreeSet<TrackerId>,
}

impl Baseline {
    /// Reads a JSON report written by `pixelguard audit --format json`.
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("--baseline {shown}: {e}"))?;
        if meta.len() > MAX_BASELINE {
            return Err(format!(
                "--baseline {shown}: larger than {} MiB",
                MAX_BASELINE >> 20
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("--baseline {shown}: {e}"))?;
        Baseline::parse(&text).map_err(|e| format!("--baseline {shown}: {e}"))
    }

    /// Parses a JSON report.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let old: OldReport = serde_json::from_str(text).map_err(|e| {
            format!("not a pixelguard JSON report (write one with --format json): {e}")
        })?;
        if old.schema != super::report::SCHEMA {
            return Err(format!(
                "schema {:?}, expected {:?}",
                old.schema,
                super::report::SCHEMA
            ));
        }
        let mut pages = BTreeMap::new();
        for p in old.pages {
            let seen: &mut Seen = pages.entry(p.url).or_default();
            seen.sensitive |= p.sensitive;
            seen.audited |= p.error.is_none();
            for f in p.findings {
                seen.vendors.insert(f.vendor_id);
                seen.ids.extend(f.ids);
            }
        }
        Ok(Baseline { pages })
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Change {
    /// The page.
    pub page: String,
    /// `new_vendor`, `new_id`, `now_sensitive` (alerts); `vendor_gone`, `page_gone`,
    /// `no_longer_sensitive` (information).
    pub kind: &'static str,
    /// Vendor id, when the change is about one.
    pub vendor_id: Option<String>,
    /// The tracker ID, when the change is about one.
    pub id: Option<TrackerId>,
    /// One line for people.
    pub detail: String,
}

/// The comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    /// Changes that mean a tracker appeared (exit code 4).
    pub alerts: Vec<Change>,
    /// Other changes.
    pub info: Vec<Change>,
}

fn vendor_name(p: &PageReport, id: &str) -> String {
    p.findings
        .iter()
        .find(|f| f.vendor_id == id)
        .map_or_else(|| id.to_owned(), |f| f.vendor.clone())
}

/// Compares `now` with the baseline.
pub fn diff(old: &Baseline, now: &Report) -> Diff {
    let mut d = Diff::default();
    let empty = Seen::default();
    let mut urls: BTreeSet<&str> = BTreeSet::new();
    for p in now.pages.iter().filter(|p| p.error.is_none()) {
        urls.insert(&p.url);
        let before = old.pages.get(&p.url).unwrap_or(&empty);
        let vendors: BTreeSet<&str> = p.findings.iter().map(|f| f.vendor_id.as_str()).collect();
        for v in &vendors {
            if !before.vendors.contains(*v) {
                d.alerts.push(Change {
                    page: p.url.clone(),
                    kind: "new_vendor",
                    vendor_id: Some((*v).to_owned()),
                    id: None,
                    detail: format!("new tracker {} on {}", vendor_name(p, v), p.url),
                });
            }
        }
        for f in &p.findings {
            for id in &f.ids {
                if !before.ids.contains(id)
                    && !d
                        .alerts
                        .iter()
                        .any(|c| c.page == p.url && c.id.as_ref() == Some(id))
                {
                    d.alerts.push(Change {
                        page: p.url.clone(),
                        kind: "new_id",
                        vendor_id: Some(f.vendor_id.clone()),
                        id: Some(id.clone()),
                        detail: format!("new {} {} ({}) on {}", id.kind, id.id, f.vendor, p.url),
                    });
                }
            }
        }
        if p.sensitive && !before.sensitive && before.audited && !vendors.is_empty() {
            let list: Vec<&str> = vendors.iter().copied().collect();
            d.alerts.push(Change {
                page: p.url.clone(),
                kind: "now_sensitive",
                vendor_id: None,
                id: None,
                detail: format!(
                    "{} is sensitive now ({}) and has trackers: {}",
                    p.url,
                    p.sensitive_reasons.join("; "),
                    list.join(", ")
                ),
            });
        }
        if !p.sensitive && before.sensitive {
            d.info.push(Change {
                page: p.url.clone(),
                kind: "no_longer_sensitive",
                vendor_id: None,
                id: None,
                detail: format!("{} is no longer found sensitive", p.url),
            });
        }
        for v in before
            .vendors
            .difference(&vendors.iter().map(|v| (*v).to_owned()).collect())
        {
            d.info.push(Change {
                page: p.url.clone(),
                kind: "vendor_gone",
                vendor_id: Some(v.clone()),
                id: None,
                detail: format!("tracker {v} gone from {}", p.url),
            });
        }
    }
    for (url, seen) in &old.pages {
        if seen.audited && !urls.contains(url.as_str()) {
            d.info.push(Change {
                page: url.clone(),
                kind: "page_gone",
                vendor_id: None,
                id: None,
                detail: format!("{url} was not audited this time"),
            });
        }
    }
    d
}

/// The differences for people: alerts first; one line each; nothing when nothing changed.
pub fn text(d: &Diff) -> String {
    let mut o = String::new();
    for c in &d.alerts {
        let _ = writeln!(o, "NEW   {}", c.detail);
    }
    for c in &d.info {
        let _ = writeln!(o, "info  {}", c.detail);
    }
    o
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rejects_what_is_not_a_report() {
        assert!(Baseline::parse("{").is_err());
        assert!(Baseline::parse("[]").is_err());
        assert!(Baseline::parse(r#"{"schema": "other/1", "pages": []}"#).is_err());
        let b = Baseline::parse(r#"{"schema": "pixelguard.audit/1", "pages": [{"url": "u", "findings": [{"vendor_id": "meta", "ids": [{"kind": "meta_pixel", "id": "1"}]}]}]}"#).unwrap();
        assert!(b.pages["u"].vendors.contains("meta"));
    }
}
