//! The typed `[server]`, `[cache]` and `[admin]` sections: listeners, the answer cache and the
//! admin HTTP server, the encrypted listeners' [`TlsIdentity`], plus [`Secret`] for the admin token (and the query-log key).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use rustls::sign::CertifiedKey;

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
    /// Peers that put a PROXY v2 header before every UDP datagram and at the start of every TCP
    /// connection; the header's source address is the client. Empty: no peer may.
    pub proxy_protocol: Vec<IpNet>,
    /// Forwarders whose EDNS Client Subnet option (RFC 7871) names the client's network: from
    /// them, the option's address is the client. Empty: ECS never picks the client.
    pub client_subnet_from: Vec<IpNet>,
    /// DNS over TLS (RFC 7858) listen addresses; empty = none.
    pub tls_listen: Vec<SocketAddr>,
    /// DNS over HTTPS (RFC 8484, `/dns-query`) listen addresses; empty = none.
    pub https_listen: Vec<SocketAddr>,
    /// The encrypted listeners' certificate, key and name; `Some` exactly when one is configured.
    pub tls: Option<TlsIdentity>,
}

/// The identity the DoT / DoH listeners present: read and checked (PEM, key matching the
/// certificate) when the config is loaded, so a reload with a bad certificate fails as a whole
/// and the running one stays.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The name the certificate is for: the target of the DDR (SVCB) answers.
    pub name: String,
    /// The PEM certificate chain file (leaf first).
    pub cert: PathBuf,
    /// The PEM private key file.
    pub key: PathBuf,
    /// The parsed chain and signing key, served to new connections.
    pub certified: Arc<CertifiedKey>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("name", &self.name)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// `[cache]`.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// 0 disables.
    pub max_entries: usize,
    /// Bound on the bytes the entries take (answers, keys, bookkeeping), 0 = none.
    pub max_size: usize,
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
    /// Read-only token: the dashboard and the `/api/*` reads, not reload.
    pub read_token: Option<Secret>,
    /// Prometheus HTTP API base URL the dashboard reads (cluster view); `None`: this instance.
    pub prometheus: Option<url::Url>,
}
