//! The report as text for people ([`table`]): one block per page with trackers, vendor totals,
//! clean pages, problems, and what the crawl and uncloaking did; plus the shortening helpers the
//! table and the SARIF messages share (vendor names, page URLs, tracker ID lists).

use std::fmt::Write as _;

use super::{Finding, Report, TrackerId};

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

pub(super) fn ids_text(ids: &[TrackerId]) -> String {
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
}
