//! What one page shows, gathered before rendering: the period's series (from this instance's
//! [`Series`] or, in the cluster view, from Prometheus), bypass attempts, top blocked names,
//! lists, upstreams, exceptions and the start-up summary. Reads the recorder and the running
//! snapshot only; holds no lock while the page renders.

use std::collections::BTreeMap;

use serde_json::Value;

use super::series::{Key, Period, Window};
use crate::metrics::{Metrics, upstream_label};
use crate::pipeline::{Pipeline, scope};
use crate::record::{Span, unix_now};

/// Top blocked names shown per zone.
pub const TOP_NAMES: usize = 10;

/// Where the figures came from.
#[derive(Debug, Clone)]
pub enum Source {
    /// This instance's own counters.
    Local,
    /// A Prometheus, summed over every replica it scrapes.
    Prometheus(String),
    /// A Prometheus was configured but failed: this instance's figures, and why.
    PrometheusFailed(String, String),
}

/// One upstream server's row.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Group (`default` or a forward rule).
    pub group: String,
    /// Server label.
    pub server: String,
    /// Answered tries.
    pub ok: u64,
    /// Failed tries (every other result).
    pub failed: u64,
    /// Mean round trip in milliseconds, if any try completed.
    pub rtt_ms: Option<f64>,
}

/// Everything a page shows.
#[derive(Debug, Clone)]
pub struct View {
    /// The selected period.
    pub period: Period,
    /// Its buckets and series.
    pub window: Window,
    /// Where the series came from.
    pub source: Source,
    /// Now (Unix seconds).
    pub now: u64,
    /// Zones: name, mode, networks.
    pub zones: Vec<(String, String, Vec<String>)>,
    /// DNS listeners.
    pub listeners: Vec<String>,
    /// Bypass attempts since start: (zone, kind, count).
    pub bypass: Vec<(String, String, u64)>,
    /// Top blocked names per zone over the last hour (or day for longer periods).
    pub top_names: Vec<(String, Vec<(String, u64)>)>,
    /// Lists (the `/api/stats` `lists` objects).
    pub lists: Vec<Value>,
    /// Upstream servers.
    pub upstreams: Vec<Upstream>,
    /// Exceptions in force that end within 14 days, soonest first: (zones, the exception's
    /// label and reason, when it ends).
    pub exceptions: Vec<(String, String, String)>,
    /// Series held in memory (for the memory statement).
    pub rows_held: usize,
}

/// The current `pixelguard_tracker_attempts_total` counters as series keys.
pub fn counters(m: &Metrics) -> Vec<(Key, u64)> {
    Metrics::counter_series(&m.tracker_attempts)
        .into_iter()
        .map(|(l, n)| {
            (
                Key {
                    zone: l.get("zone").to_owned(),
                    vendor: l.get("vendor").to_owned(),
                    category: l.get("category").to_owned(),
                    mode: l.get("mode").to_owned(),
                },
                n,
            )
        })
        .collect()
}

/// Everything but the series, from this instance.
pub fn gather(p: &Pipeline, period: Period, window: Window, source: Source, rows: usize) -> View {
    let snap = p.snapshot.load();
    let rec = &p.recorder;
    let m = rec.metrics();
    let now = unix_now();
    let zones = snap
        .zones
        .iter()
        .zip(&snap.config.zones)
        .map(|(z, c)| {
            (
                z.name.to_string(),
                z.mode.as_str().to_owned(),
                c.networks.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    let span = if period == Period::Hour {
        Span::Hour
    } else {
        Span::Day
    };
    let top_names = snap
        .zones
        .iter()
        .filter_map(|z| {
            rec.with_zone_top(&z.name, |t| {
                t.names(span, now, TOP_NAMES)
                    .into_iter()
                    .map(|(n, c, _)| (n, c))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .map(|v| (z.name.to_string(), v))
        })
        .collect();
    let bypass = Metrics::counter_series(&m.bypass)
        .into_iter()
        .map(|(l, n)| (l.get("zone").to_owned(), l.get("kind").to_owned(), n))
        .collect();
    let sc = scope(&snap);
    let stats = super::super::stats::document(rec, &sc, 1);
    let lists = stats["lists"].as_array().cloned().unwrap_or_default();
    let mut upstreams = Vec::new();
    for (g, servers) in &sc.upstream_groups {
        for u in *servers {
            let l = upstream_label(u);
            let mut by: BTreeMap<&str, u64> = BTreeMap::new();
            for res in crate::metrics::UPSTREAM_RESULTS {
                by.insert(
                    res,
                    Metrics::counter_value(&m.upstream_queries, &[g, &l, res]),
                );
            }
            let ok = by.get("ok").copied().unwrap_or(0);
            let failed = by.values().sum::<u64>() - ok;
            let rtt_ms = m
                .upstream_duration
                .get_metric_with_label_values(&[*g, l.as_str()])
                .ok()
                .filter(|h| h.get_sample_count() > 0)
                .map(|h| 1000.0 * h.get_sample_sum() / h.get_sample_count() as f64);
            upstreams.push(Upstream {
                group: (*g).to_owned(),
                server: l,
                ok,
                failed,
                rtt_ms,
            });
        }
    }
    View {
        period,
        window,
        source,
        now,
        zones,
        listeners: snap
            .config
            .server
            .listen
            .iter()
            .map(ToString::to_string)
            .collect(),
        bypass,
        top_names,
        lists,
        upstreams,
        exceptions: expiring(&snap.config.exceptions),
        rows_held: rows,
    }
}

/// The exceptions in force that end within [`crate::config::EXPIRING_WITHIN`], soonest first.
fn expiring(all: &[crate::config::ExceptionConfig]) -> Vec<(String, String, String)> {
    let now = std::time::SystemTime::now();
    let mut soon: Vec<_> = all
        .iter()
        .filter(|e| e.state(now) == crate::config::ExceptionState::Expiring)
        .collect();
    soon.sort_by_key(|e| e.until);
    soon.into_iter()
        .map(|e| {
            (
                e.zones.join(", "),
                format!("{}: {}", e.label(), e.reason),
                format!(
                    "{} ({} days left)",
                    humantime::format_rfc3339_seconds(e.until),
                    e.days_left(now)
                ),
            )
        })
        .collect()
}
