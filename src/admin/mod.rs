//! The admin HTTP server (`[admin] listen`, default `127.0.0.1:9153`):
//!
//! | endpoint | what | access |
//! |---|---|---|
//! | `GET /metrics` | Prometheus text format | open |
//! | `GET /healthz` | the process is alive | open |
//! | `GET /readyz` | listeners serving, snapshot loaded, upstreams answering (503 otherwise); a `warning` while serving on stale lists | open |
//! | `GET /api/stats?top=N` | totals, attempts, top names and clients, lists (JSON) | token if set |
//! | `GET /api/explain?client=IP&name=NAME&type=A` | the explain trace (JSON) | token if set |
//! | `POST /api/reload` | the one reload path; `{"ok":true}` or the `file:line` errors | token, or loopback |
//! | `GET /`, `/login`, `/logout` | the dashboard ([`dashboard`]) | as the reads, or a session |
//!
//! Access: with `admin.trust_loopback` (default) a request from a loopback address needs no
//! token. Otherwise `POST /api/reload` needs `Authorization: Bearer <admin.token>` (401 without
//! it, 403 with a wrong one, 403 when no token is configured), and the `/api/*` reads need it or
//! `admin.read_token` when either is configured (they show query names and client pseudonyms). `/metrics` carries no
//! client data (closed label sets only) and stays open for Prometheus.
//!
//! The server starts before the first snapshot is built, so `/readyz` answers 503 ("starting")
//! while lists load; the state is filled in by `app` as start-up proceeds. Reload is a callback
//! handed in by `app`, so this module does not reach up into the wiring. Counters are read
//! through the recorder only ([`stats`] builds the `/api/stats` document); the pipeline is held
//! for the running snapshot and `/api/explain`.

mod access;
pub mod dashboard;
pub mod stats;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::future::BoxFuture;
use hickory_proto::rr::RecordType;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::AdminConfig;
use crate::lists::StaleList;
use crate::pipeline::{Pipeline, scope};
use crate::record::NotReady;
use access::authorize;

/// Runs the one reload path.
pub type ReloadFn =
    Arc<dyn Fn() -> BoxFuture<'static, Result<(), crate::command::ReloadError>> + Send + Sync>;
/// Called before `/metrics` and `/api/stats` render (to sync state kept elsewhere).
pub type ScrapeHook = Arc<dyn Fn() + Send + Sync>;
/// The remote lists served from a disk copy no download has confirmed yet (for `/readyz`).
pub type StaleListsFn = Arc<dyn Fn() -> Vec<StaleList> + Send + Sync>;

/// Most top names / clients `/api/stats` returns per list.
pub const MAX_TOP: usize = crate::record::TOP_CAPACITY;
/// Default number of top names / clients in `/api/stats`.
pub const DEFAULT_TOP: usize = 10;

/// What the handlers read; filled in as start-up proceeds.
pub struct AdminState {
    initial: AdminConfig,
    pipeline: OnceLock<Arc<Pipeline>>,
    serving: AtomicBool,
    reload: OnceLock<ReloadFn>,
    on_scrape: OnceLock<ScrapeHook>,
    stale_lists: OnceLock<StaleListsFn>,
    dash: dashboard::Dash,
}

impl AdminState {
    /// State before the first snapshot exists; `initial` governs access until then.
    pub fn new(initial: AdminConfig) -> Arc<Self> {
        Arc::new(Self {
            initial,
            pipeline: OnceLock::new(),
            serving: AtomicBool::new(false),
            reload: OnceLock::new(),
            on_scrape: OnceLock::new(),
            stale_lists: OnceLock::new(),
            dash: dashboard::Dash::default(),
        })
    }

    /// The first snapshot is loaded.
    pub fn set_pipeline(&self, p: Arc<Pipeline>) {
        let _ = self.pipeline.set(p);
    }

    /// The DNS listeners are serving (or, `false`, shutting down).
    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Relaxed);
    }

    /// The reload path.
    pub fn set_reload(&self, f: ReloadFn) {
        let _ = self.reload.set(f);
    }

    /// A hook run before metrics render.
    pub fn set_scrape_hook(&self, f: ScrapeHook) {
        let _ = self.on_scrape.set(f);
    }

    /// Where `/readyz` reads the lists served from a stale disk copy.
    pub fn set_stale_lists(&self, f: StaleListsFn) {
        let _ = self.stale_lists.set(f);
    }

    fn stale_lists(&self) -> Vec<StaleList> {
        self.stale_lists.get().map(|f| f()).unwrap_or_default()
    }

    /// The admin config in force: the running snapshot's (so a reload can change the token).
    fn config(&self) -> AdminConfig {
        match self.pipeline.get() {
            Some(p) => p.snapshot.load().config.admin.clone(),
            None => self.initial.clone(),
        }
    }

    /// `Ok` when ready to serve, else why not.
    pub fn ready(&self) -> Result<(), NotReady> {
        let Some(p) = self.pipeline.get() else {
            return Err(NotReady::Starting);
        };
        if !self.serving.load(Ordering::Relaxed) {
            return Err(NotReady::NotServing);
        }
        p.recorder.upstream_health().ready()
    }

    fn scrape_hook(&self) {
        if let Some(h) = self.on_scrape.get() {
            h();
        }
    }
}

/// A running admin server.
pub struct Admin {
    /// The bound address (port resolved when 0 was asked for).
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    sampler: tokio::task::JoinHandle<()>,
    state: Arc<AdminState>,
}

