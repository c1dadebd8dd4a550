//! The CSP report endpoint: a public HTTP(S) listener, separate from the admin server, that
//! takes Content-Security-Policy violation reports from visitors' browsers on
//! `POST /csp-report` and counts each blocked load by the catalogue's vendor.
//!
//! | answer | when |
//! |---|---|
//! | 204 | a report taken (counted, including reports naming hosts outside the catalogue) |
//! | 400 | a body that is not a CSP report, or a media type that cannot hold one |
//! | 204 | `OPTIONS`: the CORS preflight of the Reporting API |
//! | 404 / 405 | another path / method |
//! | 413 | a body over `max_body` (default 64 KiB) |
//! | 429 | past the per-source rate |
//!
//! No answer carries a body (no error detail for the public). Privacy: the visitor's address is
//! used only as the key of an in-memory rate bucket (the shared [`RateLimiter`], bounded), never
//! logged or counted; document URLs lose their query strings at parsing and only the host
//! becomes a label (`site`, from the configured closed set, else `other`), so the metrics never
//! carry a personal detail. A blocked inline script counts under a vendor when its sample shows a known snippet
//! ([`INLINE_MARKERS`]), else under `inline`. The parsing lives in `parse`, the optional TLS
//! listener in `tls`.

pub mod parse;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prometheus::IntCounterVec;

use crate::audit::classify::Known;
use crate::config::CspReportsConfig;
use crate::lists::catalogue::Category;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use parse::{Blocked, Violation};

/// Blocked loads reported by browsers (enforced policies), by site, vendor and category.
pub const CSP_BLOCKED_TOTAL: &str = "pixelguard_csp_blocked_total";
/// Loads a Report-Only policy would have blocked, by site, vendor and category.
pub const CSP_WOULD_BLOCK_TOTAL: &str = "pixelguard_csp_would_block_total";
/// Reports refused, by reason (`too_large`, `rate_limited`, `unparseable`, `media_type`).
pub const CSP_REPORTS_REJECTED_TOTAL: &str = "pixelguard_csp_reports_rejected_total";
/// The reasons of [`CSP_REPORTS_REJECTED_TOTAL`], pre-registered at zero.
pub const REJECT_REASONS: [&str; 4] = ["too_large", "rate_limited", "unparseable", "media_type"];
/// The path browsers post to.
pub const REPORT_PATH: &str = "/csp-report";
/// Markers of tracker snippets within the first 40 characters of their inline script (what a
/// browser sends as the sample of a blocked inline script under `'report-sample'`), with the
/// catalogue vendor and category they count under. Anything else inline counts as `inline`.
pub const INLINE_MARKERS: [(&str, &str, &str); 8] = [
    ("fbq", "meta", "advertising"),
    ("w[l]=w[l]||[]", "google", "tag_manager"),
    ("gtag(", "google", "analytics"),
    ("_linkedin", "linkedin", "advertising"),
    ("lintrk", "linkedin", "advertising"),
    ("ttq", "tiktok", "advertising"),
    ("_hjSettings", "hotjar", "session_replay"),
    ("clarity", "microsoft", "session_replay"),
];
/// Most source addresses with a rate bucket.
const MAX_SOURCES: usize = 100_000;

/// The endpoint's counters.
#[derive(Clone)]
struct Counters {
    blocked: IntCounterVec,
    would_block: IntCounterVec,
    rejected: IntCounterVec,
}

impl Counters {
    fn new(m: &Metrics) -> Result<Counters, String> {
        let vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(prometheus::Opts::new(name, help), labels)
                .map_err(|e| e.to_string())?;
            // A second endpoint on the same registry (tests) shares the first one's families.
            match m.registry().register(Box::new(c.clone())) {
                Ok(()) => Ok(c),
                Err(prometheus::Error::AlreadyReg) => Err(format!("{name} registered twice")),
                Err(e) => Err(e.to_string()),
            }
        };
        let c = Counters {
            blocked: vec(
                CSP_BLOCKED_TOTAL,
                "Loads blocked by the website's Content-Security-Policy, as reported by visitors' browsers, by site, vendor and category.",
                &["site", "vendor", "category"],
            )?,
            would_block: vec(
                CSP_WOULD_BLOCK_TOTAL,
                "Loads a Report-Only Content-Security-Policy would block, by site, vendor and category.",
                &["site", "vendor", "category"],
            )?,
            rejected: vec(
                CSP_REPORTS_REJECTED_TOTAL,
                "CSP reports refused, by reason.",
                &["reason"],
            )?,
        };
        for r in REJECT_REASONS {
            c.rejected.with_label_values(&[r]);
        }
        Ok(c)
    }
}

struct Shared {
    cfg: CspReportsConfig,
    known: Known,
    limiter: RateLimiter,
    counters: Counters,
}

