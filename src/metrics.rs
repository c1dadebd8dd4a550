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

use crate::outcome::{Bypass, Outcome};

/// Answers, by zone (`none` for clients in no zone) and outcome.
pub const QUERIES_TOTAL: &str = "pixelguard_queries_total";
/// Policy hits (blocked or would-block), by zone, vendor, category and mode.
pub const TRACKER_ATTEMPTS_TOTAL: &str = "pixelguard_tracker_attempts_total";
/// Blocked answers (enforce mode), by zone and the list whose rule blocked.
pub const BLOCKED_TOTAL: &str = "pixelguard_blocked_total";
/// Attempts to bypass the filter, by zone and kind.
pub const BYPASS_ATTEMPTS_TOTAL: &str = "pixelguard_bypass_attempts_total";
/// Time from receipt of a query to its answer, by outcome.
pub const REQUEST_DURATION_SECONDS: &str = "pixelguard_request_duration_seconds";
/// Questions answered from the cache.
pub const CACHE_HITS_TOTAL: &str = "pixelguard_cache_hits_total";
/// Questions not in the cache (forwarded).
pub const CACHE_MISSES_TOTAL: &str = "pixelguard_cache_misses_total";
/// Answers in the cache.
pub const CACHE_ENTRIES: &str = "pixelguard_cache_entries";
/// Tries at an upstream, by group (`default` or a forward rule), upstream and result.
pub const UPSTREAM_QUERIES_TOTAL: &str = "pixelguard_upstream_queries_total";
/// Time of one try at an upstream, by group and upstream.
pub const UPSTREAM_DURATION_SECONDS: &str = "pixelguard_upstream_duration_seconds";
/// Names in a list (query rules plus cloak targets).
pub const LIST_ENTRIES: &str = "pixelguard_list_entries";
/// When a list was last loaded or refreshed successfully (0: never).
pub const LIST_LAST_SUCCESS_TIMESTAMP_SECONDS: &str =
    "pixelguard_list_last_success_timestamp_seconds";
/// Failed list loads or refreshes, by list and reason.
pub const LIST_UPDATE_FAILURES_TOTAL: &str = "pixelguard_list_update_failures_total";
/// Reloads (SIGHUP, admin API), by result.
pub const RELOADS_TOTAL: &str = "pixelguard_reloads_total";
/// Query-log entries lost (writer behind, or the file could not be written).
pub const QUERY_LOG_DROPPED_TOTAL: &str = "pixelguard_query_log_dropped_total";
/// Queries refused because the client is in no zone.
pub const REFUSED_CLIENTS_TOTAL: &str = "pixelguard_refused_clients_total";
/// Queries over their client's rate limit (refused or dropped), by zone.
pub const RATE_LIMITED_TOTAL: &str = "pixelguard_rate_limited_total";
/// Always 1; the `version` label carries the build's version.
pub const BUILD_INFO: &str = "pixelguard_build_info";
/// Exported events lost (collector slow, absent or failing), by `sink` (dnstap, syslog).
pub const EXPORT_DROPPED_TOTAL: &str = "pixelguard_export_dropped_total";
/// Exported events handed to the collector's connection, by `sink` (dnstap, syslog).
pub const EXPORT_SENT_TOTAL: &str = "pixelguard_export_sent_total";
/// Panics contained in a listener (the query is lost, the listener goes on), by `kind`: where.
pub const INTERNAL_ERRORS_TOTAL: &str = "pixelguard_internal_errors_total";
/// Datagrams and TCP connections dropped for their PROXY protocol header, by `reason`.
pub const PROXY_DROPPED_TOTAL: &str = "pixelguard_proxy_dropped_total";

