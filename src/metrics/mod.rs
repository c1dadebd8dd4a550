//! Prometheus metrics: every name is a `pub const` here (tests and the Grafana dashboard test
//! import them), every family has a help text, and every label comes from a closed set: zone
//! names, list names, vendor ids of the catalogue (or `other`), category ids, [`Outcome`],
//! zone mode, bypass kind, the configured upstream addresses and fixed result words. Never a
//! client address, a query name or a matched rule: those go to the query log and to the admin
//! API's bounded top-k, not to label values (Blocky's `client` label is the cautionary tale).
//!
//! One [`Metrics`] per running pixelguard, with its own registry (tests run several in one
//! process). The request path does not format labels: `record` resolves counter handles once per
//! snapshot and increments those.

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

mod names;

pub use names::*;

use crate::outcome::Outcome;

/// The metric families of one running pixelguard.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// [`QUERIES_TOTAL`] {zone, outcome}.
    pub queries: IntCounterVec,
    /// [`TRACKER_ATTEMPTS_TOTAL`] {zone, vendor, category, mode}.
    pub tracker_attempts: IntCounterVec,
    /// [`BLOCKED_TOTAL`] {zone, list}.
    pub blocked: IntCounterVec,
    /// [`WOULD_BLOCK_TOTAL`] {zone, list}.
    pub would_block: IntCounterVec,
    /// [`EXCEPTION_HITS_TOTAL`] {zone, vendor}.
    pub exception_hits: IntCounterVec,
    /// [`EXCEPTIONS`] {state} (set when a snapshot arrives and at scrape time).
    pub exceptions: IntGaugeVec,
    /// [`BYPASS_ATTEMPTS_TOTAL`] {zone, kind}.
    pub bypass: IntCounterVec,
    /// [`REQUEST_DURATION_SECONDS`] {outcome}.
    pub request_duration: HistogramVec,
    /// [`CACHE_HITS_TOTAL`].
    pub cache_hits: IntCounter,
    /// [`CACHE_MISSES_TOTAL`].
    pub cache_misses: IntCounter,
    /// [`CACHE_ENTRIES`] (set at scrape time).
    pub cache_entries: IntGauge,
    /// [`UPSTREAM_QUERIES_TOTAL`] {group, upstream, result}.
    pub upstream_queries: IntCounterVec,
    /// [`UPSTREAM_DURATION_SECONDS`] {group, upstream}.
    pub upstream_duration: HistogramVec,
    /// [`LIST_ENTRIES`] {list}.
    pub list_entries: IntGaugeVec,
    /// [`LIST_LAST_SUCCESS_TIMESTAMP_SECONDS`] {list}.
    pub list_last_success: GaugeVec,
    /// [`LIST_UPDATE_FAILURES_TOTAL`] {list, reason}.
    pub list_update_failures: IntCounterVec,
    /// [`RELOADS_TOTAL`] {result}.
    pub reloads: IntCounterVec,
    /// [`QUERY_LOG_DROPPED_TOTAL`].
    pub query_log_dropped: IntCounter,
    /// [`REFUSED_CLIENTS_TOTAL`].
    pub refused_clients: IntCounter,
    /// [`RATE_LIMITED_TOTAL`] {zone}.
    pub rate_limited: IntCounterVec,
    /// [`BUILD_INFO`] {version}.
    pub build_info: IntGaugeVec,
    /// [`INTERNAL_ERRORS_TOTAL`] {kind}.
    pub internal_errors: IntCounterVec,
    /// [`PROXY_DROPPED_TOTAL`] {reason}.
    pub proxy_dropped: IntCounterVec,
    /// [`EXPORT_DROPPED_TOTAL`] {sink}.
    pub export_dropped: IntCounterVec,
    /// [`EXPORT_SENT_TOTAL`] {sink}.
    pub export_sent: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    register(r, &v);
    v
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let v = IntCounter::with_opts(Opts::new(name, help))
        .unwrap_or_else(|e| unreachable!("{name}: {e}"));
    register(r, &v);
    v
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let v = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    register(r, &v);
    v
}

