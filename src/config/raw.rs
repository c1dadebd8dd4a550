//! The raw, serde-facing shape of the config file: exactly what the TOML says, with spans kept on
//! every value that a later semantic check may need to point at. Nothing here is interpreted; the
//! `validate` module turns it into the typed [`super::Config`]. Every struct is strict
//! (`deny_unknown_fields`), so a typo in a key is an error with its line, not a silent default.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use super::raw_governance::{RawBlockEntry, RawException};

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `[server]`: listeners.
    pub server: RawServer,
    /// `[upstream]`: where cache misses go.
    pub upstream: RawUpstream,
    /// `[cache]`: the answer cache.
    pub cache: RawCache,
    /// `[lists.NAME]`: block and allow lists, referenced by zones.
    pub lists: BTreeMap<String, Spanned<RawList>>,
    /// `[list_download]`: how remote lists are downloaded (a proxy). Its own table, not keys of
    /// `[lists]`, where every key is a list name.
    pub list_download: RawListDownload,
    /// `[zones.NAME]`: network zones with their policy.
    pub zones: BTreeMap<String, Spanned<RawZone>>,
    /// `[forward.NAME]`: forward rules (names under these domains go to these servers).
    pub forward: BTreeMap<String, Spanned<RawForward>>,
    /// `[log]`: process log.
    pub log: RawLog,
    /// `[admin]`: the admin HTTP server (metrics, health, API).
    pub admin: RawAdmin,
    /// `[query_log]`: the query log; absent = no query log.
    pub query_log: Option<Spanned<RawQueryLog>>,
    /// `[local]`: the locally served zones (private reverse zones, special-use names).
    pub local: RawLocal,
    /// `[dnstap]`: policy events to a dnstap collector; absent = off.
    pub dnstap: Option<Spanned<RawDnstap>>,
    /// `[syslog]`: policy events to a syslog collector; absent = off.
    pub syslog: Option<Spanned<RawSyslog>>,
    /// `[csp_reports]`: the CSP report endpoint; absent = off.
    pub csp_reports: Option<Spanned<super::csp_reports::RawCspReports>>,
    /// Folder for downloaded list copies (and other state); default /var/lib/pixelguard.
    pub state_dir: Option<Spanned<String>>,
    /// Refuse to start when a remote list has neither a download nor a disk copy.
    pub strict_start: bool,
    /// `[[exceptions]]`: time-boxed allows per zone, by vendor or name.
    pub exceptions: Vec<Spanned<RawException>>,
}

/// `[server]`; an absent key takes its default in validation.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Addresses to serve DNS on, UDP and TCP each.
    pub listen: Vec<Spanned<String>>,
    /// UDP sockets per listen address (SO_REUSEPORT); 0 = one per worker thread.
    pub udp_sockets: Option<Spanned<usize>>,
    /// Worker threads; 0 = one per CPU.
    pub workers: Option<Spanned<usize>>,
    /// A TCP connection with no query for this long is closed.
    pub tcp_idle_timeout: Option<Spanned<RawDuration>>,
    /// Concurrent TCP connections over all clients; more wait in the kernel backlog.
    pub tcp_max_connections: Option<Spanned<usize>>,
    /// Concurrent TCP connections of one client; more are closed at once.
    pub tcp_max_connections_per_client: Option<Spanned<usize>>,
    /// "fast" (pixelguard's own UDP loop with a fast path) or "hickory" (hickory-server's).
    pub udp_path: Option<Spanned<String>>,
    /// Peers (CIDRs) that put a PROXY v2 header before every datagram and connection.
    pub proxy_protocol: Vec<Spanned<String>>,
    /// Forwarders (CIDRs) whose EDNS Client Subnet option names the client.
    pub client_subnet_from: Vec<Spanned<String>>,
    /// DNS over TLS (RFC 7858) listen addresses; empty = none.
    pub tls_listen: Vec<Spanned<String>>,
    /// DNS over HTTPS (RFC 8484) listen addresses; empty = none.
    pub https_listen: Vec<Spanned<String>>,
    /// PEM certificate chain of the encrypted listeners.
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key of the encrypted listeners.
    pub tls_key: Option<Spanned<String>>,
    /// The name the certificate is for (announced by DDR).
    pub tls_name: Option<Spanned<String>>,
}

