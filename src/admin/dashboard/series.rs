//! The dashboard's time series: tracker attempts per zone × vendor × category × mode, in
//! bounded per-minute (24 h) and per-hour (7 d) buckets, filled by sampling the recorder's
//! `pixelguard_tracker_attempts_total` counters (deltas since the last sample) — the DNS path
//! does nothing new. Persisted as JSON (atomic: temp file + rename) and read back at start.
//!
//! Memory: one [`Row`] per series key that ever counted, each `(MINUTES + HOURS) × 4` bytes
//! (6,432 B) plus its labels; at most [`MAX_ROWS`] rows. Time is passed in (Unix seconds) by
//! the caller, so tests make it pass without sleeping.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Per-minute buckets kept (24 h).
pub const MINUTES: usize = 1440;
/// Per-hour buckets kept (7 d).
pub const HOURS: usize = 168;
/// Most series keys kept; later keys are not tracked (and a warning is logged once).
pub const MAX_ROWS: usize = 4096;
/// Bytes of buckets per row.
pub const ROW_BYTES: usize = (MINUTES + HOURS) * 4;
/// The file in `state_dir`.
pub const FILE: &str = "dashboard-series.json";

/// One series: the label values of `pixelguard_tracker_attempts_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    /// Client zone.
    pub zone: String,
    /// Catalogue vendor (`other` for plain lists).
    pub vendor: String,
    /// Vendor category.
    pub category: String,
    /// `enforce` (blocked), `log` (would block), or any later mode value (such as `watched`).
    pub mode: String,
}

/// The buckets of one key.
#[derive(Debug, Clone)]
pub struct Row {
    minutes: Vec<u32>,
    hours: Vec<u32>,
    /// Unix seconds of the first and the last sample that counted (0: never).
    pub first_seen: u64,
    /// See `first_seen`.
    pub last_seen: u64,
}

impl Row {
    fn new() -> Self {
        Self {
            minutes: vec![0; MINUTES],
            hours: vec![0; HOURS],
            first_seen: 0,
            last_seen: 0,
        }
    }
}

/// The selectable periods of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// 60 one-minute bars.
    Hour,
    /// 24 one-hour bars.
    Day,
    /// 168 one-hour bars.
    Week,
}

impl Period {
    /// From `?period=`; anything unknown is the hour.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("24h") => Self::Day,
            Some("7d") => Self::Week,
            _ => Self::Hour,
        }
    }

    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    /// Bucket width (seconds) and count.
    pub fn buckets(self) -> (u64, usize) {
        match self {
            Self::Hour => (60, 60),
            Self::Day => (3600, 24),
            Self::Week => (3600, 168),
        }
    }
}

/// A period's figures: bucket start times and, per key, the count in each bucket.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Unix seconds of each bucket's start, oldest first.
    pub starts: Vec<u64>,
    /// Per key: counts per bucket (same order as `starts`), first and last seen.
    pub rows: BTreeMap<Key, (Vec<u64>, u64, u64)>,
}

/// The time series of one instance.
#[derive(Debug, Default)]
pub struct Series {
    rows: BTreeMap<Key, Row>,
    /// Counter values at the last sample (not persisted: a new process counts from 0).
    last: HashMap<Key, u64>,
    /// Last minute / hour index (Unix seconds / 60, / 3600) written.
    head_min: u64,
    head_hour: u64,
    warned_full: bool,
}

impl Series {
    /// Rows held (for the memory statement on the page).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Moves the rings to `now`, zeroing buckets that fell out of them.
    fn advance(&mut self, now: u64) {
        let m = now / 60;
        if m > self.head_min {
            let from = (self.head_min + 1).max(m.saturating_sub(MINUTES as u64 - 1));
            for i in from..=m {
                for r in self.rows.values_mut() {
                    r.minutes[(i % MINUTES as u64) as usize] = 0;
                }
            }
            self.head_min = m;
        }
        let h = now / 3600;
        if h > self.head_hour {
            let from = (self.head_hour + 1).max(h.saturating_sub(HOURS as u64 - 1));
            for i in from..=h {
                for r in self.rows.values_mut() {
                    r.hours[(i % HOURS as u64) as usize] = 0;
                }
            }
            self.head_hour = h;
        }
    }

    /// Adds the growth of `counters` (current values) since the last sample at `now`.
    pub fn sample(&mut self, now: u64, counters: &[(Key, u64)]) {
        self.advance(now);
        let (mi, hi) = (
            (self.head_min % MINUTES as u64) as usize,
            (self.head_hour % HOURS as u64) as usize,
        );
        for (k, v) in counters {
            let before = self.last.get(k).copied().unwrap_or(0);
            // A counter below its last value was reset (a new registry): all of it is new.
            let delta = if *v >= before { v - before } else { *v };
            self.last.insert(k.clone(), *v);
            if delta == 0 {
                continue;
            }
            if !self.rows.contains_key(k) && self.rows.len() >= MAX_ROWS {
                if !self.warned_full {
                    tracing::warn!(
                        "dashboard: {MAX_ROWS} series held; new zone × vendor series are not charted"
                    );
                    self.warned_full = true;
                }
                continue;
            }
            let r = self.rows.entry(k.clone()).or_insert_with(Row::new);
            let d = u32::try_from(delta).unwrap_or(u32::MAX);
            r.minutes[mi] = r.minutes[mi].saturating_add(d);
            r.hours[hi] = r.hours[hi].saturating_add(d);
            if r.first_seen == 0 {
                r.first_seen = now;
            }
            r.last_seen = now;
        }
    }