fn register<C: Collector + Clone + 'static>(r: &Registry, c: &C) {
    // Names are constants registered once on a fresh registry: a failure is a programming error
    // that the unit test below catches.
    if let Err(e) = r.register(Box::new(c.clone())) {
        unreachable!("registering a metric: {e}");
    }
}

impl Metrics {
    /// Every family registered, the label-free ones and the closed-set series pre-registered at 0
    /// (so that `increase()` sees the first event).
    pub fn new() -> Self {
        let r = Registry::new();
        let m = Metrics {
            queries: counter_vec(
                &r,
                QUERIES_TOTAL,
                "Answered queries by client zone (\"none\": client in no zone, refused) and outcome.",
                &["zone", "outcome"],
            ),
            tracker_attempts: counter_vec(
                &r,
                TRACKER_ATTEMPTS_TOTAL,
                "Lookups of tracker names by client zone, catalogue vendor and category (\"other\" for plain lists), and mode (enforce: blocked, log: would block). CNAME-cloaked trackers count with the cloaking vendor.",
                &["zone", "vendor", "category", "mode"],
            ),
            blocked: counter_vec(
                &r,
                BLOCKED_TOTAL,
                "Blocked answers (enforce mode) by client zone and the list whose rule blocked.",
                &["zone", "list"],
            ),
            would_block: counter_vec(
                &r,
                WOULD_BLOCK_TOTAL,
                "Would-block answers (resolved normally: the zone is in log mode, or only a list on trial matched) by client zone and the list whose rule matched.",
                &["zone", "list"],
            ),
            exception_hits: counter_vec(
                &r,
                EXCEPTION_HITS_TOTAL,
                "Answers an exception let through (a block rule lifted until the exception's end) by client zone and catalogue vendor (\"other\" for plain lists).",
                &["zone", "vendor"],
            ),
            exceptions: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        EXCEPTIONS,
                        "Configured exceptions by state: active, expiring (ends within 14 days), expired (no longer applied).",
                    ),
                    &["state"],
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
                register(&r, &g);
                g
            },
            bypass: counter_vec(
                &r,
                BYPASS_ATTEMPTS_TOTAL,
                "Attempts to bypass the filter by client zone and kind: canary (Firefox DoH), private_relay (iCloud), ddr (designated resolvers), doh_host (a public DoH/DoT endpoint name).",
                &["zone", "kind"],
            ),
            request_duration: histogram_vec(
                &r,
                REQUEST_DURATION_SECONDS,
                "Time from receiving a query to answering it, by outcome.",
                &["outcome"],
            ),
            cache_hits: counter(&r, CACHE_HITS_TOTAL, "Questions answered from the cache."),
            cache_misses: counter(
                &r,
                CACHE_MISSES_TOTAL,
                "Questions not found in the cache (sent upstream).",
            ),
            cache_entries: {
                let g = IntGauge::with_opts(Opts::new(
                    CACHE_ENTRIES,
                    "Answers currently held in the cache.",
                ))
                .unwrap_or_else(|e| unreachable!("{e}"));
                register(&r, &g);
                g
            },
            upstream_queries: counter_vec(
                &r,
                UPSTREAM_QUERIES_TOTAL,
                "Tries at an upstream resolver (group: \"default\" for [upstream], else the forward rule's name; upstream: its configured address, \"recursive\" when resolving from the root) by result: ok, servfail, refused, timeout, empty, malformed, network, tls.",
                &["group", "upstream", "result"],
            ),
            upstream_duration: histogram_vec(
                &r,
                UPSTREAM_DURATION_SECONDS,
                "Time of one try at an upstream resolver (by group and upstream), whatever its result.",
                &["group", "upstream"],
            ),
            list_entries: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        LIST_ENTRIES,
                        "Names in a list (query rules plus CNAME-cloak targets).",
                    ),
                    &["list"],
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
                register(&r, &g);
                g
            },
            list_last_success: {
                let g = GaugeVec::new(
                    Opts::new(
                        LIST_LAST_SUCCESS_TIMESTAMP_SECONDS,
                        "Unix time of the last successful load or refresh of a list; 0 if it never loaded.",
                    ),
                    &["list"],
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
                register(&r, &g);
                g
            },
            list_update_failures: counter_vec(
                &r,
                LIST_UPDATE_FAILURES_TOTAL,
                "Failed loads or refreshes of a list by reason (the last good content stays in use).",
                &["list", "reason"],
            ),
            reloads: counter_vec(
                &r,
                RELOADS_TOTAL,
                "Reloads (SIGHUP or POST /api/reload) by result; a failed reload keeps the running config.",
                &["result"],
            ),
            query_log_dropped: counter(
                &r,
                QUERY_LOG_DROPPED_TOTAL,
                "Query-log entries lost because the writer was behind or the file could not be written. DNS answers never wait for the log.",
            ),
            refused_clients: counter(
                &r,
                REFUSED_CLIENTS_TOTAL,
                "Queries refused because the client address is in no zone.",
            ),
            rate_limited: counter_vec(
                &r,
                RATE_LIMITED_TOTAL,
                "Queries over their client's rate limit (answered REFUSED or dropped), by zone.",
                &["zone"],
            ),
            build_info: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        BUILD_INFO,
                        "Always 1; the version label is the build's version.",
                    ),
                    &["version"],
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
                register(&r, &g);
                g
            },
            internal_errors: counter_vec(
                &r,
                INTERNAL_ERRORS_TOTAL,
                "Panics contained in a listener by kind (udp_fast_path, udp_full_path, tcp): the query was lost (dropped or answered SERVFAIL) and the listener went on. Any increase is a bug to report.",
                &["kind"],
            ),
            proxy_dropped: counter_vec(
                &r,
                PROXY_DROPPED_TOTAL,
                "Datagrams and TCP connections dropped for their PROXY protocol v2 header, by reason: untrusted (a header from a peer not in server.proxy_protocol), missing (no header from a peer in it), malformed, unsupported (v1 text, UNIX sockets).",
                &["reason"],
            ),
            export_dropped: counter_vec(
                &r,
                EXPORT_DROPPED_TOTAL,
                "Exported events (dnstap, syslog) lost because the collector was slow, absent or failing. DNS answers never wait for an export.",
                &["sink"],
            ),
            export_sent: counter_vec(
                &r,
                EXPORT_SENT_TOTAL,
                "Exported events (dnstap, syslog) written to the collector's connection.",
                &["sink"],
            ),
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for o in Outcome::ALL {
            m.request_duration.with_label_values(&[o.as_str()]);
            m.queries.with_label_values(&[ZONE_NONE, o.as_str()]);
        }
        for r in RELOAD_RESULTS {
            m.reloads.with_label_values(&[r]);
        }
        for s in EXCEPTION_STATES {
            m.exceptions.with_label_values(&[s]);
        }
        for k in INTERNAL_ERROR_KINDS {
            m.internal_errors.with_label_values(&[k]);
        }
        for r in PROXY_DROP_REASONS {
            m.proxy_dropped.with_label_values(&[r]);
        }
        for s in EXPORT_SINKS {
            m.export_dropped.with_label_values(&[s]);
            m.export_sent.with_label_values(&[s]);
        }
        m
    }

    /// The registry (for custom collectors and tests).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!("encoding metrics: {e}");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Histogram handle for an outcome.
    pub fn duration_for(&self, o: Outcome) -> Histogram {
        self.request_duration.with_label_values(&[o.as_str()])
    }

    /// Records a successful load or refresh of a list at `unix_secs`.
    pub fn list_succeeded(&self, list: &str, unix_secs: f64) {
        self.list_last_success
            .with_label_values(&[list])
            .set(unix_secs);
    }

    /// Records a failed load or refresh of a list (`reason`: a closed-set word such as
    /// [`LIST_LOAD_REASONS`] or a download failure reason).
    pub fn list_update_failed(&self, list: &str, reason: &str) {
        self.list_update_failures
            .with_label_values(&[list, reason])
            .inc();
    }

    /// Forgets the per-list gauges of a list that is no longer configured (its counters stay,
    /// as counters do).
    pub fn forget_list(&self, list: &str) {
        let _ = self.list_entries.remove_label_values(&[list]);
        let _ = self.list_last_success.remove_label_values(&[list]);
    }

    /// Current value of a counter series, 0 when absent (for the admin API and tests).
    pub fn counter_value(v: &IntCounterVec, labels: &[&str]) -> u64 {
        v.get_metric_with_label_values(labels)
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Every non-zero series of a counter family as (label name → value, count).
    pub fn counter_series(v: &IntCounterVec) -> Vec<(Labels, u64)> {
        let mut out = Vec::new();
        for fam in v.collect() {
            for m in fam.get_metric() {
                let value = m.get_counter().get_value();
                if value > 0.0 {
                    let labels = m
                        .get_label()
                        .iter()
                        .map(|l| (l.name().to_owned(), l.value().to_owned()))
                        .collect();
                    out.push((Labels(labels), value as u64));
                }
            }
        }
        out
    }
}

