//! The metric names and the closed label sets: every family's name as a `pub const` (tests and
//! the Grafana dashboard test import them), and each fixed set of label values, pre-registered at
//! zero by [`super::Metrics`].

use crate::outcome::Bypass;

/// Answers, by zone (`none` for clients in no zone) and outcome.
pub const QUERIES_TOTAL: &str = "pixelguard_queries_total";
/// Policy hits (blocked, would-block or watched), by zone, vendor, category and mode (enforce,
/// log, or `watch`).
pub const TRACKER_ATTEMPTS_TOTAL: &str = "pixelguard_tracker_attempts_total";
/// Blocked answers (enforce mode), by zone and the list whose rule blocked.
pub const BLOCKED_TOTAL: &str = "pixelguard_blocked_total";
/// Would-block answers (log mode, or a list on trial), by zone and the list whose rule matched.
pub const WOULD_BLOCK_TOTAL: &str = "pixelguard_would_block_total";
/// Answers an exception let through (a block rule lifted), by zone and vendor.
pub const EXCEPTION_HITS_TOTAL: &str = "pixelguard_exception_hits_total";
/// Configured exceptions by state: active, expiring (within 14 days), expired.
pub const EXCEPTIONS: &str = "pixelguard_exceptions";
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
    WOULD_BLOCK_TOTAL,
    EXCEPTION_HITS_TOTAL,
    EXCEPTIONS,
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

/// The `mode` label of [`TRACKER_ATTEMPTS_TOTAL`] for watched names (`watch`).
pub const MODE_WATCH: &str = "watch";
/// The `state` values of [`EXCEPTIONS`].
pub const EXCEPTION_STATES: &[&str] = &["active", "expiring", "expired"];

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
