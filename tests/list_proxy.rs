//! List downloads behind an organisation's proxy (`[list_download] proxy`): a small proxy on
//! 127.0.0.1, written here, that handles both forms a client uses (`CONNECT host:port` for https,
//! an absolute-form `GET http://host:port/path` for plain http) and counts every request. With a
//! proxy the download goes through it (credentials sent to the proxy, never shown); a `no_proxy`
//! host is downloaded directly; without a proxy the environment's proxy variables are ignored
//! (checked in a child process, `pixelguard lists update`, as setting variables in this
//! multi-threaded test binary would be racy). Also the config checks of the new keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use pixelguard::app::{App, ConfigSource};
use pixelguard::config::{Config, Overrides};
use pixelguard::lists::supply::{ListSupply, Updated};
use support::{AuthServer, QueryOpts, query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_pixelguard");

/// What the test proxy saw.
#[derive(Clone, Default)]
struct ProxyLog {
    /// Requests proxied (CONNECT or absolute-form).
    requests: Arc<AtomicUsize>,
    /// Their request lines and `Proxy-Authorization` values.
    lines: Arc<Mutex<Vec<String>>>,
}

/// A forwarding proxy on 127.0.0.1: reads one request head, counts it, connects to the target's
/// port on 127.0.0.1, and then copies both ways (after `200 Connection established` for CONNECT,
/// after the request rewritten to origin-form for an absolute-form request).
async fn start_proxy() -> (ProxyLog, SocketAddr) {
    let log = ProxyLog::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let l2 = log.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(proxy_conn(conn, l2.clone()));
        }
    });
    (log, addr)
}

async fn proxy_conn(mut conn: tokio::net::TcpStream, log: ProxyLog) {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let rest = buf[head_end..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let auth = headers
        .iter()
        .find(|h| h.to_ascii_lowercase().starts_with("proxy-authorization:"))
        .map(|h| h.split_once(':').unwrap().1.trim().to_owned());
    log.requests.fetch_add(1, Ordering::SeqCst);
    log.lines.lock().unwrap().push(format!(
        "{request_line} | auth {}",
        auth.as_deref().unwrap_or("-")
    ));
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        let port = target.rsplit_once(':').map_or("443", |x| x.1);
        let Ok(mut up) = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await else {
            let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            return;
        };
        let _ = conn
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        let _ = up.write_all(&rest).await;
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
    } else if let Some(after) = target.strip_prefix("http://") {
        let (hostport, path) = after.split_at(after.find('/').unwrap_or(after.len()));
        let port = hostport.rsplit_once(':').map_or("80", |x| x.1);
        let Ok(mut up) = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await else {
            let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            return;
        };
        let path = if path.is_empty() { "/" } else { path };
        let mut out = format!("{method} {path} HTTP/1.1\r\n");
        for h in &headers {
            let lower = h.to_ascii_lowercase();
            if !lower.starts_with("proxy-") {
                out.push_str(h);
                out.push_str("\r\n");
            }
        }
        out.push_str("\r\n");
        let _ = up.write_all(out.as_bytes()).await;
        let _ = up.write_all(&rest).await;
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
    } else {
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    }
}

