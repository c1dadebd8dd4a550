//! The figures of a report, folded line by line ([`Tally`]) and handed out as a serialisable
//! [`Report`] (its JSON form is the report's JSON format).
//!
//! What counts as what, per query-log line:
//! - `blocked`, `would_block`, `watched`: that outcome, for the line's zone and vendor (a line
//!   without a vendor counts as vendor `other`, as `pixelguard_tracker_attempts_total` does);
//! - `excepted`: an answer (`forwarded` / `cached`) that carries an `exception` field, for the
//!   vendor the exception overrode;
//! - every line also counts in its zone's `outcomes` (all outcomes, so a zone logged with
//!   `query_log = "all"` can be compared with `pixelguard_queries_total`).
//!
//! Memory is bounded whatever the log's size: zones and vendors are capped at [`KEYS_CAP`], and
//! names (and clients) per vendor at [`NAMES_CAP`]; beyond the cap they are counted as
//! `unranked`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use super::health::{ExceptionRow, ListHealth};
use super::period::{Period, stamp};
use super::read::LogLine;
use super::{NAMES_CAP, TOP_N};
use crate::metrics::{OTHER, ZONE_NONE};

/// Most distinct zones, vendors or outcome names kept; further ones count as `other`.
pub const KEYS_CAP: usize = 4096;

/// The policy figures of one zone × vendor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Refused by the policy (enforce mode).
    pub blocked: u64,
    /// A policy hit in log mode (or a list in trial): answered normally.
    pub would_block: u64,
    /// A watched name: answered normally, counted.
    pub watched: u64,
    /// Answered because an exception allowed it.
    pub excepted: u64,
}

impl Counts {
    /// The outcome names of the CSV rows, in order, with their figures.
    pub fn rows(&self) -> [(&'static str, u64); 4] {
        [
            ("blocked", self.blocked),
            ("would_block", self.would_block),
            ("watched", self.watched),
            ("excepted", self.excepted),
        ]
    }
}

/// One zone's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ZoneReport {
    /// By vendor.
    pub vendors: BTreeMap<String, Counts>,
    /// Every line of the zone by outcome (what the log recorded, see `query_log`).
    pub outcomes: BTreeMap<String, u64>,
}

/// A ranked name (or client) and its count.
#[derive(Debug, Clone, Serialize)]
pub struct Ranked {
    /// The name (or the client as the log writes it).
    pub key: String,
    /// Lines.
    pub count: u64,
}

/// The top of one vendor.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Top {
    /// The [`TOP_N`] most counted, most first (ties by name).
    pub top: Vec<Ranked>,
    /// Distinct keys seen.
    pub distinct: usize,
    /// Lines whose key was beyond the [`NAMES_CAP`] distinct keys counted exactly.
    pub unranked: u64,
}

/// A vendor seen in the period and not before it.
#[derive(Debug, Clone, Serialize)]
pub struct NewVendor {
    /// The vendor.
    pub vendor: String,
    /// Its first line in the period.
    pub first_seen: String,
    /// The zones it was seen in.
    pub zones: Vec<String>,
}

/// Vendors seen for the first time.
#[derive(Debug, Clone, Serialize)]
pub struct FirstSeen {
    /// The earliest line before the period the comparison used; `None` when the log holds
    /// nothing before the period (then every vendor of the period is listed).
    pub compared_with_log_from: Option<String>,
    /// The vendors, by name.
    pub vendors: Vec<NewVendor>,
}

/// Exceptions in force at the end of the period, and those that expired during it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Exceptions {
    /// `until` at or after the end of the period.
    pub in_force: Vec<ExceptionRow>,
    /// `until` inside the period.
    pub expired: Vec<ExceptionRow>,
}

/// What was read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Footer {
    /// The files, oldest first.
    pub files: Vec<String>,
    /// Non-empty lines read.
    pub lines_read: u64,
    /// Lines skipped: not JSON, no `ts` or `outcome`, or too long.
    pub lines_skipped: u64,
    /// Valid lines outside the period.
    pub outside_period: u64,
    /// The earliest and latest line of the log (any period).
    pub earliest: Option<String>,
    /// See `earliest`.
    pub latest: Option<String>,
}

/// The period as printed.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodOut {
    /// First instant (RFC 3339).
    pub from: String,
    /// First instant after the period (RFC 3339).
    pub to: String,
}

/// A finished report: what every format renders.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The period.
    pub period: PeriodOut,
    /// When the report was made.
    pub generated: String,
    /// By zone (`none`: clients in no zone).
    pub zones: BTreeMap<String, ZoneReport>,
    /// Vendors seen for the first time.
    pub first_seen: FirstSeen,
    /// Top names per vendor.
    pub top_names: BTreeMap<String, Top>,
    /// Top clients per vendor (only with `--clients`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<BTreeMap<String, Top>>,
    /// Exceptions.
    pub exceptions: Exceptions,
    /// Lists' health.
    pub lists: Vec<ListHealth>,
    /// What was read.
    pub footer: Footer,
}

/// Exact counts of up to [`NAMES_CAP`] keys; the rest counted together.
#[derive(Debug, Default)]
struct Capped {
    counts: HashMap<String, u64>,
    unranked: u64,
}

impl Capped {
    fn add(&mut self, key: &str) {
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
        } else if self.counts.len() < NAMES_CAP {
            self.counts.insert(key.to_owned(), 1);
        } else {
            self.unranked += 1;
        }
    }

    fn top(self) -> Top {
        let distinct = self.counts.len();
        let mut v: Vec<Ranked> = self
            .counts
            .into_iter()
            .map(|(key, count)| Ranked { key, count })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        v.truncate(TOP_N);
        Top {
            top: v,
            distinct,
            unranked: self.unranked,
        }
    }
}