/// `[upstream]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    /// `"IP:PORT"`, `"IP"` (port 53), `"tls://IP[:PORT]#NAME"` (DoT),
    /// `"https://IP[:PORT][/PATH]#NAME"` (DoH) or `"system"` (the nameservers of /etc/resolv.conf).
    pub servers: Vec<Spanned<String>>,
    /// Time allowed for one try at one upstream.
    pub timeout: Option<Spanned<RawDuration>>,
    /// Time allowed for all tries together; then the client gets SERVFAIL.
    pub deadline: Option<Spanned<RawDuration>>,
    /// forward | recursive.
    pub mode: Option<Spanned<String>>,
    /// Recursive mode: a root hints file (zone-file style) replacing the built-in IANA hints.
    pub root_hints: Option<Spanned<String>>,
    /// PEM file of the CA certificates that DoT / DoH upstream certificates must chain to,
    /// instead of the built-in (Mozilla) roots.
    pub ca_file: Option<Spanned<String>>,
    /// Recursive mode: QNAME minimisation, strict (RFC 9156 with RFC 8020 NXDOMAIN cut).
    pub qname_minimization: bool,
    /// Recursive mode, for tests and labs: `"IP:PORT"` entries sending queries for the name
    /// server `IP` to `PORT` instead of 53 (and allowing `IP` even if it is a loopback or private
    /// address).
    pub recursion_ports: Vec<Spanned<String>>,
    /// "ordered" (configured order) or "fastest" (lowest smoothed RTT first).
    pub strategy: Option<Spanned<String>>,
    /// Upstream queries in flight at once; past it a query is served stale or SERVFAIL at once.
    pub max_inflight: Option<Spanned<usize>>,
    /// Recursive mode: "validate" (DNSSEC, the default) or "off".
    pub dnssec: Option<Spanned<String>>,
    /// Recursive mode: a file of DNSKEY records replacing the built-in IANA root trust anchor.
    pub trust_anchor: Option<Spanned<String>>,
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            timeout: None,
            deadline: None,
            mode: None,
            root_hints: None,
            ca_file: None,
            qname_minimization: true,
            recursion_ports: Vec::new(),
            strategy: None,
            max_inflight: None,
            dnssec: None,
            trust_anchor: None,
        }
    }
}

/// `[forward.NAME]`: a forward rule. Absent keys of the `[upstream]` kind take `[upstream]`'s
/// values in validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    /// Domains whose names go to `servers` (trailing dot optional, any case).
    #[serde(default)]
    pub domains: Vec<Spanned<String>>,
    /// Same syntax as `upstream.servers` (without `"system"`).
    #[serde(default)]
    pub servers: Vec<Spanned<String>>,
    /// Time allowed for one try at one server.
    #[serde(default)]
    pub timeout: Option<Spanned<RawDuration>>,
    /// Time allowed for all tries together.
    #[serde(default)]
    pub deadline: Option<Spanned<RawDuration>>,
    /// "ordered" or "fastest".
    #[serde(default)]
    pub strategy: Option<Spanned<String>>,
}

/// `[local]`; both switches default on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLocal {
    /// Answer the RFC 6303 / RFC 7793 reverse zones of private and special ranges locally.
    pub private_reverse: bool,
    /// Answer the special-use names and single-label A / AAAA locally.
    pub special_names: bool,
}

impl Default for RawLocal {
    fn default() -> Self {
        Self {
            private_reverse: true,
            special_names: true,
        }
    }
}

/// `[cache]`; an absent key takes its default in validation.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawCache {
    /// Maximum answers kept; 0 disables the cache.
    pub max_entries: Option<Spanned<usize>>,
    /// Maximum bytes the kept answers take: bytes, or "64MiB", "1GB", ...
    pub max_size: Option<Spanned<RawSize>>,
    /// TTLs below this are raised to it when cached.
    pub min_ttl: Option<Spanned<RawDuration>>,
    /// TTLs above this are capped when cached.
    pub max_ttl: Option<Spanned<RawDuration>>,
    /// Negative answers (NXDOMAIN, NODATA) are cached at most this long.
    pub negative_max_ttl: Option<Spanned<RawDuration>>,
    /// SERVFAIL from every upstream is cached this long (at most 5 s).
    pub servfail_ttl: Option<Spanned<RawDuration>>,
    /// Expired answers may be served this long past expiry when every upstream fails.
    pub serve_stale: Option<Spanned<RawDuration>>,
}

