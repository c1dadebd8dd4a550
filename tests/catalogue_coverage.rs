//! Coverage of the built-in tracker catalogue on what public-sector websites actually load: the
//! sourced sample in `tests/data/coverage/public-sector-hosts.tsv` is classified with the
//! catalogue (most specific entry wins, as the resolver and `pixelguard audit` do) and the shares
//! it blocks by default, blocks only in strict zones, or names without blocking are printed and
//! asserted.
//!
//! Measured with `cargo test --test catalogue_coverage -- --nocapture` (21 hosts):
//! - before issue 17 (catalogue at commit 8a262eb, 22 vendors): 7 blocked by default (33%), 1
//!   more in strict zones, 2 named only: 10 of 21 (48%) named with a vendor. (at-o.net was a
//!   CNAME-cloak target then, matched only inside CNAME chains.)
//! - after (113 vendors): 15 blocked by default (71%), 2 more in strict zones, 4 named only
//!   (www.facebook.com, www.google.com, youtube.com, twitter.com: services people need):
//!   21 of 21 (100%) named. The test asserts at least 95% named and 70% blocked by default.
//!
//! To measure another catalogue file (for example an older revision of
//! `blocklists/trackers.toml`), set `PIXELGUARD_COVERAGE_CATALOGUE=FILE`: the figures are printed
//! for that file too, without assertions.

use pixelguard::audit::classify::Known;
use pixelguard::lists::catalogue::{Catalogue, HostStatus};

const SAMPLE: &str = include_str!("data/coverage/public-sector-hosts.tsv");

/// One sample row: the host and what the catalogue says about it.
struct Row<'a> {
    host: &'a str,
    seen_on: &'a str,
}

fn sample() -> Vec<Row<'static>> {
    let mut rows = Vec::new();
    for (i, line) in SAMPLE.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            cols.len(),
            4,
            "line {}: expected 4 tab-separated columns",
            i + 1
        );
        assert!(
            cols.iter().all(|c| !c.trim().is_empty()),
            "line {}: empty column",
            i + 1
        );
        assert!(
            cols[3] == "observed" || cols[3].starts_with("product ("),
            "line {}: basis must be `observed` or `product (reference)`",
            i + 1
        );
        rows.push(Row {
            host: cols[0],
            seen_on: cols[1],
        });
    }
    rows
}

/// Counts per outcome.
#[derive(Debug, Default)]
struct Figures {
    total: usize,
    blocked: usize,
    strict_only: usize,
    named_only: usize,
    unknown: Vec<String>,
}

impl Figures {
    fn named(&self) -> usize {
        self.blocked + self.strict_only + self.named_only
    }

    fn pct(&self, n: usize) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * n as f64 / self.total as f64
        }
    }
}

fn measure(label: &str, known: &Known, rows: &[Row<'_>]) -> Figures {
    let mut f = Figures {
        total: rows.len(),
        ..Figures::default()
    };
    println!("== {label}");
    for r in rows {
        let outcome = match known.lookup(r.host) {
            Some(info) => {
                match info.status {
                    HostStatus::Block => f.blocked += 1,
                    HostStatus::Caution => f.strict_only += 1,
                    HostStatus::Shared => f.named_only += 1,
                }
                format!("{} {} ({})", info.status, info.vendor_id, info.rule)
            }
            None => {
                f.unknown.push(r.host.to_owned());
                "unknown".to_owned()
            }
        };
        println!("  {:<28} {:<40} seen: {}", r.host, outcome, r.seen_on);
    }
    println!(
        "  {} hosts: {} blocked by default ({:.0}%), {} more in strict zones, {} named only; \
         {} named with a vendor ({:.0}%); unknown: {:?}",
        f.total,
        f.blocked,
        f.pct(f.blocked),
        f.strict_only,
        f.named_only,
        f.named(),
        f.pct(f.named()),
        f.unknown
    );
    f
}

#[test]
fn the_catalogue_names_what_public_sector_sites_load() {
    let rows = sample();
    assert!(rows.len() >= 20, "{} rows", rows.len());
    let mut hosts: Vec<&str> = rows.iter().map(|r| r.host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    assert_eq!(hosts.len(), rows.len(), "a host is listed twice");

    if let Ok(path) = std::env::var("PIXELGUARD_COVERAGE_CATALOGUE") {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let other = Catalogue::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        measure(&format!("catalogue {path}"), &Known::new(other), &rows);
    }

    let known = match Known::builtin() {
        Ok(k) => k,
        Err(e) => panic!("built-in catalogue: {e}"),
    };
    let f = measure("built-in catalogue", &known, &rows);
    assert!(
        f.pct(f.named()) >= 95.0,
        "only {} of {} sample hosts are named with a vendor; unknown: {:?}",
        f.named(),
        f.total,
        f.unknown
    );
    assert!(
        f.pct(f.blocked) >= 70.0,
        "only {} of {} sample hosts are blocked by default",
        f.blocked,
        f.total
    );
}
