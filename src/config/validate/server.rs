//! Checks of `[server]` (listen addresses, UDP path), `[cache]` (TTL bounds) and `[admin]` (the
//! admin HTTP server's address and token).

use super::super::raw::{RawAdmin, RawCache, RawServer};
use super::super::{AdminConfig, CacheConfig, Overrides, Secret, ServerConfig};
use super::{Ctx, parse_socket_addr};

/// `[server]`; `--listen` replaces `server.listen`.
pub(super) fn server(cx: &mut Ctx<'_>, raw: &RawServer, overrides: &Overrides) -> ServerConfig {
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
    ServerConfig {
        listen,
        udp_sockets: raw.udp_sockets,
        workers: raw.workers,
        tcp_idle_timeout: raw.tcp_idle_timeout,
        tcp_max_connections: raw.tcp_max_connections.max(1),
        tcp_max_connections_per_client: raw.tcp_max_connections_per_client.max(1),
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

/// `[cache]`: nothing to reject; the bounds are made consistent.
pub(super) fn cache(raw: &RawCache) -> CacheConfig {
    CacheConfig {
        max_entries: raw.max_entries,
        min_ttl: raw.min_ttl,
        max_ttl: raw.max_ttl.max(raw.min_ttl),
        negative_max_ttl: raw.negative_max_ttl,
        servfail_ttl: raw.servfail_ttl.min(super::super::DEFAULT_SERVFAIL_TTL),
        serve_stale: raw.serve_stale,
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
    let token = a.token.as_ref().and_then(|t| {
        let v = t.get_ref();
        if v.len() < 16 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            cx.spanned(
                t,
                "admin.token: expected at least 16 printable characters without spaces",
            );
            return None;
        }
        Some(Secret(v.clone()))
    });
    AdminConfig {
        listen,
        token,
        trust_loopback: a.trust_loopback,
    }
}
