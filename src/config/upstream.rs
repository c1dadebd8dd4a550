//! The typed `[upstream]` section: forward or recursive mode, the upstream servers and their
//! `IP:PORT` / `tls://` / `https://` syntax, the ordering [`Strategy`], root hints and CA
//! certificates; and the `[forward.NAME]` sections ([`ForwardRule`]: forward rules, which send
//! the names under a rule's domains to the rule's own servers instead of `[upstream]`; the
//! longest matching domain over all rules wins).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::UpstreamSyntaxError;

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
    pub strategy: Strategy,
    /// Upstream queries in flight at once (process-wide; set at start).
    pub max_inflight: usize,
    /// Recursive mode: validate DNSSEC (`dnssec = "validate"`, the default).
    pub dnssec: bool,
    /// Recursive mode: DNSKEY trust anchors replacing the built-in IANA root anchor.
    pub trust_anchor: Option<PathBuf>,
}

/// How cache misses are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamMode {
    /// Forward to the configured upstream servers.
    Forward,
    /// Resolve iteratively from the root servers.
    Recursive,
}

impl Default for UpstreamConfig {
    /// The documented defaults, forwarding to no server yet (validation fills `servers`; tests
    /// and benchmarks build from this with the fields they need).
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            timeout: super::DEFAULT_UPSTREAM_TIMEOUT,
            deadline: super::DEFAULT_UPSTREAM_DEADLINE,
            mode: UpstreamMode::Forward,
            ca_file: None,
            ca_certs: Vec::new(),
            root_hints: None,
            roots: Vec::new(),
            qname_minimization: true,
            recursion_ports: Vec::new(),
            strategy: Strategy::Ordered,
            max_inflight: super::DEFAULT_MAX_INFLIGHT,
            dnssec: true,
            trust_anchor: None,
        }
    }
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
    pub fn parse(s: &str) -> Result<Self, UpstreamSyntaxError> {
        let s = s.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((sc, rest)) => (Some(sc.to_ascii_lowercase()), rest),
            None => (None, s),
        };
        let Some(scheme) = scheme else {
            return parse_host_port(s, 53)
                .map(Self::plain)
                .ok_or(UpstreamSyntaxError::NotAnAddress);
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
                return Err(UpstreamSyntaxError::UnknownScheme(other.to_owned()));
            }
        };
        let default_port = if scheme == "tls" { DOT_PORT } else { DOH_PORT };
        let addr = parse_host_port(hostport, default_port).ok_or_else(|| {
            UpstreamSyntaxError::NotAnIp {
                scheme: scheme.clone(),
                default_port,
            }
        })?;
        let name = match name {
            Some("") => return Err(UpstreamSyntaxError::EmptyTlsName),
            Some(n) => n.to_owned(),
            None => addr.ip().to_string(),
        };
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            return Err(UpstreamSyntaxError::InvalidTlsName(name));
        }
        let protocol = if scheme == "tls" {
            UpstreamProtocol::Tls { name }
        } else {
            let path = path.unwrap_or(DOH_PATH);
            if path.contains(['?', ' ']) {
                return Err(UpstreamSyntaxError::InvalidDohPath(path.to_owned()));
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

/// How queries choose among healthy upstreams (`upstream.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// In the configured order (the first healthy one gets every query).
    #[default]
    Ordered,
    /// Lowest smoothed RTT first (never-measured upstreams count as fastest, so they get tried).
    Fastest,
}

// ------------ Forward rules ------------

/// Longest accepted rule name (it is a metric label value).
pub const MAX_FORWARD_NAME_LEN: usize = 32;
/// Most domains one rule may list.
pub const MAX_FORWARD_DOMAINS: usize = 1024;
/// Most rules in one config.
pub const MAX_FORWARD_RULES: usize = 256;
/// The group name of `[upstream]` in metrics and explain; reserved as a rule name.
pub const DEFAULT_GROUP: &str = "default";

/// One `[forward.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardRule {
    /// The rule's name: `[a-z0-9_-]`, at most [`MAX_FORWARD_NAME_LEN`] characters, never
    /// [`DEFAULT_GROUP`].
    pub name: String,
    /// Domains whose names (the domain itself and every name below it) go to `servers`: lower
    /// case, without the trailing dot, never the root; each in one rule only.
    pub domains: Vec<String>,
    /// Tried as `[upstream] servers` are (same syntax, same strategy choices); never empty.
    pub servers: Vec<UpstreamServer>,
    /// Per try; default `[upstream] timeout`.
    pub timeout: Duration,
    /// For all tries; default `[upstream] deadline`.
    pub deadline: Duration,
    /// How healthy servers are ordered; default `[upstream] strategy`.
    pub strategy: Strategy,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages `upstream.servers` errors embed: unchanged since they were strings.
    #[test]
    fn syntax_error_messages() {
        let e = |s: &str| UpstreamServer::parse(s).unwrap_err().to_string();
        assert_eq!(e("nowhere"), "expected \"IP:PORT\" or \"IP\"");
        assert_eq!(
            e("quic://9.9.9.9"),
            "unknown scheme \"quic\"; expected tls:// (DNS over TLS) or https:// (DNS over HTTPS)"
        );
        assert_eq!(
            e("tls://dns.quad9.net"),
            "expected an IP address (and port) after tls://, such as \"9.9.9.9\" or \"[2620:fe::fe]:853\"; host names cannot be used (pixelguard would need a resolver to find its resolver)"
        );
        assert_eq!(e("tls://9.9.9.9#"), "empty TLS name after '#'");
        assert_eq!(
            e("tls://9.9.9.9#a b"),
            "invalid TLS name \"a b\" after '#'; expected a DNS name such as dns.quad9.net"
        );
        assert_eq!(
            e("https://1.1.1.1/q?x#one.one"),
            "invalid DoH path \"/q?x\""
        );
    }
}
