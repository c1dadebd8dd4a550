//! DNS over HTTPS (RFC 8484) inside one TLS connection: `GET /dns-query?dns=<base64url>` and
//! `POST /dns-query` (`application/dns-message`), over HTTP/2 or HTTP/1.1 as the client's ALPN
//! chose, served by hyper (hyper-util's auto connection) with an axum router. The DNS message
//! goes through the one pipeline with the connection's client address, as a TCP query would
//! (no truncation); the answer carries `Cache-Control: max-age` of its smallest TTL.
//!
//! A connection with no request in flight and no bytes moving for the idle timeout is closed
//! gracefully, as an idle TCP connection is; shutdown closes it gracefully too.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::contain::{Containment, Where, servfail};
use crate::pipeline::Handler;

/// The DoH path (RFC 8484 §4.1's example, and what DDR announces).
pub const PATH: &str = "/dns-query";
/// The media type of a DNS message.
const DNS_MESSAGE: &str = "application/dns-message";
/// The largest DNS message (and so request body) accepted.
const MAX_MESSAGE: usize = 65_535;

/// What a request handler needs: the pipeline, the connection's client, the panic containment,
/// and the count of requests in flight (for the idle timeout).
#[derive(Clone)]
struct Conn {
    handler: Handler,
    client: SocketAddr,
    contain: Containment,
    active: Arc<AtomicUsize>,
}

/// `?dns=` of a GET.
#[derive(serde::Deserialize)]
struct GetQuery {
    dns: Option<String>,
}

/// Serves DoH on one (TLS) connection until the client closes it, it idles for `idle`, or
/// `stop` fires.
pub async fn connection<S>(
    io: S,
    client: SocketAddr,
    (handler, contain): (Handler, Containment),
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let state = Conn {
        handler,
        client,
        contain,
        active: active.clone(),
    };
    let app = Router::new()
        .route(PATH, get(get_query).post(post_query))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE))
        .with_state(state);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    let io = Activity {
        inner: io,
        start,
        last: last.clone(),
    };
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let tick = (idle / 4).max(Duration::from_millis(50));
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "DoH connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick), if !closing => {
                let quiet = start.elapsed().as_millis() as u64 - last.load(Ordering::Relaxed);
                if active.load(Ordering::Relaxed) == 0 && quiet >= idle.as_millis() as u64 {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

async fn get_query(State(c): State<Conn>, Query(q): Query<GetQuery>) -> Response {
    let Some(dns) = q.dns else {
        return bad("missing ?dns= (a base64url DNS message)");
    };
    // RFC 8484 §4.1: base64url without padding; padding is tolerated.
    let msg =
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(dns.trim_end_matches('=')) {
            Ok(m) => m,
            Err(_) => return bad("?dns= is not base64url"),
        };
    answer(&c, msg).await
}

async fn post_query(State(c): State<Conn>, headers: HeaderMap, body: Bytes) -> Response {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if media.as_deref() != Some(DNS_MESSAGE) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/dns-message\n",
        )
            .into_response();
    }
    answer(&c, body.to_vec()).await
}

/// Runs one DNS message through the pipeline.
async fn answer(c: &Conn, msg: Vec<u8>) -> Response {
    if msg.len() < 12 {
        return bad("the DNS message is shorter than a header");
    }
    c.active.fetch_add(1, Ordering::Relaxed);
    let _done = Done(c.active.clone());
    let fut = c.handler.0.answer(&msg, c.client, true, false);
    let reply = match c.contain.run_async(Where::Tcp, fut).await {
        Some(r) => r,
        None => servfail(&msg),
    };
    let Some(reply) = reply else {
        // The pipeline answers nothing (not a query, or a rate limit that drops).
        return bad("not a DNS query");
    };
    let mut resp = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(DNS_MESSAGE))],
        reply.clone(),
    )
        .into_response();
    if let Some(ttl) = min_ttl(&reply)
        && let Ok(v) = HeaderValue::from_str(&format!("max-age={ttl}"))
    {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// A 400 with a one-line reason.
fn bad(reason: &'static str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
}

/// The smallest TTL of the answer's records (RFC 8484 §5.1), the SOA's for a negative answer;
/// `None` when it has none (then no freshness is announced).
fn min_ttl(reply: &[u8]) -> Option<u32> {
    let m = hickory_proto::op::Message::from_vec(reply).ok()?;
    m.answers
        .iter()
        .chain(m.authorities.iter())
        .map(|r| r.ttl)
        .min()
}

/// Decrements the in-flight count when a request ends (also when it is dropped).
struct Done(Arc<AtomicUsize>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that records when bytes last moved (milliseconds since `start`).
struct Activity<S> {
    inner: S,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Activity<S> {
    fn touch(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
