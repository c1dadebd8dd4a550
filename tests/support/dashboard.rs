//! What the dashboard tests compare: the tracker-attempt counts of a `/metrics` text and those
//! of the dashboard's zone × vendor table, in one shape, so that a test asserts they are equal.

use std::collections::BTreeMap;

use pixelguard::metrics::TRACKER_ATTEMPTS_TOTAL;
use scraper::{Html, Selector};

/// (zone, vendor, category, mode) → count; non-zero cells only.
pub type Counts = BTreeMap<(String, String, String, String), u64>;

/// The tracker-attempt series of a `/metrics` text (non-zero only).
pub fn metric_counts(text: &str) -> Counts {
    let mut out = Counts::new();
    for line in text.lines() {
        let Some((labels, value)) = line
            .strip_prefix(TRACKER_ATTEMPTS_TOTAL)
            .and_then(|r| r.strip_prefix('{'))
            .and_then(|r| r.rsplit_once("} "))
        else {
            continue;
        };
        let l: BTreeMap<&str, &str> = labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        let n: f64 = value.parse().unwrap();
        if n > 0.0 {
            let k = (l["zone"], l["vendor"], l["category"], l["mode"]);
            out.insert((k.0.into(), k.1.into(), k.2.into(), k.3.into()), n as u64);
        }
    }
    out
}

/// The page's zone × vendor table (non-zero cells only).
pub fn page_counts(html: &str) -> Counts {
    let doc = Html::parse_document(html);
    let rows = Selector::parse("table#zone-vendor tbody tr").unwrap();
    let cells = Selector::parse("td[data-mode]").unwrap();
    let mut out = Counts::new();
    for tr in doc.select(&rows) {
        let a = |n: &str| tr.value().attr(n).unwrap().to_owned();
        for td in tr.select(&cells) {
            let n: u64 = td.text().collect::<String>().trim().parse().unwrap();
            if n > 0 {
                let mode = td.value().attr("data-mode").unwrap().to_owned();
                out.insert(
                    (a("data-zone"), a("data-vendor"), a("data-category"), mode),
                    n,
                );
            }
        }
    }
    out
}