impl Admin {
    /// Binds `addr` (before anything else starts, like the DNS listeners).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    /// Serves the admin endpoints on a bound listener.
    pub fn serve(listener: TcpListener, state: Arc<AdminState>) -> std::io::Result<Admin> {
        let addr = listener.local_addr()?;
        let app = router(state.clone());
        let sampler = tokio::spawn(dashboard::sampler(state.clone()));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let svc = app.into_make_service_with_connect_info::<SocketAddr>();
            let r = axum::serve(listener, svc)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = r {
                tracing::warn!("admin server stopped: {e}");
            }
        });
        Ok(Admin {
            addr,
            stop: Some(stop),
            task,
            sampler,
            state,
        })
    }

    /// Stops accepting and waits (at most `grace`) for open requests.
    pub async fn shutdown(mut self, grace: Duration) {
        self.sampler.abort();
        dashboard::flush(&self.state);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/stats", get(stats))
        .route("/api/explain", get(explain))
        .route("/api/reload", post(reload))
        .merge(dashboard::routes())
        .fallback(not_found)
        .with_state(state)
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn starting() -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "starting: the first snapshot is loading"}),
    )
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": "not found; endpoints: / (dashboard) /login /metrics /healthz /readyz /api/stats /api/explain /api/reload"}),
    )
}

async fn metrics(State(st): State<Arc<AdminState>>) -> Response {
    let Some(p) = st.pipeline.get() else {
        return starting();
    };
    st.scrape_hook();
    p.recorder.refresh_exceptions();
    let m = p.recorder.metrics();
    m.cache_entries
        .set(i64::try_from(p.recorder.cache_entries()).unwrap_or(i64::MAX));
    let mut r = m.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`. Serving on stale lists (a disk copy while the first download is pending or
/// failing) is ready, with a `warning`: the replica filters correctly from a good copy, and a
/// readiness probe that pulled it out of service for a slow list server would take DNS away from
/// every client (with one replica) to protect nobody. Stale lists are for alerts (list age), not
/// for load balancing.
async fn readyz(State(st): State<Arc<AdminState>>) -> Response {
    let stale = st.stale_lists();
    let mut v = match st.ready() {
        Ok(()) => json!({"ready": true}),
        Err(reason) => json!({"ready": false, "reason": reason.to_string()}),
    };
    if !stale.is_empty() {
        let lists: Vec<String> = stale.iter().map(ToString::to_string).collect();
        v["warning"] = json!(format!("serving on stale lists: {}", lists.join("; ")));
        v["stale_lists"] = json!(stale);
    }
    let status = if v["ready"] == true {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, v)
}

/// What every read endpoint of the API starts with: the caller is authorised (the response
/// to send otherwise) and the pipeline is up (503 "starting" otherwise).
fn gate<'a>(
    st: &'a AdminState,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<&'a Arc<Pipeline>, Box<Response>> {
    authorize(&st.config(), peer, headers, false)?;
    st.pipeline.get().ok_or_else(|| Box::new(starting()))
}

async fn stats(
    State(st): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match gate(&st, peer.ip(), &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let top = match q.get("top").map(|t| t.parse::<usize>()) {
        None => DEFAULT_TOP,
        Some(Ok(n)) if (1..=MAX_TOP).contains(&n) => n,
        Some(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("top: expected a number from 1 to {MAX_TOP}")}),
            );
        }
    };
    st.scrape_hook();
    let snap = p.snapshot.load();
    let v = stats::document(&p.recorder, &scope(&snap), top);
    json_response(StatusCode::OK, v)
}

async fn explain(
    State(st): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match gate(&st, peer.ip(), &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let bad = |m: String| json_response(StatusCode::BAD_REQUEST, json!({ "error": m }));
    let Some(client) = q.get("client") else {
        return bad("client: missing; expected ?client=IP&name=NAME[&type=A]".into());
    };
    let Ok(client) = client.parse::<IpAddr>() else {
        return bad(format!("client: {client:?} is not an IP address"));
    };
    let Some(name) = q.get("name").filter(|n| !n.is_empty()) else {
        return bad("name: missing; expected ?client=IP&name=NAME[&type=A]".into());
    };
    if name.len() > 254 || hickory_proto::rr::Name::from_ascii(name).is_err() {
        return bad(format!("name: {name:?} is not a domain name"));
    }
    let qtype = q.get("type").map_or("A", String::as_str);
    let Ok(qtype) = RecordType::from_str(&qtype.to_ascii_uppercase()) else {
        return bad(format!("type: unknown query type {qtype:?}"));
    };
    let resolve = q
        .get("resolve")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let Ok(qn) = hickory_proto::rr::Name::from_ascii(format!("{lower}.")) else {
        return bad(format!("name: {name:?} is not a domain name"));
    };
    // The real chain, on the daemon's own state (cache, rate-limit buckets), without side effects.
    let ex = p.explain(client, &qn, qtype, resolve).await;
    let snap = p.snapshot.load_full();
    // Rendering reads list files for line numbers: keep that off the async workers.
    match tokio::task::spawn_blocking(move || {
        crate::explain::render(&snap, &ex, client, &lower, qtype, resolve).json
    })
    .await
    {
        Ok(v) => json_response(StatusCode::OK, v),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": e.to_string()}),
        ),
    }
}

async fn reload(
    State(st): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&st.config(), peer.ip(), &headers, true) {
        return *r;
    }
    let Some(f) = st.reload.get() else {
        return starting();
    };
    match f().await {
        Ok(()) => {
            tracing::info!(peer = %peer.ip(), "reloaded (admin API)");
            json_response(StatusCode::OK, json!({"ok": true}))
        }
        Err(e) => {
            tracing::error!("reload failed (admin API), keeping the running config:\n{e}");
            let errors = e.messages();
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"ok": false, "errors": errors}),
            )
        }
    }
}
