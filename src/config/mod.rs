//! Configuration: the typed [`Config`] that the rest of pixelguard reads, its documented defaults,
//! and the loader that turns a TOML file (or the embedded default) into it.
//!
//! Three layers, so nothing after start-up ever sees a raw string: `raw` (serde, strict, spans
//! kept) → `validate` (semantic checks, each error pointing at `file:line:column`) → [`Config`].
//! Relative paths resolve against the config file's folder.

mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use validate::resolv_conf_nameservers;

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

/// A config problem, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or "<embedded default>").
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one file (validation keeps going to report them all at once).
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from ("<embedded default>" or the file path), for messages.
    pub origin: String,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[upstream]`.
    pub upstream: UpstreamConfig,
    /// `[cache]`.
    pub cache: CacheConfig,
    /// `[lists.*]`, by name.
    pub lists: BTreeMap<String, ListConfig>,
    /// `[zones.*]`, in name order.
    pub zones: Vec<ZoneConfig>,
    /// `[log] level`.
    pub log_level: Option<String>,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[query_log]`, `None` when the section is absent (no query log).
    pub query_log: Option<QueryLogConfig>,
    /// Folder for downloaded list copies.
    pub state_dir: PathBuf,
    /// Refuse to start when a remote list has neither a download nor a disk copy.
    pub strict_start: bool,
}

/// A secret (token, key): compared and used, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[admin]`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where the admin HTTP server listens; `None` = off.
    pub listen: Option<SocketAddr>,
    /// Bearer token for the admin API.
    pub token: Option<Secret>,
    /// Requests from loopback need no token.
    pub trust_loopback: bool,
}

/// Which answers the query log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    /// Policy hits only: blocked and would-block.
    Policy,
    /// Every answer.
    All,
    /// Nothing.
    None,
}

impl RecordMode {
    /// The config keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::All => "all",
            Self::None => "none",
        }
    }
}

/// How the query log (and the admin API's top clients) identify a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// A keyed hash of the address: the same client gives the same pseudonym until the key
    /// changes.
    Hash,
    /// The address with its host part zeroed: /24 for IPv4, /56 for IPv6.
    Masked,
    /// The address itself (opt-in).
    Full,
    /// Nothing.
    None,
}

impl ClientMode {
    /// The config keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::Masked => "masked",
            Self::Full => "full",
            Self::None => "none",
        }
    }
}

/// `[query_log]`.
#[derive(Debug, Clone)]
pub struct QueryLogConfig {
    /// The JSON-lines file (absolute after validation).
    pub path: PathBuf,
    /// What is recorded (zones may override).
    pub record: RecordMode,
    /// How clients appear (zones may override).
    pub client: ClientMode,
    /// The pseudonym key from the config, if given there.
    pub key: Option<Secret>,
    /// Where the generated key is kept when `key` is not given (default
    /// `state_dir/query-log.key`).
    pub key_file: PathBuf,
    /// Rotate when the file would grow beyond this many bytes.
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: usize,
    /// Upper bound on an entry's age; `0` = unbounded.
    pub max_age: Duration,
    /// Entries waiting for the writer.
    pub buffer: usize,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen addresses (UDP and TCP each).
    pub listen: Vec<SocketAddr>,
    /// UDP sockets per address; 0 = one per worker.
    pub udp_sockets: usize,
    /// Worker threads; 0 = one per CPU.
    pub workers: usize,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
    /// Cap on concurrent TCP connections.
    pub tcp_max_connections: usize,
    /// Cap on one client's concurrent TCP connections.
    pub tcp_max_connections_per_client: usize,
    /// Serve UDP through pixelguard's own loop and fast path (`udp_path = "fast"`, the default).
    pub udp_fast_path: bool,
}

