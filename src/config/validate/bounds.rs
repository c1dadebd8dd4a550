//! Upper bounds of every duration and size (or count that sizes something) in the config, and
//! the two checks that apply them. A value past its bound is an error at its `file:line:col`
//! saying what was expected (`upstream.timeout: at most 1m, got 400000000000y`), never a panic
//! later (`Instant + Duration` overflow, a semaphore or channel too large). Each bound is written
//! in `config/pixelguard.toml` next to its key; every default is within its bound (tested).

use std::time::Duration;

use toml::Spanned;

use super::super::raw::RawDuration;
use super::Ctx;

/// An upper bound on a duration, with the text the error message and the reference config show.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaxDuration {
    /// The largest accepted value.
    pub value: Duration,
    /// How it is written (humantime syntax).
    pub text: &'static str,
}

const fn secs(value: u64, text: &'static str) -> MaxDuration {
    MaxDuration {
        value: Duration::from_secs(value),
        text,
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// `server.tcp_idle_timeout`.
pub(crate) const TCP_IDLE_TIMEOUT: MaxDuration = secs(HOUR, "1h");
/// `upstream.timeout`.
pub(crate) const UPSTREAM_TIMEOUT: MaxDuration = secs(MINUTE, "1m");
/// `upstream.deadline`.
pub(crate) const UPSTREAM_DEADLINE: MaxDuration = secs(5 * MINUTE, "5m");
/// `cache.min_ttl`.
pub(crate) const CACHE_MIN_TTL: MaxDuration = secs(DAY, "1d");
/// `cache.max_ttl`.
pub(crate) const CACHE_MAX_TTL: MaxDuration = secs(7 * DAY, "7d");
/// `cache.negative_max_ttl` (RFC 2308 §5: more than a day is probably not appropriate).
pub(crate) const CACHE_NEGATIVE_MAX_TTL: MaxDuration = secs(DAY, "1d");
/// `cache.servfail_ttl` (RFC 2308 §7.1: at most 5 minutes; pixelguard keeps it to 5 s).
pub(crate) const CACHE_SERVFAIL_TTL: MaxDuration = secs(5, "5s");
/// `cache.serve_stale` (RFC 8767 suggests 1 to 3 days).
pub(crate) const CACHE_SERVE_STALE: MaxDuration = secs(7 * DAY, "7d");
/// `lists.*.refresh`.
pub(crate) const LIST_REFRESH: MaxDuration = secs(30 * DAY, "30d");
/// `lists.*.timeout`.
pub(crate) const LIST_TIMEOUT: MaxDuration = secs(30 * MINUTE, "30m");
/// `zones.*.block_ttl`.
pub(crate) const BLOCK_TTL: MaxDuration = secs(DAY, "1d");
/// `query_log.max_age`.
pub(crate) const QUERY_LOG_MAX_AGE: MaxDuration = secs(366 * DAY, "366d");

/// An upper bound on a size or count, with the text the messages show.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaxSize {
    /// The largest accepted value.
    pub value: u64,
    /// How it is written.
    pub text: &'static str,
}

const fn count(value: u64, text: &'static str) -> MaxSize {
    MaxSize { value, text }
}

/// `server.workers`.
pub(crate) const WORKERS: MaxSize = count(1024, "1024");
/// `server.udp_sockets`.
pub(crate) const UDP_SOCKETS: MaxSize = count(1024, "1024");
/// `server.tcp_max_connections`.
pub(crate) const TCP_MAX_CONNECTIONS: MaxSize = count(1_000_000, "1000000");
/// `server.tcp_max_connections_per_client`.
pub(crate) const TCP_PER_CLIENT: MaxSize = count(65_536, "65536");
/// `upstream.max_inflight`.
pub(crate) const MAX_INFLIGHT: MaxSize = count(1_000_000, "1000000");
/// `cache.max_entries`.
pub(crate) const CACHE_ENTRIES: MaxSize = count(100_000_000, "100000000");
/// `cache.max_size` (bytes).
pub(crate) const CACHE_MAX_SIZE: MaxSize = count(64 << 30, "64GiB");
/// `lists.*.max_size` (bytes).
pub(crate) const LIST_MAX_SIZE: MaxSize = count(1 << 30, "1073741824 (1 GiB)");
/// `query_log.max_size` (bytes).
pub(crate) const QUERY_LOG_MAX_SIZE: MaxSize = count(64 << 30, "64GiB");
/// `query_log.keep`.
pub(crate) const QUERY_LOG_KEEP: MaxSize = count(1000, "1000");
/// `query_log.buffer`.
pub(crate) const QUERY_LOG_BUFFER: MaxSize = count(1_000_000, "1000000");

/// A duration key: its value, or `default` when absent; past `max` an error at the value (and
/// `default` is returned: the config is rejected anyway).
pub(super) fn duration(
    cx: &mut Ctx<'_>,
    key: &str,
    v: Option<&Spanned<RawDuration>>,
    default: Duration,
    max: MaxDuration,
) -> Duration {
    let Some(v) = v else { return default };
    let raw = v.get_ref();
    if raw.value > max.value {
        cx.spanned(
            v,
            format!("{key}: at most {}, got {}", max.text, raw.text.trim()),
        );
        return default;
    }
    raw.value
}

/// A size or count key: its value, or `default` when absent; past `max` an error at the value.
pub(super) fn size<T>(
    cx: &mut Ctx<'_>,
    key: &str,
    v: Option<&Spanned<T>>,
    default: T,
    max: MaxSize,
) -> T
where
    T: Copy + TryInto<u64> + std::fmt::Display,
{
    let Some(v) = v else { return default };
    let n = *v.get_ref();
    if n.try_into().map_or(true, |x: u64| x > max.value) {
        cx.spanned(v, format!("{key}: at most {}, got {n}", max.text));
        return default;
    }
    n
}
