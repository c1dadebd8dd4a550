//! Dashboard sign-in: the session table behind `POST /login` (a random 128-bit id in an
//! HttpOnly, SameSite=Strict cookie; the server keeps id → expiry, at most [`MAX_SESSIONS`],
//! each for [`SESSION_TTL`]), the cookie header, and constant-time token checks. No token ever
//! travels in a URL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use rand::RngCore;

/// Cookie name.
pub const COOKIE: &str = "pixelguard_session";
/// Most live sessions; signing in beyond it ends the oldest.
pub const MAX_SESSIONS: usize = 256;
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Constant-time comparison (the token must not leak through response timing).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The live sessions (ids are random; the table is bounded and expires).
#[derive(Debug, Default)]
pub struct Sessions {
    table: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// Opens a session; returns its id.
    pub fn open(&self) -> String {
        self.open_at(Instant::now())
    }

    fn open_at(&self, now: Instant) -> String {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.retain(|_, exp| *exp > now);
        if t.len() >= MAX_SESSIONS
            && let Some(oldest) = t.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
        {
            t.remove(&oldest);
        }
        t.insert(id.clone(), now + SESSION_TTL);
        id
    }

    /// The request carries a live session cookie.
    pub fn valid(&self, headers: &HeaderMap) -> bool {
        let Some(id) = cookie(headers) else {
            return false;
        };
        self.valid_at(&id, Instant::now())
    }

    fn valid_at(&self, id: &str, now: Instant) -> bool {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        // Compare every live id in constant time: no early exit on a prefix.
        t.iter()
            .filter(|(_, exp)| **exp > now)
            .fold(false, |hit, (k, _)| same(k.as_bytes(), id.as_bytes()) | hit)
    }

    /// Ends the request's session, if any.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
            t.remove(&id);
        }
    }
}

/// The session id from the `Cookie` header(s).
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value of a new session.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The token of a `POST /login` form body (`token=...`, URL-encoded).
pub fn form_token(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn sessions_are_random_bounded_and_expire() {
        let s = Sessions::default();
        let now = Instant::now();
        let a = s.open_at(now);
        let b = s.open_at(now);
        assert_ne!(a, b);
        assert!(s.valid(&with_cookie(&format!("x=1; {COOKIE}={a}"))));
        assert!(!s.valid(&with_cookie(&format!("{COOKIE}={}", "0".repeat(32)))));
        assert!(!s.valid_at(&a, now + SESSION_TTL + Duration::from_secs(1)));
        for _ in 0..MAX_SESSIONS + 10 {
            s.open_at(now + Duration::from_secs(1));
        }
        assert!(s.table.lock().unwrap().len() <= MAX_SESSIONS);
        s.close(&with_cookie(&format!("{COOKIE}={b}")));
        assert!(!s.valid_at(&b, now));
        assert_eq!(
            form_token(b"token=abc%2Bdef&x=1").as_deref(),
            Some("abc+def")
        );
        assert!(set_cookie(&a).contains("HttpOnly; SameSite=Strict; Path=/"));
    }
}
