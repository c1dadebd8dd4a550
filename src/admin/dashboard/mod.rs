//! The built-in dashboard on the admin server: routes, access and the sampler.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /?period=1h\|24h\|7d` | the overview page (HTML, works without JavaScript) |
//! | `GET /login`, `POST /login` | the sign-in form; a good token sets the session cookie |
//! | `POST /logout` | ends the session |
//! | `GET /dashboard.css`, `/dashboard.js`, `/favicon.svg` | the embedded style, refresh script, icon |
//!
//! Access to `/` is that of the `/api/*` reads (trusted loopback, `admin.token` or
//! `admin.read_token` as `Authorization: Bearer`) or a live session cookie from `POST /login`;
//! without any, a browser is sent to `/login`. Every response carries a strict CSP.
//!
//! The page's figures come from [`series`], filled by sampling the recorder's counters once a
//! minute (and once more when a page renders, so the page equals `/metrics` at that moment);
//! with `[admin] prometheus` they come from Prometheus instead ([`prom`]). The series are saved
//! to `state_dir` at most once a minute and read back before the first sample.

pub mod chart;
pub mod prom;
pub mod render;
pub mod series;
pub mod session;
pub mod view;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{AdminState, authorize, starting};
use crate::pipeline::Pipeline;
use crate::record::unix_now;
use series::{Period, Series};
use session::{Sessions, same};

/// The page's Content-Security-Policy: nothing from anywhere but this server.
pub const CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// How often the sampler reads the counters and (when they changed) saves the series.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(60);

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");
const ICON: &str = include_str!("assets/favicon.svg");

/// The dashboard's state inside [`AdminState`].
#[derive(Debug, Default)]
pub struct Dash {
    series: Mutex<Held>,
    /// Signed-in browsers.
    pub sessions: Sessions,
    warned_save: AtomicBool,
}

#[derive(Debug, Default)]
struct Held {
    series: Series,
    loaded: bool,
    dirty: bool,
}

impl Dash {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the recorder's counters into the series at `now` (loading the saved series from
    /// `state_dir` first, once). Returns the series rows held.
    pub fn sample(&self, p: &Pipeline, now: u64) -> usize {
        let counters = view::counters(p.recorder.metrics());
        let dir = p.snapshot.load().config.state_dir.clone();
        let mut h = self.held();
        if !h.loaded {
            h.loaded = true;
            match Series::load(&dir) {
                Ok(s) => h.series = s,
                Err(e) => tracing::warn!("dashboard: ignoring the saved series: {e}"),
            }
        }
        let before = h.series.len();
        h.series.sample(now, &counters);
        h.dirty |= !counters.is_empty() || h.series.len() != before;
        h.series.len()
    }

    /// The period's window from memory.
    fn window(&self, period: Period, now: u64) -> series::Window {
        self.held().series.window(period, now)
    }

    /// Saves the series to `dir` when they changed since the last save; a failure is logged
    /// (once) and never stops anything.
    pub fn save(&self, dir: &Path) {
        let mut h = self.held();
        if !h.dirty || !h.loaded {
            return;
        }
        h.dirty = false;
        if let Err(e) = h.series.save(dir)
            && !self.warned_save.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "dashboard: cannot save the series to {}: {e}",
                dir.display()
            );
        }
    }
}

/// Samples once a minute and saves; runs until aborted.
pub async fn sampler(st: Arc<AdminState>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(p) = st.pipeline.get() {
            st.dash.sample(p, unix_now());
            st.dash.save(&p.snapshot.load().config.state_dir);
        }
    }
}

/// The last sample and save, at shutdown.
pub fn flush(st: &AdminState) {
    if let Some(p) = st.pipeline.get() {
        st.dash.sample(p, unix_now());
        st.dash.save(&p.snapshot.load().config.state_dir);
    }
}

/// The dashboard's routes.
pub fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/dashboard.css", get(css))
        .route("/dashboard.js", get(js))
        .route("/favicon.svg", get(icon))
}

/// Security headers every dashboard response carries.
fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    harden(r)
}

fn redirect(to: &'static str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    harden(r)
}

async fn overview(
    State(st): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !st.dash.sessions.valid(&headers)
        && let Err(r) = authorize(&st.config(), peer.ip(), &headers, false)
    {
        // A browser without a bearer header signs in; an API client gets the refusal.
        return if headers.contains_key(header::AUTHORIZATION) {
            harden(*r)
        } else {
            redirect("/login", None)
        };
    }
    let Some(p) = st.pipeline.get() else {
        return harden(starting());
    };
    let period = Period::parse(q.get("period").map(String::as_str));
    let now = unix_now();
    let rows = st.dash.sample(p, now);
    let local = || st.dash.window(period, now);
    let (window, source, bypass) = match st.config().prometheus {
        None => (local(), view::Source::Local, None),
        Some(u) => {
            let got = match prom::window(&u, period, now).await {
                Ok(w) => prom::bypass(&u).await.map(|b| (w, b)),
                Err(e) => Err(e),
            };
            match got {
                Ok((w, b)) => (w, view::Source::Prometheus(u.to_string()), Some(b)),
                Err(e) => {
                    tracing::warn!("dashboard: Prometheus: {e}");
                    (
                        local(),
                        view::Source::PrometheusFailed(u.to_string(), e),
                        None,
                    )
                }
            }
        }
    };
    let mut v = view::gather(p, period, window, source, rows);
    if let Some(b) = bypass {
        v.bypass = b;
    }
    html(StatusCode::OK, render::overview(&v))
}

async fn login_form() -> Response {
    html(StatusCode::OK, render::login(None))
}

async fn login(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let cfg = st.config();
    let given = session::form_token(&body).unwrap_or_default();
    let ok = [&cfg.token, &cfg.read_token]
        .into_iter()
        .flatten()
        .fold(false, |hit, t| same(given.as_bytes(), t.0.as_bytes()) | hit);
    if !ok {
        let why = if cfg.token.is_none() && cfg.read_token.is_none() {
            "No token is configured: set [admin] read_token, or open the dashboard from this machine."
        } else {
            "Wrong token."
        };
        return html(StatusCode::FORBIDDEN, render::login(Some(why)));
    }
    let id = st.dash.sessions.open();
    redirect("/", Some(session::set_cookie(&id)))
}

async fn logout(State(st): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    st.dash.sessions.close(&headers);
    redirect("/login", Some(session::clear_cookie()))
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    harden(r)
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

async fn icon() -> Response {
    asset(ICON, "image/svg+xml")
}