/// A list server on 127.0.0.1 serving `/list.txt`, counting requests.
async fn start_list_server(body: &'static str) -> (Arc<AtomicUsize>, SocketAddr) {
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    let app = axum::Router::new().route(
        "/list.txt",
        axum::routing::get(move || {
            let c = c2.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                body
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (count, addr)
}

const LIST: &str = "t1.tracker.test\nt2.tracker.test\nwww.example.test\n";

/// A config with one remote list (plain http on loopback, hence `allow_insecure`) and `extra`
/// at the top (e.g. a `[list_download]` table).
fn config(dir: &Path, upstream: SocketAddr, list: SocketAddr, extra: &str) -> PathBuf {
    let cfg = format!(
        "state_dir = \"state\"\n{extra}\n[server]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[upstream]\nservers = [\"{upstream}\"]\ntimeout = \"300ms\"\n[lists.remote]\nsource = \"http://{list}/list.txt\"\nformat = \"domains\"\nallow_insecure = true\ntimeout = \"3s\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"remote\"]\n"
    );
    let p = dir.join("pixelguard.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn load(path: &Path) -> Config {
    Config::load(path, &Overrides::default()).unwrap()
}

/// One download of the config's remote list through a fresh supply (no disk copy).
async fn update_once(path: &Path) -> Result<Updated, &'static str> {
    let c = load(path);
    let supply = ListSupply::new(&c.state_dir);
    supply
        .update(&c.lists["remote"])
        .await
        .map_err(|e| e.as_str())
}

#[tokio::test]
async fn downloads_go_through_the_configured_proxy_and_the_list_is_applied() {
    let auth = AuthServer::start_test_zone();
    let (proxy, paddr) = start_proxy().await;
    let (served, laddr) = start_list_server(LIST).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        auth.addr(),
        laddr,
        &format!("[list_download]\nproxy = \"http://pguser:s3cret-pw@{paddr}\""),
    );
    let app = App::start(ConfigSource {
        path: Some(cfg.clone()),
        overrides: Overrides::default(),
    })
    .await
    .unwrap();
    let r = query(
        app.addrs[0],
        "www.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        r.metadata.response_code,
        ResponseCode::NXDomain,
        "the list downloaded through the proxy is applied"
    );
    assert_eq!(proxy.requests.load(Ordering::SeqCst), 1, "the proxy saw it");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    let lines = proxy.lines.lock().unwrap().clone();
    assert_eq!(
        lines,
        vec![format!(
            "GET http://{laddr}/list.txt HTTP/1.1 | auth Basic cGd1c2VyOnMzY3JldC1wdw=="
        )],
        "absolute-form request with the URL's credentials for the proxy"
    );
    // The metrics never show the credentials.
    let metrics = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/metrics", app.admin_addr.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pixelguard_list_entries"), "{metrics}");
    assert!(!metrics.contains("s3cret"), "{metrics}");
    app.shutdown().await;

    // `check` prints the proxy in use, credentials hidden, and the typed config's Debug hides
    // them too.
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("downloads through proxy http://***@{paddr}\n")),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));
    assert!(!format!("{:?}", load(&cfg)).contains("s3cret"));
}

#[tokio::test]
async fn no_proxy_hosts_go_direct_https_is_tunnelled_and_a_dead_proxy_is_not_bypassed() {
    let (proxy, paddr) = start_proxy().await;
    let (served, laddr) = start_list_server(LIST).await;
    let upstream: SocketAddr = "127.0.0.1:9".parse().unwrap();

    // no_proxy matching the list host (as a host, and as a CIDR): direct, the proxy sees nothing.
    for exception in [
        "\"127.0.0.1\"",
        "\"127.0.0.0/8\"",
        "\"other.test\", \"127.0.0.1\"",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            upstream,
            laddr,
            &format!("[list_download]\nproxy = \"http://{paddr}\"\nno_proxy = [{exception}]"),
        );
        let before = served.load(Ordering::SeqCst);
        assert_eq!(update_once(&cfg).await, Ok(Updated::Changed), "{exception}");
        assert_eq!(served.load(Ordering::SeqCst), before + 1, "{exception}");
        assert_eq!(proxy.requests.load(Ordering::SeqCst), 0, "{exception}");
    }

    // A no_proxy entry for another host leaves this one on the proxy.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        upstream,
        laddr,
        &format!("[list_download]\nproxy = \"http://{paddr}\"\nno_proxy = [\".other.test\"]"),
    );
    assert_eq!(update_once(&cfg).await, Ok(Updated::Changed));
    assert_eq!(proxy.requests.load(Ordering::SeqCst), 1);

    // An https source is tunnelled with CONNECT to the list host. (The loopback list server
    // speaks plain http, so the TLS handshake in the tunnel then fails: what matters here is
    // the tunnel request.)
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("source = \"http://", "source = \"https://");
    std::fs::write(&cfg, text).unwrap();
    assert_eq!(update_once(&cfg).await, Err("network"));
    assert_eq!(proxy.requests.load(Ordering::SeqCst), 2);
    assert_eq!(
        proxy.lines.lock().unwrap().last(),
        Some(&format!("CONNECT {laddr} HTTP/1.1 | auth -"))
    );

    // A proxy that does not answer fails the download (counted as network); never direct.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        upstream,
        laddr,
        &format!("[list_download]\nproxy = \"http://{dead_addr}\""),
    );
    let before = served.load(Ordering::SeqCst);
    assert_eq!(update_once(&cfg).await, Err("network"));
    assert_eq!(served.load(Ordering::SeqCst), before, "no direct fallback");
}