/// The running fold of a report.
#[derive(Debug)]
pub struct Tally {
    period: Period,
    clients: bool,
    zones: BTreeMap<String, ZoneReport>,
    names: BTreeMap<String, Capped>,
    top_clients: BTreeMap<String, Capped>,
    before: HashSet<String>,
    before_earliest: Option<SystemTime>,
    in_period: BTreeMap<String, (SystemTime, Vec<String>)>,
    footer: Footer,
    earliest: Option<SystemTime>,
    latest: Option<SystemTime>,
}

/// `key`, or [`OTHER`] once `len` keys exist and `key` is not among them.
fn bounded<'a, V>(map: &BTreeMap<String, V>, key: &'a str) -> &'a str {
    if map.len() >= KEYS_CAP && !map.contains_key(key) {
        OTHER
    } else {
        key
    }
}

impl Tally {
    /// An empty tally of `period`; client pseudonyms are kept only with `clients`.
    pub fn new(period: Period, clients: bool) -> Self {
        Self {
            period,
            clients,
            zones: BTreeMap::new(),
            names: BTreeMap::new(),
            top_clients: BTreeMap::new(),
            before: HashSet::new(),
            before_earliest: None,
            in_period: BTreeMap::new(),
            footer: Footer::default(),
            earliest: None,
            latest: None,
        }
    }

    /// A line that could not be used.
    pub fn skipped(&mut self) {
        self.footer.lines_read += 1;
        self.footer.lines_skipped += 1;
    }

    /// A parsed line.
    pub(super) fn add(&mut self, l: &LogLine<'_>) {
        let Ok(ts) = humantime::parse_rfc3339_weak(&l.ts) else {
            self.skipped();
            return;
        };
        self.footer.lines_read += 1;
        self.earliest = Some(self.earliest.map_or(ts, |e| e.min(ts)));
        self.latest = Some(self.latest.map_or(ts, |e| e.max(ts)));
        let outcome = l.outcome.as_ref();
        let excepted = l.exception.is_some() && matches!(outcome, "forwarded" | "cached");
        let policy = excepted || matches!(outcome, "blocked" | "would_block" | "watched");
        let vendor = l.vendor.as_deref().unwrap_or(OTHER);
        if !self.period.contains(ts) {
            self.footer.outside_period += 1;
            if ts < self.period.from && policy {
                self.before_earliest = Some(self.before_earliest.map_or(ts, |e| e.min(ts)));
                if self.before.len() < KEYS_CAP {
                    self.before.insert(vendor.to_owned());
                }
            }
            return;
        }
        let zone_name = l.zone.as_deref().unwrap_or(ZONE_NONE);
        let zone_name = bounded(&self.zones, zone_name).to_owned();
        let zone = self.zones.entry(zone_name.clone()).or_default();
        let o = bounded(&zone.outcomes, outcome);
        *zone.outcomes.entry(o.to_owned()).or_default() += 1;
        if !policy {
            return;
        }
        let vendor = bounded(&zone.vendors, vendor).to_owned();
        let c = zone.vendors.entry(vendor.clone()).or_default();
        match outcome {
            "blocked" => c.blocked += 1,
            "would_block" => c.would_block += 1,
            "watched" => c.watched += 1,
            _ => c.excepted += 1,
        }
        let vendor = bounded(&self.names, &vendor).to_owned();
        if let Some(q) = &l.qname {
            self.names.entry(vendor.clone()).or_default().add(q);
        }
        if self.clients
            && let Some(client) = &l.client
        {
            self.top_clients
                .entry(vendor.clone())
                .or_default()
                .add(client);
        }
        if vendor != OTHER {
            let seen = self
                .in_period
                .entry(vendor)
                .or_insert_with(|| (ts, Vec::new()));
            seen.0 = seen.0.min(ts);
            if !seen.1.contains(&zone_name) {
                seen.1.push(zone_name);
            }
        }
    }

    /// The report: the tally plus what the config and state say.
    pub fn finish(
        self,
        files: &[PathBuf],
        exceptions: Vec<ExceptionRow>,
        lists: Vec<ListHealth>,
        now: SystemTime,
    ) -> Report {
        let period = self.period;
        let mut ex = Exceptions::default();
        for e in exceptions {
            if e.until >= period.to {
                ex.in_force.push(e);
            } else if period.contains(e.until) {
                ex.expired.push(e);
            }
        }
        let before = self.before;
        let vendors = self
            .in_period
            .into_iter()
            .filter(|(v, _)| !before.contains(v))
            .map(|(vendor, (t, mut zones))| {
                zones.sort();
                NewVendor {
                    vendor,
                    first_seen: stamp(t),
                    zones,
                }
            })
            .collect();
        let mut footer = self.footer;
        footer.files = files.iter().map(|p| p.display().to_string()).collect();
        footer.earliest = self.earliest.map(stamp);
        footer.latest = self.latest.map(stamp);
        Report {
            period: PeriodOut {
                from: stamp(period.from),
                to: stamp(period.to),
            },
            generated: stamp(now),
            zones: self.zones,
            first_seen: FirstSeen {
                compared_with_log_from: self.before_earliest.map(stamp),
                vendors,
            },
            top_names: self.names.into_iter().map(|(v, c)| (v, c.top())).collect(),
            clients: self.clients.then(|| {
                self.top_clients
                    .into_iter()
                    .map(|(v, c)| (v, c.top()))
                    .collect()
            }),
            exceptions: ex,
            lists,
            footer,
        }
    }
}