/// The labels of one series, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(pub Vec<(String, String)>);

impl Labels {
    /// The value of label `name`, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_label_sets_are_stable() {
        assert_eq!(BYPASS_KINDS, ["canary", "private_relay", "ddr", "doh_host"]);
        assert_eq!(
            upstream_label(&crate::upstream::RECURSOR_ADDR),
            UPSTREAM_RECURSIVE
        );
        assert_eq!(
            upstream_label(&"192.0.2.1:53".parse().unwrap()),
            "192.0.2.1:53"
        );
    }

    #[test]
    fn names_follow_the_conventions_and_render_with_help() {
        let m = Metrics::new();
        m.queries.with_label_values(&["kiosk", "blocked"]).inc();
        m.upstream_duration
            .with_label_values(&["default", "192.0.2.1:53"])
            .observe(0.01);
        m.list_entries.with_label_values(&["trackers"]).set(3);
        m.list_last_success
            .with_label_values(&["trackers"])
            .set(1.0);
        m.list_update_failures
            .with_label_values(&["trackers", "read"])
            .inc();
        m.tracker_attempts
            .with_label_values(&["kiosk", "meta", "advertising", "enforce"])
            .inc();
        m.blocked.with_label_values(&["kiosk", "trackers"]).inc();
        m.would_block.with_label_values(&["kiosk", "hagezi"]).inc();
        m.exception_hits.with_label_values(&["kiosk", "meta"]).inc();
        m.bypass.with_label_values(&["kiosk", "ddr"]).inc();
        m.rate_limited.with_label_values(&["kiosk"]).inc();
        m.upstream_queries
            .with_label_values(&["default", "192.0.2.1:53", "ok"])
            .inc();
        let text = m.render();
        for name in ALL_NAMES {
            assert!(name.starts_with("pixelguard_"), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "help for {name}");
            let is_counter = text.contains(&format!("# TYPE {name} counter"));
            assert_eq!(is_counter, name.ends_with("_total"), "{name}");
        }
        assert!(text.contains("pixelguard_build_info{version=\""));
        assert!(text.contains(
            "pixelguard_request_duration_seconds_bucket{outcome=\"cached\",le=\"0.00005\"} 0"
        ));
        assert_eq!(Metrics::counter_value(&m.queries, &["kiosk", "blocked"]), 1);
        let series = Metrics::counter_series(&m.queries);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].0.get("zone"), "kiosk");
        assert_eq!(series[0].0.get("outcome"), "blocked");
        m.forget_list("trackers");
        assert!(!m.render().contains("pixelguard_list_entries{"));
    }
}
