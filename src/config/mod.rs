//! Configuration: the typed [`Config`] that the rest of pixelguard reads, its documented defaults,
//! and the loader that turns a TOML file (or the embedded default) into it.
//!
//! Three layers, so nothing after start-up ever sees a raw string: `raw` (serde, strict, spans
//! kept) → `validate` (semantic checks, each error pointing at `file:line:column`) → [`Config`].
//! Relative paths resolve against the config file's folder.
//!
//! The typed sections live beside this file, one per concern: `server` (`[server]`, `[cache]`,
//! `[admin]`), `upstream` (with `[forward.*]`), `lists`, `zones`, `exceptions`, `query_log`, `local`, `export`, `csp_reports`;
//! `source` says where a config comes from, `error` what can be wrong with it. Config is the
//! ground layer: it imports nothing from the rest of the crate.

mod csp_reports;
mod error;
mod exceptions;
mod export;
mod lists;
mod local;
mod query_log;
mod raw;
mod raw_governance;
mod server;
pub mod source;
mod upstream;
mod validate;
mod zones;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use csp_reports::{
    CspReportsConfig, DEFAULT_CSP_BURST, DEFAULT_CSP_MAX_BODY, DEFAULT_CSP_RATE, MAX_CSP_SITES,
};
pub use error::{ConfigError, ConfigErrors, UpstreamSyntaxError};
pub use exceptions::{
    EXPIRING_WITHIN, ExceptionConfig, ExceptionState, parse_until, state_at, unix,
};
pub use export::{
    DEFAULT_EXPORT_BUFFER, DnstapConfig, DnstapTarget, SYSLOG_SD_ID, SyslogConfig, SyslogTransport,
};
pub use lists::{DownloadProxy, FetchOpts, ListConfig, ListFormat, ListSource};
pub use local::LocalConfig;
pub use query_log::{ClientMode, QueryLogConfig, RecordMode};
pub use server::{AdminConfig, CacheConfig, Secret, ServerConfig, TlsIdentity};
pub use source::{ConfigSource, Overrides};
pub use upstream::{
    BUILTIN_ROOT_HINTS, DEFAULT_GROUP, DOH_PATH, DOH_PORT, DOT_PORT, ForwardRule,
    MAX_FORWARD_DOMAINS, MAX_FORWARD_NAME_LEN, MAX_FORWARD_RULES, Strategy, UpstreamConfig,
    UpstreamMode, UpstreamProtocol, UpstreamServer,
};
pub use validate::{catalogue_vendors, resolv_conf_nameservers};
pub use zones::{BlockResponse, CatalogueMode, Mode, RateLimit, WATCH_SERVER_SIDE, ZoneConfig};

/// The config used when pixelguard runs without `--config`: localhost listeners, the system's
/// resolvers as upstreams, one zone for loopback and private networks, the shipped catalogue.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/default.toml");

/// Default TCP idle timeout (RFC 7766 suggests seconds, not minutes).
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on concurrent TCP connections.
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1024;
/// Default time for one try at one upstream.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time for all upstream tries together.
pub const DEFAULT_UPSTREAM_DEADLINE: Duration = Duration::from_secs(5);
/// Default number of cached answers.
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;
/// Default cap on cached TTLs.
pub const DEFAULT_CACHE_MAX_TTL: Duration = Duration::from_secs(86_400);
/// Default cap on cached negative TTLs.
pub const DEFAULT_NEGATIVE_MAX_TTL: Duration = Duration::from_secs(3_600);
/// Default (and maximum) time a SERVFAIL is cached.
pub const DEFAULT_SERVFAIL_TTL: Duration = Duration::from_secs(5);
/// Default folder for downloaded list copies.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pixelguard";
/// Default refresh interval of remote lists.
pub const DEFAULT_LIST_REFRESH: Duration = Duration::from_secs(12 * 3600);
/// Default time for one list download.
pub const DEFAULT_LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default largest list body (64 MiB).
pub const DEFAULT_LIST_MAX_SIZE: u64 = 64 << 20;
/// Default largest accepted shrink of a list against its last good copy.
pub const DEFAULT_LIST_MAX_SHRINK: f64 = 0.5;
/// Default per-client rate (queries per second).
pub const DEFAULT_RATE_QPS: f32 = 200.0;
/// Default per-client burst.
pub const DEFAULT_RATE_BURST: f32 = 400.0;
/// Default cap on one client's concurrent TCP connections.
pub const DEFAULT_TCP_PER_CLIENT: usize = 64;
/// Default serve-stale window (RFC 8767).
pub const DEFAULT_SERVE_STALE: Duration = Duration::from_secs(86_400);
/// Default cap on upstream queries in flight.
pub const DEFAULT_MAX_INFLIGHT: usize = 1024;
/// Default TTL of blocked answers.
pub const DEFAULT_BLOCK_TTL: Duration = Duration::from_secs(300);
/// Default address of the admin HTTP server (loopback only: metrics, health, API).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9153";
/// Default size at which the query log rotates.
pub const DEFAULT_QUERY_LOG_MAX_SIZE: u64 = 100 * 1024 * 1024;
/// Default number of rotated query-log files kept.
pub const DEFAULT_QUERY_LOG_KEEP: usize = 5;
/// Default upper bound on how long a query-log entry is kept.
pub const DEFAULT_QUERY_LOG_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
/// Default number of query-log entries waiting for the writer before new ones are dropped.
pub const DEFAULT_QUERY_LOG_BUFFER: usize = 4096;
/// Default `[query_log] key_file`, in `state_dir`.
pub const QUERY_LOG_KEY_FILE: &str = "query-log.key";
/// Shortest accepted `[query_log] key`.
pub const MIN_QUERY_LOG_KEY_LEN: usize = 16;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from ("<embedded default>" or the file path), for messages.
    pub origin: String,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[upstream]`.
    pub upstream: UpstreamConfig,
    /// `[forward.*]`, in name order.
    pub forwards: Vec<ForwardRule>,
    /// `[cache]`.
    pub cache: CacheConfig,
    /// `[lists.*]`, by name.
    pub lists: BTreeMap<String, ListConfig>,
    /// `[list_download] proxy` (also in every remote list's [`FetchOpts`]); `None` = direct.
    pub list_proxy: Option<DownloadProxy>,
    /// `[zones.*]`, in name order.
    pub zones: Vec<ZoneConfig>,
    /// `[[exceptions]]`, in file order: time-boxed allows.
    pub exceptions: Vec<ExceptionConfig>,
    /// `[log] level`.
    pub log_level: Option<String>,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[query_log]`, `None` when the section is absent (no query log).
    pub query_log: Option<QueryLogConfig>,
    /// `[local]`: the locally served zones.
    pub local: LocalConfig,
    /// `[dnstap]`, `None` when absent (no dnstap export).
    pub dnstap: Option<DnstapConfig>,
    /// `[syslog]`, `None` when absent (no syslog export).
    pub syslog: Option<SyslogConfig>,
    /// `[csp_reports]`, `None` when absent (no CSP report endpoint).
    pub csp_reports: Option<CspReportsConfig>,
    /// Folder for downloaded list copies.
    pub state_dir: PathBuf,
    /// Refuse to start when a remote list has neither a download nor a disk copy.
    pub strict_start: bool,
}