/// `[upstream]`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Tried in this order (forward mode).
    pub servers: Vec<UpstreamServer>,
    /// Per try.
    pub timeout: Duration,
    /// For all tries.
    pub deadline: Duration,
    /// Forward to `servers`, or resolve from the root.
    pub mode: UpstreamMode,
    /// `ca_file` (absolute after validation), for messages.
    pub ca_file: Option<PathBuf>,
    /// The certificates of `ca_file` (DER), parsed and checked by validation. Empty = the
    /// built-in (Mozilla, webpki-roots) roots verify DoT / DoH upstreams.
    pub ca_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// `root_hints` (absolute after validation); `None` = the built-in IANA hints.
    pub root_hints: Option<PathBuf>,
    /// Root server addresses: from `root_hints`, or [`BUILTIN_ROOT_HINTS`].
    pub roots: Vec<IpAddr>,
    /// QNAME minimisation in strict mode (stop at an NXDOMAIN on a parent, RFC 8020).
    pub qname_minimization: bool,
    /// Name-server address → port (instead of 53) in recursive mode; for tests and labs.
    pub recursion_ports: Vec<SocketAddr>,
    /// How healthy upstreams are ordered.
    pub strategy: crate::upstream::health::Strategy,
    /// Upstream queries in flight at once (process-wide; set at start).
    pub max_inflight: usize,
}

/// How cache misses are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamMode {
    /// Forward to the configured upstream servers.
    Forward,
    /// Resolve iteratively from the root servers.
    Recursive,
}

impl UpstreamMode {
    /// The config keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Recursive => "recursive",
        }
    }
}

/// The IANA root servers (a to m), IPv4 then IPv6: the built-in root hints.
pub const BUILTIN_ROOT_HINTS: &[&str] = &[
    "198.41.0.4",
    "170.247.170.2",
    "192.33.4.12",
    "199.7.91.13",
    "192.203.230.10",
    "192.5.5.241",
    "192.112.36.4",
    "198.97.190.53",
    "192.36.148.17",
    "192.58.128.30",
    "193.0.14.129",
    "199.7.83.42",
    "202.12.27.33",
    "2001:503:ba3e::2:30",
    "2801:1b8:10::b",
    "2001:500:2::c",
    "2001:500:2d::d",
    "2001:500:a8::e",
    "2001:500:2f::f",
    "2001:500:12::d0d",
    "2001:500:1::53",
    "2001:7fe::53",
    "2001:503:c27::2:30",
    "2001:7fd::1",
    "2001:500:9f::42",
    "2001:dc3::35",
];

/// How one upstream server is spoken to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// Plain DNS: UDP, with TCP when the answer is truncated.
    Plain,
    /// DNS over TLS (RFC 7858); the certificate must be valid for `name`.
    Tls {
        /// The name verified against the certificate (a DNS name or the IP address).
        name: String,
    },
    /// DNS over HTTPS (RFC 8484, HTTP/2 POST); the certificate must be valid for `name`.
    Https {
        /// The name verified against the certificate (and sent as `:authority`).
        name: String,
        /// The URL path, e.g. `/dns-query`.
        path: String,
    },
}

/// One upstream server: `"IP:PORT"`, `"IP"`, `"tls://IP[:PORT][#NAME]"` or
/// `"https://IP[:PORT][/PATH][#NAME]"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    /// Address and port.
    pub addr: SocketAddr,
    /// Transport.
    pub protocol: UpstreamProtocol,
}

/// Default DoT port.
pub const DOT_PORT: u16 = 853;
/// Default DoH port.
pub const DOH_PORT: u16 = 443;
/// Default DoH path.
pub const DOH_PATH: &str = "/dns-query";

