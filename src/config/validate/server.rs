//! Checks of `[server]` (listen addresses, UDP path, connection and thread counts), `[cache]`
//! (TTLs and size, each within its bound from `bounds`) and `[admin]` (the admin HTTP server's
//! address and token).

use super::super::raw::{RawAdmin, RawCache, RawServer, RawSize};
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::super::{self as d, AdminConfig, CacheConfig, Overrides, Secret, ServerConfig};
use super::bounds::{self, duration, size};
use super::zones::parse_net;
use super::{Ctx, parse_socket_addr};

/// `[server]`; `--listen` replaces `server.listen`.
pub(super) fn server(
    cx: &mut Ctx<'_>,
    raw: &RawServer,
    overrides: &Overrides,
    base: &Path,
) -> ServerConfig {
    let mut listen = Vec::new();
    if overrides.listen.is_empty() {
        for l in &raw.listen {
            match parse_socket_addr(l.get_ref()) {
                Some(a) => listen.push(a),
                None => cx.spanned(
                    l,
                    format!(
                        "server.listen: invalid address {:?}; expected IP:PORT such as \"0.0.0.0:53\" or \"[::]:53\"",
                        l.get_ref()
                    ),
                ),
            }
        }
    } else {
        for l in &overrides.listen {
            match parse_socket_addr(l) {
                Some(a) => listen.push(a),
                None => cx.at(
                    None,
                    format!("--listen: invalid address {l:?}; expected IP:PORT"),
                ),
            }
        }
    }
    if listen.is_empty() && cx.errors.is_empty() {
        cx.at(
            None,
            "server.listen: no listen address; expected at least one IP:PORT",
        );
    }
    let proxy_protocol = networks(cx, "server.proxy_protocol", &raw.proxy_protocol);
    let client_subnet_from = networks(cx, "server.client_subnet_from", &raw.client_subnet_from);
    let (tls_listen, https_listen, tls) = super::tls::encrypted(cx, raw, base);
    ServerConfig {
        listen,
        tls_listen,
        https_listen,
        tls,
        proxy_protocol,
        client_subnet_from,
        udp_sockets: size(
            cx,
            "server.udp_sockets",
            raw.udp_sockets.as_ref(),
            0,
            bounds::UDP_SOCKETS,
        ),
        workers: size(
            cx,
            "server.workers",
            raw.workers.as_ref(),
            0,
            bounds::WORKERS,
        ),
        tcp_idle_timeout: duration(
            cx,
            "server.tcp_idle_timeout",
            raw.tcp_idle_timeout.as_ref(),
            d::DEFAULT_TCP_IDLE_TIMEOUT,
            bounds::TCP_IDLE_TIMEOUT,
        ),
        tcp_max_connections: size(
            cx,
            "server.tcp_max_connections",
            raw.tcp_max_connections.as_ref(),
            d::DEFAULT_TCP_MAX_CONNECTIONS,
            bounds::TCP_MAX_CONNECTIONS,
        )
        .max(1),
        tcp_max_connections_per_client: size(
            cx,
            "server.tcp_max_connections_per_client",
            raw.tcp_max_connections_per_client.as_ref(),
            d::DEFAULT_TCP_PER_CLIENT,
            bounds::TCP_PER_CLIENT,
        )
        .max(1),
        udp_fast_path: match raw.udp_path.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("fast") => true,
            Some("hickory") => false,
            Some(other) => {
                if let Some(p) = &raw.udp_path {
                    cx.spanned(
                        p,
                        format!(
                            "server.udp_path: unknown value {other:?}; expected fast or hickory"
                        ),
                    );
                }
                true
            }
        },
    }
}

/// A list of trusted peers' networks (`server.proxy_protocol`, `server.client_subnet_from`): each
/// a CIDR with no host bits or a bare address (a /32 or /128), as zone networks are written. A
/// network may be in both lists: the PROXY header is read first, and ECS is then trusted when
/// the header's source is a trusted forwarder.
fn networks(cx: &mut Ctx<'_>, key: &str, raw: &[Spanned<String>]) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Vec::new();
    for (i, n) in raw.iter().enumerate() {
        match parse_net(n.get_ref()) {
            Some(net) if out.contains(&net) => {
                cx.spanned(n, format!("{key}[{i}]: {net} is listed twice"))
            }
            Some(net) => out.push(net),
            None => cx.spanned(
                n,
                format!(
                    "{key}[{i}]: invalid network {:?}; expected an address or a CIDR with no host bits, such as \"10.0.0.5\", \"10.0.0.0/24\" or \"fd00::53/128\"",
                    n.get_ref()
                ),
            ),
        }
    }
    out
}