    /// The figures of `period` ending at `now` (buckets after the last sample count 0).
    pub fn window(&self, period: Period, now: u64) -> Window {
        let (width, n) = period.buckets();
        let end = now / width;
        let first = (end + 1).saturating_sub(n as u64);
        let starts = (first..=end).map(|i| i * width).collect();
        let (head, ring) = if width == 60 {
            (self.head_min, MINUTES as u64)
        } else {
            (self.head_hour, HOURS as u64)
        };
        let mut rows = BTreeMap::new();
        for (k, r) in &self.rows {
            let buckets = if width == 60 { &r.minutes } else { &r.hours };
            let counts: Vec<u64> = (first..=end)
                .map(|i| {
                    if i > head || i + ring <= head {
                        0
                    } else {
                        u64::from(buckets[(i % ring) as usize])
                    }
                })
                .collect();
            if counts.iter().any(|c| *c > 0) {
                rows.insert(k.clone(), (counts, r.first_seen, r.last_seen));
            }
        }
        Window { starts, rows }
    }

    /// Writes the series to `dir/FILE` (temp file + rename, so a crash never leaves half a file).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let doc = Saved {
            version: 1,
            head_min: self.head_min,
            head_hour: self.head_hour,
            rows: self
                .rows
                .iter()
                .map(|(k, r)| SavedRow {
                    key: k.clone(),
                    first_seen: r.first_seen,
                    last_seen: r.last_seen,
                    minutes: sparse(&r.minutes),
                    hours: sparse(&r.hours),
                })
                .collect(),
        };
        let text = serde_json::to_vec(&doc).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(dir)?;
        // A temporary name of this process and save, so that two instances sharing a state_dir
        // never write into one temporary file.
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!("{FILE}.{}.{n}.tmp", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(FILE))
    }

    /// Reads `dir/FILE`; a missing file is an empty series, a corrupt one an error to log.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let doc: Saved =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if doc.version != 1 {
            return Err(format!(
                "{}: version {}, expected 1",
                path.display(),
                doc.version
            ));
        }
        let mut s = Self {
            head_min: doc.head_min,
            head_hour: doc.head_hour,
            ..Self::default()
        };
        for r in doc.rows.into_iter().take(MAX_ROWS) {
            let mut row = Row::new();
            row.first_seen = r.first_seen;
            row.last_seen = r.last_seen;
            for (i, c) in r.minutes {
                if let Some(b) = row.minutes.get_mut(i as usize) {
                    *b = c;
                }
            }
            for (i, c) in r.hours {
                if let Some(b) = row.hours.get_mut(i as usize) {
                    *b = c;
                }
            }
            s.rows.insert(r.key, row);
        }
        Ok(s)
    }
}

fn sparse(v: &[u32]) -> Vec<(u32, u32)> {
    v.iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (i as u32, *c))
        .collect()
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    head_min: u64,
    head_hour: u64,
    rows: Vec<SavedRow>,
}

#[derive(Serialize, Deserialize)]
struct SavedRow {
    key: Key,
    first_seen: u64,
    last_seen: u64,
    minutes: Vec<(u32, u32)>,
    hours: Vec<(u32, u32)>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(z: &str, v: &str, mode: &str) -> Key {
        Key {
            zone: z.into(),
            vendor: v.into(),
            category: "advertising".into(),
            mode: mode.into(),
        }
    }

    fn total(w: &Window, k: &Key) -> u64 {
        w.rows.get(k).map_or(0, |r| r.0.iter().sum())
    }

    #[test]
    fn deltas_land_in_their_minute_and_age_out() {
        let t0: u64 = 500_000 * 3600; // on the hour
        let a = key("kiosk", "meta", "enforce");
        let b = key("staff", "meta", "log");
        let mut s = Series::default();
        s.sample(t0, &[(a.clone(), 3)]);
        s.sample(t0 + 30, &[(a.clone(), 5), (b.clone(), 2)]);
        s.sample(t0 + 90, &[(a.clone(), 6), (b.clone(), 2)]);
        let w = s.window(Period::Hour, t0 + 90);
        assert_eq!(total(&w, &a), 6);
        assert_eq!(total(&w, &b), 2);
        assert_eq!(w.rows[&a].0[58..], [5, 1]);
        assert_eq!((w.rows[&a].1, w.rows[&a].2), (t0, t0 + 90));
        // Two hours on: out of the hour, still in the day and the week.
        let later = t0 + 2 * 3600;
        s.sample(later, &[(a.clone(), 6)]);
        assert_eq!(total(&s.window(Period::Hour, later), &a), 0);
        assert_eq!(total(&s.window(Period::Day, later), &a), 6);
        // Eight days on: gone everywhere, even without a sample in between.
        let gone = t0 + 8 * 86400;
        assert_eq!(total(&s.window(Period::Week, gone), &a), 0);
        s.sample(gone, &[(a.clone(), 7)]);
        assert_eq!(total(&s.window(Period::Week, gone), &a), 1);
    }

    #[test]
    fn a_reset_counter_counts_from_zero_and_the_file_round_trips() {
        let t0 = 1_800_000_000;
        let a = key("kiosk", "meta", "enforce");
        let mut s = Series::default();
        s.sample(t0, &[(a.clone(), 10)]);
        s.sample(t0 + 60, &[(a.clone(), 4)]);
        assert_eq!(total(&s.window(Period::Hour, t0 + 60), &a), 14);
        let dir = tempfile::tempdir().unwrap();
        s.save(dir.path()).unwrap();
        let back = Series::load(dir.path()).unwrap();
        assert_eq!(total(&back.window(Period::Day, t0 + 60), &a), 14);
        std::fs::write(dir.path().join(FILE), b"{ not json").unwrap();
        assert!(Series::load(dir.path()).is_err());
        assert_eq!(
            Series::load(&dir.path().join("absent")).unwrap().len(),
            0,
            "no file: empty"
        );
    }
}