/// Every metric name above, for checks (dashboard and alert rules use only these).
pub const ALL_NAMES: &[&str] = &[
    QUERIES_TOTAL,
    TRACKER_ATTEMPTS_TOTAL,
    BLOCKED_TOTAL,
    BYPASS_ATTEMPTS_TOTAL,
    REQUEST_DURATION_SECONDS,
    CACHE_HITS_TOTAL,
    CACHE_MISSES_TOTAL,
    CACHE_ENTRIES,
    UPSTREAM_QUERIES_TOTAL,
    UPSTREAM_DURATION_SECONDS,
    LIST_ENTRIES,
    LIST_LAST_SUCCESS_TIMESTAMP_SECONDS,
    LIST_UPDATE_FAILURES_TOTAL,
    RELOADS_TOTAL,
    QUERY_LOG_DROPPED_TOTAL,
    REFUSED_CLIENTS_TOTAL,
    RATE_LIMITED_TOTAL,
    BUILD_INFO,
    INTERNAL_ERRORS_TOTAL,
    PROXY_DROPPED_TOTAL,
    EXPORT_DROPPED_TOTAL,
    EXPORT_SENT_TOTAL,
];

/// The `sink` label values of the export metrics.
pub const EXPORT_SINKS: &[&str] = &["dnstap", "syslog"];

/// The `zone` label of clients in no zone (a zone cannot be called this: see config checks).
pub const ZONE_NONE: &str = "none";
/// The `vendor` and `category` label of rules without catalogue attribution.
pub const OTHER: &str = "other";
/// `kind` values of [`BYPASS_ATTEMPTS_TOTAL`], in [`Bypass::ALL`] order: the canaries
/// (`policy::Canary::kind`) and `doh_host`, a query for a public DoH / DoT endpoint of the
/// catalogue.
pub const BYPASS_KINDS: &[&str] = &{
    let mut out = [""; Bypass::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = Bypass::ALL[i].as_str();
        i += 1;
    }
    out
};
/// `result` values of [`UPSTREAM_QUERIES_TOTAL`]: `ok` (a usable reply, NXDOMAIN included), the
/// reply codes that make pixelguard try the next upstream, and the ways a try can fail
/// (`upstream::TryError`).
pub const UPSTREAM_RESULTS: &[&str] = &[
    "ok",
    "servfail",
    "refused",
    "timeout",
    "empty",
    "malformed",
    "network",
    "tls",
];
/// The `upstream` label in recursive mode (pixelguard resolves from the root itself).
pub const UPSTREAM_RECURSIVE: &str = "recursive";

/// The `upstream` label of a server address: the address, or [`UPSTREAM_RECURSIVE`] for the
/// recursor's pseudo address.
pub fn upstream_label(a: &std::net::SocketAddr) -> String {
    if *a == crate::upstream::RECURSOR_ADDR {
        UPSTREAM_RECURSIVE.to_owned()
    } else {
        a.to_string()
    }
}
/// `kind` values of [`INTERNAL_ERRORS_TOTAL`]: where the panic was contained (the UDP receive
/// thread's fast path, a full-path UDP task, a TCP query task).
pub const INTERNAL_ERROR_KINDS: &[&str] = &["udp_fast_path", "udp_full_path", "tcp"];
/// `reason` values of [`PROXY_DROPPED_TOTAL`]: a PROXY header from a peer not in
/// `server.proxy_protocol` (`untrusted`), none from a peer in it (`missing`), a header that breaks
/// the specification (`malformed`: truncated, bad version, command, family or lengths, TLVs past
/// its end), a valid one pixelguard does not take (`unsupported`: version 1 text, UNIX sockets).
pub const PROXY_DROP_REASONS: &[&str] = &["untrusted", "missing", "malformed", "unsupported"];
/// `result` values of [`RELOADS_TOTAL`].
pub const RELOAD_RESULTS: &[&str] = &["success", "failure"];
/// `reason` values of [`LIST_UPDATE_FAILURES_TOTAL`] for local and builtin lists; remote lists
/// add the download reasons of `lists::supply::FailReason`.
pub const LIST_LOAD_REASONS: &[&str] = &["read", "parse", "empty"];

/// Buckets of [`REQUEST_DURATION_SECONDS`] and [`UPSTREAM_DURATION_SECONDS`]: 50 µs (a cached or
/// blocked answer) to 5 s (the default upstream deadline).
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

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