impl UpstreamServer {
    /// Plain DNS to `addr`.
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            protocol: UpstreamProtocol::Plain,
        }
    }

    /// Parses the `servers` syntax (not `"system"`); the error says what was expected.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((sc, rest)) => (Some(sc.to_ascii_lowercase()), rest),
            None => (None, s),
        };
        let Some(scheme) = scheme else {
            return parse_host_port(s, 53)
                .map(Self::plain)
                .ok_or_else(|| "expected \"IP:PORT\" or \"IP\"".to_owned());
        };
        let (main, name) = match rest.split_once('#') {
            Some((m, n)) => (m, Some(n.trim())),
            None => (rest, None),
        };
        let (hostport, path) = match scheme.as_str() {
            "tls" => (main, None),
            "https" => match main.find('/') {
                Some(i) => (&main[..i], Some(&main[i..])),
                None => (main, None),
            },
            other => {
                return Err(format!(
                    "unknown scheme {other:?}; expected tls:// (DNS over TLS) or https:// (DNS over HTTPS)"
                ));
            }
        };
        let default_port = if scheme == "tls" { DOT_PORT } else { DOH_PORT };
        let addr = parse_host_port(hostport, default_port).ok_or_else(|| {
            format!(
                "expected an IP address (and port) after {scheme}://, such as \"9.9.9.9\" or \"[2620:fe::fe]:{default_port}\"; host names cannot be used (pixelguard would need a resolver to find its resolver)"
            )
        })?;
        let name = match name {
            Some("") => return Err("empty TLS name after '#'".to_owned()),
            Some(n) => n.to_owned(),
            None => addr.ip().to_string(),
        };
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            return Err(format!(
                "invalid TLS name {name:?} after '#'; expected a DNS name such as dns.quad9.net"
            ));
        }
        let protocol = if scheme == "tls" {
            UpstreamProtocol::Tls { name }
        } else {
            let path = path.unwrap_or(DOH_PATH);
            if path.contains(['?', ' ']) {
                return Err(format!("invalid DoH path {path:?}"));
            }
            UpstreamProtocol::Https {
                name,
                path: path.to_owned(),
            }
        };
        Ok(Self { addr, protocol })
    }

    /// Short protocol word: `udp`, `dot`, `doh`.
    pub fn protocol_word(&self) -> &'static str {
        match self.protocol {
            UpstreamProtocol::Plain => "udp",
            UpstreamProtocol::Tls { .. } => "dot",
            UpstreamProtocol::Https { .. } => "doh",
        }
    }

    /// `URL (protocol, details)` for start-up lines.
    pub fn describe(&self) -> String {
        match &self.protocol {
            UpstreamProtocol::Plain => format!("{self} (udp, tcp fallback)"),
            UpstreamProtocol::Tls { name } => format!("{self} (dot, verify name {name})"),
            UpstreamProtocol::Https { name, .. } => {
                format!("{self} (doh, http/2, verify name {name})")
            }
        }
    }
}

impl fmt::Display for UpstreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.protocol {
            UpstreamProtocol::Plain => write!(f, "{}", self.addr),
            UpstreamProtocol::Tls { name } => write!(f, "tls://{}#{name}", self.addr),
            UpstreamProtocol::Https { name, path } => {
                write!(f, "https://{}{path}#{name}", self.addr)
            }
        }
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, `IP`, `[IPv6]` or bare IPv6.
fn parse_host_port(s: &str, default_port: u16) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

/// `[cache]`.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// 0 disables.
    pub max_entries: usize,
    /// Floor on cached TTLs.
    pub min_ttl: Duration,
    /// Cap on cached TTLs.
    pub max_ttl: Duration,
    /// Cap on cached negative TTLs.
    pub negative_max_ttl: Duration,
    /// How long SERVFAIL is cached.
    pub servfail_ttl: Duration,
    /// How long past expiry an answer may still be served when every upstream fails (RFC 8767).
    pub serve_stale: Duration,
}

/// Where a list's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSource {
    /// Shipped inside the binary (`builtin:trackers`).
    Builtin(String),
    /// A local file (absolute after validation).
    File(PathBuf),
    /// An `https://` (or, with `allow_insecure`, `http://`) URL, downloaded into `state_dir`.
    Url(String),
}

impl fmt::Display for ListSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(n) => write!(f, "builtin:{n}"),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Url(u) => write!(f, "{u}"),
        }
    }
}

/// The format of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// One domain per line.
    Domains,
    /// hosts-file lines.
    Hosts,
    /// Adblock network rules.
    Adblock,
    /// An RPZ zone file.
    Rpz,
    /// The TOML tracker catalogue.
    Catalogue,
}

impl ListFormat {
    /// The config keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domains => "domains",
            Self::Hosts => "hosts",
            Self::Adblock => "adblock",
            Self::Rpz => "rpz",
            Self::Catalogue => "catalogue",
        }
    }
}

/// `[lists.NAME]`.
#[derive(Debug, Clone)]
pub struct ListConfig {
    /// The list's name (the table key).
    pub name: String,
    /// Its source.
    pub source: ListSource,
    /// Its format; `None` = guess from content.
    pub format: Option<ListFormat>,
    /// Download settings (used by `Url` sources).
    pub fetch: FetchOpts,
}

