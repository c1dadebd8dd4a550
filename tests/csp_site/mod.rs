//! The CSP tests' fixture website (tests/data/csp/site) on 127.0.0.1, and running the
//! pixelguard binary. The site can switch its reporting page to a second version (a TikTok
//! pixel added: the baseline test) and serve each page with a Content-Security-Policy header
//! (the browser tests).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The pages of the fixture site.
pub const PAGES: [&str; 4] = ["/", "/report-a-crime.html", "/news.html", "/careers.html"];
/// The Meta Pixel ID on the reporting page.
pub const META_ID: &str = "1234567890123456";
/// The TikTok pixel ID that version 2 of the reporting page adds.
pub const TIKTOK_ID: &str = "CABCDEFGHIJ1234567890";

pub fn site_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/csp/site")
}

#[derive(Default)]
pub struct SiteState {
    /// Serve report-a-crime.v2.html for /report-a-crime.html.
    pub v2: AtomicBool,
    /// Header name and value per path (a Content-Security-Policy, a Reporting-Endpoints, ...).
    pub headers: Mutex<BTreeMap<String, Vec<(String, String)>>>,
}

pub struct Site {
    pub base: String,
    pub addr: SocketAddr,
    pub state: Arc<SiteState>,
    _task: tokio::task::JoinHandle<()>,
}

impl Site {
    /// Sets the extra headers of `path`.
    pub fn set_headers(&self, path: &str, headers: Vec<(String, String)>) {
        self.state
            .headers
            .lock()
            .unwrap()
            .insert(path.to_owned(), headers);
    }

    /// Drops every extra header.
    pub fn clear_headers(&self) {
        self.state.headers.lock().unwrap().clear();
    }
}

async fn file(State(st): State<Arc<SiteState>>, uri: Uri) -> Response {
    let path = uri.path();
    let mut name = path.trim_start_matches('/');
    if name.is_empty() {
        name = "index.html";
    }
    if name == "report-a-crime.html" && st.v2.load(Ordering::SeqCst) {
        name = "report-a-crime.v2.html";
    }
    let ty = if name.ends_with(".html") {
        "text/html; charset=utf-8"
    } else if name.ends_with(".js") {
        "text/javascript"
    } else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if name.contains('/') || name.contains("..") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let Ok(text) = std::fs::read_to_string(site_dir().join(name)) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut resp = ([(header::CONTENT_TYPE, ty)], text).into_response();
    if let Some(list) = st.headers.lock().unwrap().get(path) {
        for (k, v) in list {
            resp.headers_mut().insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
    }
    resp
}

pub async fn start_site() -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let state = Arc::new(SiteState::default());
    let app = Router::new().fallback(get(file)).with_state(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Site {
        base: format!("http://{addr}"),
        addr,
        state,
        _task: task,
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the pixelguard binary with `args`.
pub async fn pixelguard(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixelguard"))
            .args(&args)
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// A config with no upstream traffic needed (uncloaking is off in these audits).
pub fn config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pixelguard.toml"),
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstream]\nservers = [\"127.0.0.1:9\"]\n\n\
         [lists.trackers]\nsource = \"builtin:trackers\"\n\n\
         [zones.staff]\nnetworks = [\"10.10.0.0/16\"]\nblock = [\"trackers\"]\n",
    )
    .unwrap();
    dir
}

/// `pixelguard --config CFG audit SITE/ --no-uncloak --delay 0s --timeout 5s EXTRA...`.
pub async fn audit(site: &Site, cfg: &tempfile::TempDir, extra: &[&str]) -> Run {
    let mut a: Vec<String> = vec![
        "--config".into(),
        cfg.path().join("pixelguard.toml").display().to_string(),
        "audit".into(),
        format!("{}/", site.base),
        "--no-uncloak".into(),
        "--delay".into(),
        "0s".into(),
        "--timeout".into(),
        "5s".into(),
    ];
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    pixelguard(a).await
}