/// `cache.max_size`: a size of at least 64 KiB (one large answer must fit in every shard), 0
/// when not given.
fn cache_max_size(cx: &mut Ctx<'_>, raw: &RawCache) -> usize {
    let Some(s) = &raw.max_size else { return 0 };
    let text = || match s.get_ref() {
        RawSize::Bytes(n) => n.to_string(),
        RawSize::Text(t) => t.trim().to_owned(),
    };
    match super::query_log::parse_size(s.get_ref()) {
        Some(n) if n > bounds::CACHE_MAX_SIZE.value => {
            let msg = format!(
                "cache.max_size: at most {}, got {}",
                bounds::CACHE_MAX_SIZE.text,
                text()
            );
            cx.spanned(s, msg);
            0
        }
        Some(n) if n >= 65_536 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => {
            let msg = format!(
                "cache.max_size: expected a size of at least 65536 bytes, e.g. 67108864, \"64MiB\" or \"1GB\"; got {}",
                text()
            );
            cx.spanned(s, msg);
            0
        }
    }
}

/// `[cache]`: each duration and the entry count within its bound; min and max made consistent.
pub(super) fn cache(cx: &mut Ctx<'_>, raw: &RawCache) -> CacheConfig {
    let min_ttl = duration(
        cx,
        "cache.min_ttl",
        raw.min_ttl.as_ref(),
        Duration::ZERO,
        bounds::CACHE_MIN_TTL,
    );
    let max_ttl = duration(
        cx,
        "cache.max_ttl",
        raw.max_ttl.as_ref(),
        d::DEFAULT_CACHE_MAX_TTL,
        bounds::CACHE_MAX_TTL,
    );
    let max_size = cache_max_size(cx, raw);
    // With only a size given, the size alone bounds the cache (the count at its upper bound).
    let default_entries = if raw.max_size.is_some() && raw.max_entries.is_none() {
        usize::try_from(bounds::CACHE_ENTRIES.value).unwrap_or(usize::MAX)
    } else {
        d::DEFAULT_CACHE_ENTRIES
    };
    CacheConfig {
        max_entries: size(
            cx,
            "cache.max_entries",
            raw.max_entries.as_ref(),
            default_entries,
            bounds::CACHE_ENTRIES,
        ),
        max_size,
        min_ttl,
        max_ttl: max_ttl.max(min_ttl),
        negative_max_ttl: duration(
            cx,
            "cache.negative_max_ttl",
            raw.negative_max_ttl.as_ref(),
            d::DEFAULT_NEGATIVE_MAX_TTL,
            bounds::CACHE_NEGATIVE_MAX_TTL,
        ),
        servfail_ttl: duration(
            cx,
            "cache.servfail_ttl",
            raw.servfail_ttl.as_ref(),
            d::DEFAULT_SERVFAIL_TTL,
            bounds::CACHE_SERVFAIL_TTL,
        ),
        serve_stale: duration(
            cx,
            "cache.serve_stale",
            raw.serve_stale.as_ref(),
            d::DEFAULT_SERVE_STALE,
            bounds::CACHE_SERVE_STALE,
        ),
    }
}

/// `[admin]`.
pub(super) fn admin(cx: &mut Ctx<'_>, a: &RawAdmin) -> AdminConfig {
    let listen = match &a.listen {
        None => parse_socket_addr(super::super::DEFAULT_ADMIN_LISTEN),
        Some(l) if l.get_ref().trim().is_empty() => None,
        Some(l) => {
            let v = parse_socket_addr(l.get_ref());
            if v.is_none() {
                cx.spanned(
                    l,
                    format!(
                        "admin.listen: invalid address {:?}; expected IP:PORT such as \"127.0.0.1:9153\", or \"\" for no admin server",
                        l.get_ref()
                    ),
                );
            }
            v
        }
    };
    let mut secret = |key: &str, t: &Spanned<String>| {
        let v = t.get_ref();
        if v.len() < 16 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            cx.spanned(
                t,
                format!("admin.{key}: expected at least 16 printable characters without spaces"),
            );
            return None;
        }
        Some(Secret(v.clone()))
    };
    let token = a.token.as_ref().and_then(|t| secret("token", t));
    let read_token = a.read_token.as_ref().and_then(|t| secret("read_token", t));
    if let (Some(t), Some(r), Some(rt)) = (&token, &read_token, &a.read_token)
        && t == r
    {
        cx.spanned(
            rt,
            "admin.read_token: expected a token different from admin.token (the read token must not allow reload)",
        );
    }
    let prometheus = a.prometheus.as_ref().and_then(|p| {
        let v = p.get_ref().trim();
        if v.is_empty() {
            return None;
        }
        match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                cx.spanned(
                    p,
                    format!(
                        "admin.prometheus: invalid URL {v:?}; expected the base URL of a Prometheus such as \"http://prometheus:9090\", or \"\" for this instance only"
                    ),
                );
                None
            }
        }
    });
    AdminConfig {
        listen,
        token,
        trust_loopback: a.trust_loopback,
        read_token,
        prometheus,
    }
}