/// Download settings of a remote list.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOpts {
    /// Refresh interval (jittered).
    pub refresh: Duration,
    /// Time for one download.
    pub timeout: Duration,
    /// Largest accepted body.
    pub max_size: u64,
    /// Fewest accepted entries.
    pub min_entries: u64,
    /// Largest accepted shrink against the last good copy (fraction).
    pub max_shrink: f64,
}

impl Default for FetchOpts {
    fn default() -> Self {
        Self {
            refresh: DEFAULT_LIST_REFRESH,
            timeout: DEFAULT_LIST_TIMEOUT,
            max_size: DEFAULT_LIST_MAX_SIZE,
            min_entries: 1,
            max_shrink: DEFAULT_LIST_MAX_SHRINK,
        }
    }
}

/// What a zone does with a policy hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer with the block response; the name never reaches an upstream.
    Enforce,
    /// Resolve normally; record "would block".
    Log,
    /// No policy at all.
    Off,
}

impl Mode {
    /// The config keyword (also the `mode` metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Log => "log",
            Self::Off => "off",
        }
    }
}

/// The answer a blocked client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockResponse {
    /// NXDOMAIN with a synthetic SOA.
    Nxdomain,
    /// REFUSED.
    Refused,
    /// NOERROR, no answer, synthetic SOA.
    Nodata,
    /// 0.0.0.0 / :: for A / AAAA, NODATA for other types.
    Null,
    /// These addresses for A / AAAA (by family), NODATA for other types.
    Addresses(Vec<IpAddr>),
}

impl BlockResponse {
    /// A short description for start-up lines and explain.
    pub fn describe(&self) -> String {
        match self {
            Self::Nxdomain => "nxdomain".into(),
            Self::Refused => "refused".into(),
            Self::Nodata => "nodata".into(),
            Self::Null => "null".into(),
            Self::Addresses(a) => {
                let v: Vec<String> = a.iter().map(|i| i.to_string()).collect();
                format!("[{}]", v.join(", "))
            }
        }
    }
}

/// How much of the catalogue a zone blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogueMode {
    /// `block` hosts only.
    Block,
    /// `block` and `caution` hosts.
    Strict,
}

/// `[zones.NAME]`.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's name (a metric label).
    pub name: String,
    /// Its client networks.
    pub networks: Vec<IpNet>,
    /// Block lists, by name.
    pub block: Vec<String>,
    /// Allow lists, by name.
    pub allow: Vec<String>,
    /// enforce / log / off.
    pub mode: Mode,
    /// The block response.
    pub response: BlockResponse,
    /// TTL of block responses.
    pub block_ttl: Duration,
    /// Catalogue strictness.
    pub catalogue: CatalogueMode,
    /// Answer bypass canaries locally.
    pub canaries: bool,
    /// Check answer targets (CNAME cloaking).
    pub uncloak: bool,
    /// `query_log`: overrides `[query_log] record` for this zone.
    pub query_log: Option<RecordMode>,
    /// `query_log_client`: overrides `[query_log] client` for this zone.
    pub query_log_client: Option<ClientMode>,
    /// Per-client rate limit.
    pub rate_limit: RateLimit,
}

/// A zone's per-client rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained queries per second per client; 0 = no limit.
    pub qps: f32,
    /// Queries a client may send at once.
    pub burst: f32,
    /// Drop over-limit queries instead of answering REFUSED.
    pub drop: bool,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            qps: DEFAULT_RATE_QPS,
            burst: DEFAULT_RATE_BURST,
            drop: false,
        }
    }
}

/// Overrides from the command line, applied on top of the file (for trials and benchmarks).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replace `server.listen`.
    pub listen: Vec<String>,
    /// Replace `upstream.servers`.
    pub upstream: Vec<String>,
    /// Extra block lists (files); a zone `cli` covering every client blocks them.
    pub block: Vec<PathBuf>,
}

impl Config {
    /// Loads and validates a config file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            }])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_str(&text, &path.display().to_string(), &base, overrides)
    }

    /// The embedded default config.
    pub fn embedded(overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let base = std::env::current_dir().unwrap_or_default();
        Self::from_str(EMBEDDED_DEFAULT, "<embedded default>", &base, overrides)
    }

    /// Parses and validates config text; `file` names it in errors, `base` resolves relative paths.
    pub fn from_str(
        text: &str,
        file: &str,
        base: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigErrors> {
        validate::validate(text, file, base, overrides)
    }
}