#[tokio::test]
async fn environment_proxy_variables_are_ignored_without_a_configured_proxy() {
    let (proxy, paddr) = start_proxy().await;
    let (served, laddr) = start_list_server(LIST).await;
    let upstream: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let env_proxy = format!("http://{paddr}");
    let vars = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    let run = |cfg: &Path| {
        let mut cmd = Command::new(BIN);
        cmd.args(["lists", "update", "--config"]).arg(cfg);
        for v in vars {
            cmd.env(v, &env_proxy);
        }
        cmd.env_remove("NO_PROXY").env_remove("no_proxy");
        // Blocking wait off the runtime: the proxy and the list server run on it.
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };

    // No [list_download]: the variables point at the proxy, the download goes direct.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), upstream, laddr, "");
    let out = run(&cfg).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("remote: ") && stdout.contains("downloaded"),
        "{stdout}"
    );
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy.requests.load(Ordering::SeqCst),
        0,
        "{:?}",
        proxy.lines.lock().unwrap()
    );

    // The same CLI path with a configured proxy uses it (and says so, credentials hidden).
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        upstream,
        laddr,
        &format!("[list_download]\nproxy = \"http://ops:hunter2@{paddr}\""),
    );
    let out = run(&cfg).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("downloads through proxy http://***@{paddr}")),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert_eq!(proxy.requests.load(Ordering::SeqCst), 1);
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

fn errors(text: &str) -> String {
    match Config::from_str(text, "test.toml", Path::new("."), &Overrides::default()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn proxy_settings_are_checked_with_their_position() {
    let head = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[list_download]\n";
    let cases = [
        (
            "proxy = \"socks5://127.0.0.1:1080\"",
            "scheme \"socks5\" is not http or https",
        ),
        (
            "proxy = \"http://127.0.0.1\"",
            "no port; expected \"http://HOST:PORT\"",
        ),
        (
            "proxy = \"https://proxy.example\"",
            "no port; expected \"http://HOST:PORT\"",
        ),
        (
            "proxy = \"http://u:pw-x@proxy.example\"",
            "no port; expected \"http://HOST:PORT\"",
        ),
        (
            "proxy = \"http://proxy.example:3128/path\"",
            "has a path, query or fragment",
        ),
        ("proxy = \"proxy.example:3128\"", "is not http or https"),
        ("proxy = \"not a url\"", "invalid URL"),
    ];
    for (line, want) in cases {
        let e = errors(&format!("{head}{line}\n"));
        assert!(e.starts_with("test.toml:6:9: list_download.proxy: "), "{e}");
        assert!(e.contains(want), "{line}: {e}");
        assert!(!e.contains("pw-x"), "credentials in a message: {e}");
    }
    let e = errors(&format!(
        "{head}proxy = \"http://127.0.0.1:3128\"\nno_proxy = [\"ok.example\", \"a b\"]\n"
    ));
    assert!(
        e.starts_with("test.toml:7:27: list_download.no_proxy[1]: \"a b\" is not a host"),
        "{e}"
    );
    let e = errors(&format!("{head}proxy_url = \"http://127.0.0.1:3128\"\n"));
    assert!(
        e.starts_with("test.toml:6:1: unknown field `proxy_url`"),
        "{e}"
    );

    // Good ones, and a list may be called `proxy`: the proxy lives in its own table.
    for p in [
        "http://127.0.0.1:3128",
        "https://proxy.example:8443/",
        "http://user:pass@[::1]:3128",
    ] {
        let text = format!(
            "{head}proxy = \"{p}\"\nno_proxy = [\"lists.example\", \".example.org\", \"10.0.0.0/8\"]\n[lists.proxy]\nsource = \"https://lists.example/proxies.txt\"\n"
        );
        let c = Config::from_str(&text, "test.toml", Path::new("."), &Overrides::default())
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        let lp = c.list_proxy.clone().unwrap();
        assert_eq!(
            lp.url_with_credentials().trim_end_matches('/'),
            p.trim_end_matches('/')
        );
        assert_eq!(c.lists["proxy"].fetch.proxy.as_ref(), Some(&lp));
        assert!(!format!("{c:?}").contains("pass@"), "{c:?}");
    }
    let c = Config::from_str(head, "test.toml", Path::new("."), &Overrides::default()).unwrap();
    assert!(c.list_proxy.is_none());
}
