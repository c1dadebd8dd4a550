//! The typed `[dnstap]` and `[syslog]` sections: where policy events are exported for a security
//! team's tools (a dnstap collector over Frame Streams; a syslog collector over UDP, TCP or TLS),
//! which answers go there and how clients appear in them. Both sinks use the query log's client
//! modes and pseudonym key, so a SIEM feed never undoes the privacy defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{ClientMode, RecordMode};

/// Default number of events waiting for an export writer before new ones are dropped.
pub const DEFAULT_EXPORT_BUFFER: usize = 4096;
/// Default syslog port over UDP and TCP (RFC 5426, RFC 6587).
pub const SYSLOG_PORT: u16 = 514;
/// Default syslog port over TLS (RFC 5425).
pub const SYSLOG_TLS_PORT: u16 = 6514;
/// The structured-data ID of pixelguard's syslog parameters (32473: the documentation private
/// enterprise number of RFC 5612, until the project has its own).
pub const SYSLOG_SD_ID: &str = "pixelguard@32473";

/// Where a dnstap collector listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnstapTarget {
    /// A Unix stream socket (`socket = "/run/pixelguard/dnstap.sock"`).
    Unix(PathBuf),
    /// A TCP address (`tcp = "IP:PORT"`).
    Tcp(SocketAddr),
}

/// `[dnstap]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnstapConfig {
    /// The collector.
    pub target: DnstapTarget,
    /// Which answers are sent (zones' `query_log` overrides apply); never `None` here.
    pub record: RecordMode,
    /// How clients appear (zones' `query_log_client` overrides apply).
    pub client: ClientMode,
    /// Also send FORWARDER_QUERY / FORWARDER_RESPONSE for answers fetched from an upstream.
    pub forwarder: bool,
    /// The dnstap `identity` (default: the host name).
    pub identity: String,
    /// Events waiting for the writer.
    pub buffer: usize,
}

/// How syslog messages travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One message per datagram (RFC 5426).
    Udp,
    /// Octet-counted frames over TCP (RFC 6587 §3.4.1).
    Tcp,
    /// Octet-counted frames over TLS (RFC 5425), the certificate checked for this name.
    Tls(String),
}

/// `[syslog]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// The collector's address.
    pub server: SocketAddr,
    /// UDP, TCP or TLS.
    pub transport: SyslogTransport,
    /// The facility code (`local5` = 21).
    pub facility: u8,
    /// How clients appear (zones' `query_log_client` overrides apply).
    pub client: ClientMode,
    /// The HOSTNAME field (default: the host name).
    pub hostname: String,
    /// TLS: PEM CA certificates the collector's certificate must chain to (empty: the built-in
    /// roots).
    pub ca_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Events waiting for the writer.
    pub buffer: usize,
}

/// The facility keywords of RFC 5424 §6.2.1 and their codes.
pub const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("security", 13),
    ("console", 14),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The machine's host name (`/etc/hostname`, else `/proc/sys/kernel/hostname`), `-` (the
/// syslog NILVALUE) when neither can be read.
pub fn host_name() -> String {
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}