/// `[lists.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawList {
    /// `builtin:trackers`, a file path (relative to the config file's folder), or a URL.
    pub source: Spanned<String>,
    /// domains | hosts | adblock | rpz | catalogue; guessed from content when omitted.
    pub format: Option<Spanned<String>>,
    /// Remote lists: how often to download again (jittered by ±10%).
    #[serde(default)]
    pub refresh: Option<Spanned<RawDuration>>,
    /// Remote lists: time allowed for one download.
    #[serde(default)]
    pub timeout: Option<Spanned<RawDuration>>,
    /// Remote lists: largest body accepted, in bytes.
    pub max_size: Option<Spanned<u64>>,
    /// Remote lists: a download that parses to fewer entries is rejected.
    pub min_entries: Option<u64>,
    /// Remote lists: a download that shrinks by more than this fraction (0.5 = 50%) against the
    /// last good copy is rejected.
    pub max_shrink: Option<f64>,
    /// Allow `http://` (unauthenticated) sources for this list.
    #[serde(default)]
    pub allow_insecure: bool,
}

/// `[list_download]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawListDownload {
    /// `"http://HOST:PORT"` or `"https://HOST:PORT"` (credentials allowed) for list downloads
    /// only; absent = direct, and proxy environment variables are ignored.
    pub proxy: Option<Spanned<String>>,
    /// Hosts downloaded without the proxy: `"host"` or `".domain"` (the name and its subdomains),
    /// an IP address or a CIDR.
    pub no_proxy: Vec<Spanned<String>>,
}

/// `[zones.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    /// CIDRs of the clients in this zone; the longest matching prefix over all zones wins.
    pub networks: Vec<Spanned<String>>,
    /// Lists whose names are blocked for this zone (`{ list, mode = "log" }`: a trial).
    #[serde(default)]
    pub block: Vec<Spanned<RawBlockEntry>>,
    /// Catalogue vendors blocked in this zone (with the built-in catalogue's hosts).
    #[serde(default)]
    pub block_vendors: Vec<Spanned<String>>,
    /// Catalogue vendors never blocked in this zone.
    #[serde(default)]
    pub allow_vendors: Vec<Spanned<String>>,
    /// Watched lists (`catalogue:server_side` or a list name): resolved, counted and logged as
    /// `watched`, never blocked.
    #[serde(default)]
    pub watch: Vec<Spanned<String>>,
    /// Lists whose names are never blocked for this zone (allow beats block).
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// enforce | log | off.
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    /// nxdomain | refused | nodata | null | a list of IP addresses.
    #[serde(default)]
    pub response: Option<Spanned<RawResponse>>,
    /// TTL of synthesized block answers (and of the SOA that makes clients cache them).
    #[serde(default)]
    pub block_ttl: Option<Spanned<RawDuration>>,
    /// block | strict (strict also blocks the catalogue's `caution` hosts).
    #[serde(default)]
    pub catalogue: Option<Spanned<String>>,
    /// Answer the bypass canaries locally (Firefox DoH, iCloud Private Relay, DDR).
    #[serde(default)]
    pub canaries: Option<bool>,
    /// Check CNAME / DNAME / HTTPS / SVCB targets in answers against the block lists.
    #[serde(default)]
    pub uncloak: Option<bool>,
    /// Overrides `[query_log] record` for this zone: policy | all | none.
    #[serde(default)]
    pub query_log: Option<Spanned<String>>,
    /// Overrides `[query_log] client` for this zone: hash | masked | full | none.
    #[serde(default)]
    pub query_log_client: Option<Spanned<String>>,
    /// Per-client rate limit: `{ qps = 200, burst = 400, action = "refused" | "drop" }`;
    /// `qps = 0` turns it off.
    #[serde(default)]
    pub rate_limit: Option<Spanned<RawRateLimit>>,
}

/// `rate_limit = { ... }` of a zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Sustained queries per second per client (IPv6: per /56).
    pub qps: f64,
    /// Bucket size: queries a client may send at once.
    pub burst: Option<f64>,
    /// "refused" (answer REFUSED) or "drop" (no answer).
    pub action: Option<String>,
}

/// `response = "nxdomain"` or `response = ["192.0.2.10", "2001:db8::10"]`. Written as a visitor
/// rather than an untagged enum so that a wrong type gets a precise message.
#[derive(Debug, Clone)]
pub enum RawResponse {
    /// A keyword.
    Keyword(String),
    /// Custom addresses.
    Addresses(Vec<String>),
}

