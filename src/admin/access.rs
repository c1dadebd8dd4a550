//! Who may use which admin endpoint: trusted loopback, `Authorization: Bearer` with
//! `admin.token` (everything) or `admin.read_token` (the reads and the dashboard, never reload),
//! compared in constant time. The dashboard's session cookie is checked in [`super::dashboard`].

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::dashboard::session::same;
use super::json_response;
use crate::config::AdminConfig;

/// Access check. `reload`: only `admin.token` opens it, and with no token configured a
/// non-trusted peer is refused; reads take `admin.token` or `admin.read_token`, and are open to
/// all when neither is configured.
pub(super) fn authorize(
    cfg: &AdminConfig,
    peer: IpAddr,
    headers: &HeaderMap,
    reload: bool,
) -> Result<(), Box<Response>> {
    if cfg.trust_loopback && peer.to_canonical().is_loopback() {
        return Ok(());
    }
    let read = cfg.read_token.as_ref().filter(|_| !reload);
    if cfg.token.is_none() && read.is_none() {
        if reload {
            return Err(Box::new(json_response(
                StatusCode::FORBIDDEN,
                json!({"error": "this endpoint needs admin.token (or a request from loopback with admin.trust_loopback)"}),
            )));
        }
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => {
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing Authorization: Bearer <admin.token>"}),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pixelguard\""),
            );
            Err(Box::new(r))
        }
        Some(t)
            if [cfg.token.as_ref(), read]
                .into_iter()
                .flatten()
                .fold(false, |hit, k| {
                    same(t.trim().as_bytes(), k.0.as_bytes()) | hit
                }) =>
        {
            Ok(())
        }
        Some(t)
            if reload
                && cfg
                    .read_token
                    .as_ref()
                    .is_some_and(|k| same(t.trim().as_bytes(), k.0.as_bytes())) =>
        {
            Err(Box::new(json_response(
                StatusCode::FORBIDDEN,
                json!({"error": "the read-only token (admin.read_token) cannot reload"}),
            )))
        }
        Some(_) => Err(Box::new(json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "wrong token"}),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn cfg(token: Option<&str>, trust: bool) -> AdminConfig {
        AdminConfig {
            listen: None,
            token: token.map(|t| Secret(t.into())),
            trust_loopback: trust,
            read_token: Some(Secret("read-only-token-0123".into())),
            prometheus: None,
        }
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    #[test]
    fn access_rules() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let far: IpAddr = "192.0.2.9".parse().unwrap();
        let none = HeaderMap::new();
        let code = |r: Result<(), Box<Response>>| r.err().map(|r| r.status().as_u16());
        let t = cfg(Some("0123456789abcdef"), true);
        assert_eq!(code(authorize(&t, lo, &none, true)), None);
        assert_eq!(code(authorize(&t, lo6, &none, true)), None);
        assert_eq!(code(authorize(&t, far, &none, true)), Some(401));
        assert_eq!(code(authorize(&t, far, &bearer("nope"), true)), Some(403));
        assert_eq!(
            code(authorize(&t, far, &bearer("0123456789abcdef"), true)),
            None
        );
        let strict = cfg(Some("0123456789abcdef"), false);
        assert_eq!(code(authorize(&strict, lo, &none, true)), Some(401));
        let open = AdminConfig {
            read_token: None,
            ..cfg(None, false)
        };
        assert_eq!(code(authorize(&open, lo, &none, true)), Some(403));
        assert_eq!(
            code(authorize(&open, far, &none, false)),
            None,
            "reads open without a token"
        );
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
        // The read token opens the reads, never reload.
        let ro = bearer("read-only-token-0123");
        assert_eq!(code(authorize(&t, far, &ro, false)), None);
        assert_eq!(code(authorize(&t, far, &ro, true)), Some(403));
        let read_only = cfg(None, false);
        assert_eq!(code(authorize(&read_only, far, &ro, true)), Some(403));
        assert_eq!(code(authorize(&read_only, far, &ro, false)), None);
        assert_eq!(code(authorize(&read_only, far, &none, false)), Some(401));
    }
}