/// A running endpoint.
pub struct CspReports {
    /// The bound address.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl CspReports {
    /// Binds `cfg.listen` (with TLS when configured) and serves until [`CspReports::shutdown`].
    pub async fn serve(cfg: &CspReportsConfig, metrics: &Metrics) -> Result<CspReports, String> {
        let known = Known::builtin().map_err(|e| format!("the tracker catalogue: {e}"))?;
        let counters = Counters::new(metrics)?;
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            known,
            limiter: RateLimiter::new(MAX_SOURCES),
            counters,
        });
        let app = Router::new()
            .route(REPORT_PATH, post(report).options(preflight))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .with_state(shared);
        let svc = app.into_make_service_with_connect_info::<Peer>();
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("csp_reports: cannot listen on {}: {e}", cfg.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("csp_reports: {e}"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = async move {
            let _ = stopped.await;
        };
        let task = match &cfg.tls {
            None => tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, svc)
                    .with_graceful_shutdown(done)
                    .await
                {
                    tracing::error!("csp_reports: server stopped: {e}");
                }
            }),
            Some((cert, key)) => {
                let tls = tls::TlsListener::new(listener, cert, key)?;
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(tls, svc).with_graceful_shutdown(done).await {
                        tracing::error!("csp_reports: server stopped: {e}");
                    }
                })
            }
        };
        Ok(CspReports { addr, stop, task })
    }

    /// Stops accepting; waits at most `within` for requests in flight.
    pub async fn shutdown(self, within: Duration) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(within, self.task).await;
    }
}

/// The source address of a connection, plain or TLS (the rate bucket's key; never stored).
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}

fn reject(s: &Shared, status: StatusCode, reason: &'static str) -> Response {
    s.counters.rejected.with_label_values(&[reason]).inc();
    status.into_response()
}

/// `POST /csp-report`.
async fn report(
    State(s): State<Arc<Shared>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !s
        .limiter
        .allow(peer.ip(), s.cfg.rate, s.cfg.burst, Instant::now())
    {
        return reject(&s, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    let ty = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(
        ty.as_str(),
        "application/csp-report" | "application/reports+json" | "application/json"
    ) {
        return reject(&s, StatusCode::BAD_REQUEST, "media_type");
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.cfg.max_body as u64) {
        return reject(&s, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    }
    let Ok(bytes) = axum::body::to_bytes(body, s.cfg.max_body).await else {
        return reject(&s, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    };
    let Ok(violations) = parse::parse(&bytes) else {
        return reject(&s, StatusCode::BAD_REQUEST, "unparseable");
    };
    for v in &violations {
        count(&s, v);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
    )
        .into_response()
}

/// `OPTIONS /csp-report`: the CORS preflight the Reporting API sends before posting
/// `application/reports+json` to another origin. Any origin may post reports (they are counted,
/// never echoed).
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// The labels of one violation: site (configured name or `other`), vendor, category.
fn labels<'a>(s: &'a Shared, v: &Violation) -> (&'a str, String, &'static str) {
    let site = v
        .site
        .as_deref()
        .and_then(|h| s.cfg.sites.iter().find(|x| x.as_str() == h))
        .map_or("other", String::as_str);
    let (vendor, category) = match &v.blocked {
        Blocked::Host(h) => match s.known.lookup(h) {
            Some(i) if i.category != Category::DoNotBlock => {
                (i.vendor_id.to_owned(), i.category.as_str())
            }
            _ => ("other".to_owned(), "other"),
        },
        Blocked::Inline => INLINE_MARKERS
            .iter()
            .find(|(m, _, _)| v.sample.contains(m))
            .map_or(("inline".to_owned(), "inline"), |(_, vendor, category)| {
                ((*vendor).to_owned(), *category)
            }),
        Blocked::Eval => ("inline".to_owned(), "inline"),
        Blocked::Other => ("other".to_owned(), "other"),
    };
    (site, vendor, category)
}

fn count(s: &Shared, v: &Violation) {
    let (site, vendor, category) = labels(s, v);
    let c = if v.report_only {
        &s.counters.would_block
    } else {
        &s.counters.blocked
    };
    c.with_label_values(&[site, vendor.as_str(), category])
        .inc();
    let blocked = match &v.blocked {
        Blocked::Host(h) => h.as_str(),
        Blocked::Inline => "inline",
        Blocked::Eval => "eval",
        Blocked::Other => "other",
    };
    tracing::debug!(
        site,
        path = %v.path,
        vendor = %vendor,
        category,
        blocked,
        directive = %v.directive,
        report_only = v.report_only,
        "csp report"
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn inline_markers_name_catalogue_vendors_and_categories() {
        let cat = crate::lists::catalogue::Catalogue::builtin().unwrap();
        for (_, vendor, category) in INLINE_MARKERS {
            let v = cat.vendors.iter().find(|v| v.id == vendor);
            let v = v.unwrap_or_else(|| panic!("{vendor} not in the catalogue"));
            assert!(
                v.categories.iter().any(|c| c.category.as_str() == category),
                "{vendor} has no category {category}"
            );
        }
    }
}
