//! The typed `[server]`, `[cache]` and `[admin]` sections: listeners, the answer cache and the
//! admin HTTP server, plus [`Secret`] for the admin token (and the query-log key).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

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
}
