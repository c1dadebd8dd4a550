//! List supply and reload tests: remote lists served by a local HTTP server on 127.0.0.1 that
//! can be switched to 304, 500, a hang, an empty, truncated or huge body, or a list that shrank;
//! a listed name must stay blocked before, during and after every failure. Also: start-up from
//! the disk copy with no network, strict_start, the refresh timer, and reloads under query load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use pixelguard::app::{App, ConfigSource, StartError};
use pixelguard::config::Overrides;
use support::{AuthServer, QueryOpts, query};

#[derive(Clone, Debug)]
enum Mode {
    Ok(String),
    Status500,
    Hang,
    Empty,
    Truncated(String),
    Huge,
}

#[derive(Clone)]
struct ListServer {
    mode: Arc<Mutex<Mode>>,
    requests: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

fn etag_of(body: &str) -> String {
    format!(
        "\"{:x}\"",
        body.len() * 31 + body.bytes().map(usize::from).sum::<usize>()
    )
}

async fn serve_list(State(s): State<ListServer>, headers: HeaderMap) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    // Hang: no answer until the test switches the mode (then that mode is served), at most 30 s.
    support::wait_until(Duration::from_secs(30), || {
        !matches!(*s.mode.lock().unwrap(), Mode::Hang)
    })
    .await;
    let mode = s.mode.lock().unwrap().clone();
    match mode {
        Mode::Ok(body) => {
            let tag = etag_of(&body);
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some(tag.as_str())
            {
                s.not_modified.fetch_add(1, Ordering::SeqCst);
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
            }
            ([(header::ETAG, tag)], body).into_response()
        }
        Mode::Status500 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Hang => StatusCode::OK.into_response(),
        Mode::Empty => (StatusCode::OK, "").into_response(),
        Mode::Truncated(body) => {
            // Announce more than is sent, then end the body: the client sees an incomplete body.
            let stream =
                futures_util::stream::iter(vec![Ok::<_, std::io::Error>(body.into_bytes())]);
            Response::builder()
                .header(header::CONTENT_LENGTH, "1000000")
                .body(axum::body::Body::from_stream(stream))
                .unwrap()
        }
        Mode::Huge => (StatusCode::OK, "a.example\n".repeat(20_000)).into_response(),
    }
}

async fn start_list_server(mode: Mode) -> (ListServer, SocketAddr) {
    let s = ListServer {
        mode: Arc::new(Mutex::new(mode)),
        requests: Arc::default(),
        not_modified: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/list.txt", axum::routing::get(serve_list))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (s, addr)
}

fn list_body(n: usize, extra: &[&str]) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("t{i}.tracker.test\n"));
    }
    for e in extra {
        s.push_str(e);
        s.push('\n');
    }
    s
}