impl<'de> Deserialize<'de> for RawResponse {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawResponse;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "\"nxdomain\", \"refused\", \"nodata\", \"null\" or a list of IP addresses",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawResponse, E> {
                Ok(RawResponse::Keyword(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawResponse, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(RawResponse::Addresses(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[log]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// A tracing filter such as "info" or "info,pixelguard=debug"; RUST_LOG overrides it.
    pub level: Option<String>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    /// `"IP:PORT"` of the admin HTTP server; `""` turns it off. Default `"127.0.0.1:9153"`.
    pub listen: Option<Spanned<String>>,
    /// Bearer token for `POST /api/reload` (and `/api/*` when set).
    pub token: Option<Spanned<String>>,
    /// Requests from loopback addresses need no token.
    pub trust_loopback: bool,
    /// A read-only token: opens the dashboard and the `/api/*` reads, never reload.
    pub read_token: Option<Spanned<String>>,
    /// `"http://HOST:PORT"` of a Prometheus whose HTTP API the dashboard reads (cluster view).
    pub prometheus: Option<Spanned<String>>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: None,
            token: None,
            trust_loopback: true,
            read_token: None,
            prometheus: None,
        }
    }
}

/// `[dnstap]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawDnstap {
    /// A Unix stream socket of the collector.
    pub socket: Option<Spanned<String>>,
    /// `"IP:PORT"` of a TCP collector.
    pub tcp: Option<Spanned<String>>,
    /// policy | all.
    pub record: Option<Spanned<String>>,
    /// hash | masked | none | full.
    pub client: Option<Spanned<String>>,
    /// Also FORWARDER_QUERY / FORWARDER_RESPONSE.
    pub forwarder: bool,
    /// The dnstap identity.
    pub identity: Option<Spanned<String>>,
    /// Events waiting for the writer.
    pub buffer: Option<Spanned<usize>>,
}

/// `[syslog]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslog {
    /// `"udp://IP:PORT"`, `"tcp://IP:PORT"` or `"tls://IP:PORT#NAME"`.
    pub server: Spanned<String>,
    /// A facility keyword (`local5`).
    #[serde(default)]
    pub facility: Option<Spanned<String>>,
    /// rfc5424 (the only format).
    #[serde(default)]
    pub format: Option<Spanned<String>>,
    /// hash | masked | none | full.
    #[serde(default)]
    pub client: Option<Spanned<String>>,
    /// The HOSTNAME field.
    #[serde(default)]
    pub hostname: Option<Spanned<String>>,
    /// TLS: PEM CA certificates of the collector.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// Events waiting for the writer.
    #[serde(default)]
    pub buffer: Option<Spanned<usize>>,
}

/// `[query_log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueryLog {
    /// The JSON-lines file (relative to the config file's folder).
    pub path: Spanned<String>,
    /// policy | all | none.
    #[serde(default)]
    pub record: Option<Spanned<String>>,
    /// hash | masked | full | none.
    #[serde(default)]
    pub client: Option<Spanned<String>>,
    /// The pseudonym key (at least 16 characters); when absent it is read from `key_file`.
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    /// Where a generated key is kept.
    #[serde(default)]
    pub key_file: Option<Spanned<String>>,
    /// Rotate the file when it would grow beyond this: bytes, or "100MB", "64MiB", ...
    #[serde(default)]
    pub max_size: Option<Spanned<RawSize>>,
    /// Rotated files kept.
    #[serde(default)]
    pub keep: Option<Spanned<usize>>,
    /// No entry is kept longer than this.
    #[serde(default)]
    pub max_age: Option<Spanned<RawDuration>>,
    /// Entries waiting for the writer; more are dropped (and counted).
    #[serde(default)]
    pub buffer: Option<Spanned<usize>>,
}

/// A size: `1048576` or `"1MiB"`.
#[derive(Debug, Clone)]
pub enum RawSize {
    /// Bytes.
    Bytes(u64),
    /// Text with a unit.
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size in bytes or a string such as \"100MB\" or \"64MiB\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                u64::try_from(v)
                    .map(RawSize::Bytes)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration as written (`"2s"`, `"500ms"`, `"12h"`): the parsed value and the text, so that a
/// bound check can quote what the file says. Parsed like `humantime_serde` (same message for a
/// string that is not a duration).
#[derive(Debug, Clone)]
pub struct RawDuration {
    /// The parsed value.
    pub value: Duration,
    /// The text as written.
    pub text: String,
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawDuration, E> {
                humantime::parse_duration(v)
                    .map(|value| RawDuration {
                        value,
                        text: v.to_owned(),
                    })
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}