fn config(
    dir: &std::path::Path,
    upstream: SocketAddr,
    url: &str,
    extra: &str,
) -> std::path::PathBuf {
    let cfg = format!(
        "state_dir = \"state\"\n{extra}\n[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"{upstream}\"]\ntimeout = \"300ms\"\n[lists.remote]\nsource = \"{url}\"\nformat = \"domains\"\nallow_insecure = true\ntimeout = \"500ms\"\nmax_size = 100000\nrefresh = \"1h\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"remote\"]\n"
    );
    let p = dir.join("pixelguard.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

async fn rcode(addr: SocketAddr, name: &str) -> ResponseCode {
    query(addr, name, RecordType::A, &QueryOpts::default())
        .await
        .unwrap()
        .metadata
        .response_code
}

async fn start(path: &std::path::Path) -> Result<App, StartError> {
    App::start(ConfigSource {
        path: Some(path.to_path_buf()),
        overrides: Overrides::default(),
    })
    .await
}

#[tokio::test]
async fn failures_never_empty_the_filter() {
    let auth = AuthServer::start_test_zone();
    let (srv, http) = start_list_server(Mode::Ok(list_body(100, &["www.example.test"]))).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{http}/list.txt");
    let cfg = config(dir.path(), auth.addr(), &url, "");
    let app = start(&cfg).await.unwrap();
    let addr = app.addrs[0];
    assert_eq!(
        rcode(addr, "www.example.test.").await,
        ResponseCode::NXDomain,
        "blocked after the first download"
    );
    assert!(
        dir.path().join("state/lists/remote.list").exists(),
        "last good copy on disk"
    );
    let supply = app.reloader.supply().clone();
    let lc = app.pipeline.snapshot.load().config.lists["remote"].clone();

    // 304: the content stays.
    supply.update(&lc).await.unwrap();
    assert_eq!(
        srv.not_modified.load(Ordering::SeqCst),
        1,
        "conditional GET answered 304"
    );
    assert_eq!(
        rcode(addr, "www.example.test.").await,
        ResponseCode::NXDomain
    );

    let cases: Vec<(Mode, &str)> = vec![
        (Mode::Status500, "http_status"),
        (Mode::Hang, "timeout"),
        (Mode::Empty, "empty"),
        (Mode::Truncated("t1.tracker.test\n".into()), "network"),
        (Mode::Huge, "too_large"),
        (Mode::Ok(list_body(10, &[])), "shrunk"),
        (
            Mode::Ok("# nothing here\nnot a name!\n".into()),
            "too_few_entries",
        ),
    ];
    for (mode, reason) in cases {
        *srv.mode.lock().unwrap() = mode.clone();
        let t = Instant::now();
        let r = supply.update(&lc).await;
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{mode:?} bounded by the list timeout"
        );
        assert_eq!(r.map_err(|e| e.as_str()), Err(reason), "{mode:?}");
        app.reloader.rebuild().await.unwrap();
        assert_eq!(
            rcode(addr, "www.example.test.").await,
            ResponseCode::NXDomain,
            "still blocked after {mode:?}"
        );
        assert_eq!(
            rcode(addr, "t5.tracker.test.").await,
            ResponseCode::NXDomain
        );
    }
    let st = supply.status();
    assert_eq!(st[0].2.failures.values().sum::<u64>(), 7);
    assert!(!st[0].2.stale);

    // A good update replaces the content (and the disk copy).
    *srv.mode.lock().unwrap() = Mode::Ok(list_body(100, &["mail.example.test"]));
    assert_eq!(
        supply.update(&lc).await,
        Ok(pixelguard::lists::supply::Updated::Changed)
    );
    app.reloader.rebuild().await.unwrap();
    assert_eq!(
        rcode(addr, "mail.example.test.").await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        rcode(addr, "www.example.test.").await,
        ResponseCode::NoError
    );
    let copy = std::fs::read_to_string(dir.path().join("state/lists/remote.list")).unwrap();
    assert!(copy.contains("mail.example.test"));
    app.shutdown().await;
}

#[tokio::test]
async fn starts_from_the_disk_copy_without_network() {
    let auth = AuthServer::start_test_zone();
    let (_srv, http) = start_list_server(Mode::Ok(list_body(5, &["www.example.test"]))).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{http}/list.txt");
    let cfg = config(dir.path(), auth.addr(), &url, "");
    let app = start(&cfg).await.unwrap();
    app.shutdown().await;
    // `check` reports the remote list from its disk copy (it never downloads).
    let cfg2 = cfg.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pixelguard"))
            .arg("check")
            .arg("--config")
            .arg(&cfg2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("remote remote: http://")
            && text.contains("6 entries from the disk copy downloaded"),
        "{text}"
    );
    assert!(
        text.contains("stale until the daemon downloads it"),
        "{text}"
    );

    // Same list URL, but nothing answers there now (a closed loopback port).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = format!("http://{closed}/list.txt");
    let state = dir.path().join("state/lists/remote.meta.json");
    let meta = std::fs::read_to_string(&state)
        .unwrap()
        .replace(&url, &dead);
    std::fs::write(&state, meta).unwrap();
    let cfg = config(dir.path(), auth.addr(), &dead, "");
    let app = start(&cfg).await.unwrap();
    assert_eq!(
        rcode(app.addrs[0], "www.example.test.").await,
        ResponseCode::NXDomain,
        "filtering from the disk copy"
    );
    // The download runs in the background (start does not wait for a list that has a copy):
    // its failure is recorded shortly after start, and the copy stays in use, marked stale.
    assert!(
        support::wait_until(Duration::from_secs(5), || app.reloader.supply().status()[0]
            .2
            .last_failure
            .is_some())
        .await,
        "the failed download is recorded"
    );
    let st = app.reloader.supply().status();
    assert!(st[0].2.stale, "marked stale");
    assert!(st[0].2.last_failure.is_some());
    assert_eq!(
        rcode(app.addrs[0], "www.example.test.").await,
        ResponseCode::NXDomain,
        "still filtering from the disk copy after the failed download"
    );
    app.shutdown().await;

    // No copy and no network: starts with the other lists; strict_start refuses.
    let dir2 = tempfile::tempdir().unwrap();
    let cfg = config(dir2.path(), auth.addr(), &dead, "");
    let app = start(&cfg).await.unwrap();
    assert_eq!(
        rcode(app.addrs[0], "www.example.test.").await,
        ResponseCode::NoError
    );
    app.shutdown().await;
    let cfg = config(dir2.path(), auth.addr(), &dead, "strict_start = true");
    let err = start(&cfg).await.err().expect("strict_start refuses");
    assert!(err.to_string().contains("strict_start"), "{err}");
}

/// Issue 14: a list server that accepts the connection and never answers must not keep DNS down
/// at start when a good copy of the list is on disk. Prints the time to the first answer.
#[tokio::test]
async fn a_hanging_list_server_does_not_delay_the_first_answer() {
    let auth = AuthServer::start_test_zone();
    let (srv, http) = start_list_server(Mode::Ok(list_body(5, &["www.example.test"]))).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{http}/list.txt");
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"";
    let cfg = config(dir.path(), auth.addr(), &url, admin);
    let app = start(&cfg).await.unwrap();
    app.shutdown().await;
    assert!(dir.path().join("state/lists/remote.list").exists());

    // The list timeout (10 s) is far longer than the 2 s the first answer may take.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("timeout = \"500ms\"", "timeout = \"10s\"");
    std::fs::write(&cfg, text).unwrap();
    *srv.mode.lock().unwrap() = Mode::Hang;
    let requests = srv.requests.load(Ordering::SeqCst);
    let t0 = Instant::now();
    let app = start(&cfg).await.unwrap();
    let addr = app.addrs[0];
    let first = loop {
        let r = query(
            addr,
            "www.example.test.",
            RecordType::A,
            &QueryOpts {
                timeout: Duration::from_millis(200),
                ..Default::default()
            },
        )
        .await;
        if let Ok(m) = r {
            break m.metadata.response_code;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no answer at all");
    };
    let took = t0.elapsed();
    println!("time to first answer with a hanging list source: {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "first answer {took:?} after start"
    );
    assert_eq!(first, ResponseCode::NXDomain, "blocked from the disk copy");

    // /readyz: ready (it filters from a good copy), with a warning naming the stale list.
    let readyz = format!("http://{}/readyz", app.admin_addr.unwrap());
    let r = reqwest::get(&readyz).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["ready"], true, "{v}");
    let warning = v["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("serving on stale lists"), "{v}");
    assert!(warning.contains("remote"), "{v}");
    assert_eq!(v["stale_lists"][0]["list"], "remote", "{v}");
    assert_eq!(v["stale_lists"][0]["pending"], true, "{v}");
    assert!(v["stale_lists"][0]["age_seconds"].is_u64(), "{v}");
    assert!(
        support::wait_until(Duration::from_secs(5), || srv
            .requests
            .load(Ordering::SeqCst)
            != requests)
        .await,
        "no download started"
    );

    // The server answers: the new download is swapped in.
    *srv.mode.lock().unwrap() = Mode::Ok(list_body(5, &["www.example.test", "mail.example.test"]));
    support::poll_until(
        Duration::from_secs(15),
        "the download was not applied",
        || async { rcode(addr, "mail.example.test.").await == ResponseCode::NXDomain },
    )
    .await;
    assert_eq!(
        rcode(addr, "www.example.test.").await,
        ResponseCode::NXDomain
    );
    let body = reqwest::get(&readyz).await.unwrap().text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], true, "{v}");
    assert!(v.get("warning").is_none(), "fresh again: {v}");
    app.shutdown().await;

    // strict_start does not wait for a hanging download either when the list has a copy.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "state_dir = \"state\"",
        "state_dir = \"state\"\nstrict_start = true",
    );
    std::fs::write(&cfg, text).unwrap();
    *srv.mode.lock().unwrap() = Mode::Hang;
    let t0 = Instant::now();
    let app = start(&cfg).await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "strict_start took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        rcode(app.addrs[0], "mail.example.test.").await,
        ResponseCode::NXDomain,
        "blocked from the new disk copy"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_refresh_timer_brings_new_content() {
    let auth = AuthServer::start_test_zone();
    let (srv, http) = start_list_server(Mode::Ok(list_body(5, &["www.example.test"]))).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        auth.addr(),
        &format!("http://{http}/list.txt"),
        "",
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("refresh = \"1h\"", "refresh = \"1s\"");
    std::fs::write(&cfg, text).unwrap();
    let app = start(&cfg).await.unwrap();
    *srv.mode.lock().unwrap() = Mode::Ok(list_body(5, &["www.example.test", "mail.example.test"]));
    let t = Instant::now();
    while rcode(app.addrs[0], "mail.example.test.").await != ResponseCode::NXDomain {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "refresh did not bring the new name"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.shutdown().await;
}

/// Reloads a large local list many times while a client keeps querying: nothing may be lost.
/// `PG_RELOAD_ENTRIES` and `PG_RELOADS` scale it (the measurement uses 1,000,000 × 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_lose_nothing() {
    let entries: usize = std::env::var("PG_RELOAD_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let reloads: usize = std::env::var("PG_RELOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let auth = AuthServer::start_test_zone();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("big.txt");
    std::fs::write(&list, list_body(entries, &["www.example.test"])).unwrap();
    let cfg = dir.path().join("pixelguard.toml");
    std::fs::write(
        &cfg,
        format!("[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"{}\"]\n[lists.big]\nsource = \"big.txt\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"big\"]\nrate_limit = {{ qps = 0 }}\n", auth.addr()),
    )
    .unwrap();
    let app = start(&cfg).await.unwrap();
    let addr = app.addrs[0];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sent, ok, bad) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let client = {
        let (stop, sent, ok, bad) = (stop.clone(), sent.clone(), ok.clone(), bad.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && i < 1_000_000 {
                i += 1;
                let (name, want) = if i.is_multiple_of(2) {
                    ("www.example.test.", ResponseCode::NXDomain)
                } else {
                    ("mail.example.test.", ResponseCode::NoError)
                };
                sent.fetch_add(1, Ordering::SeqCst);
                match query(
                    addr,
                    name,
                    RecordType::A,
                    &QueryOpts {
                        timeout: Duration::from_secs(2),
                        ..Default::default()
                    },
                )
                .await
                {
                    Ok(m) if m.metadata.response_code == want => ok.fetch_add(1, Ordering::SeqCst),
                    _ => bad.fetch_add(1, Ordering::SeqCst),
                };
            }
        })
    };
    for i in 0..reloads {
        // Touch the list so the reload really re-parses it.
        std::fs::write(
            &list,
            list_body(
                entries,
                &["www.example.test", &format!("r{i}.tracker.test")],
            ),
        )
        .unwrap();
        app.reload().await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    client.await.unwrap();
    let (s, o, b) = (
        sent.load(Ordering::SeqCst),
        ok.load(Ordering::SeqCst),
        bad.load(Ordering::SeqCst),
    );
    println!(
        "reloads under load: {reloads} reloads of {entries} entries; queries sent {s}, answered correctly {o}, failed {b}"
    );
    assert!(s > 0);
    assert_eq!(b, 0, "no query lost or wrong during reloads");
    assert_eq!(
        rcode(addr, &format!("r{}.tracker.test.", reloads - 1)).await,
        ResponseCode::NXDomain
    );
    app.shutdown().await;
}
