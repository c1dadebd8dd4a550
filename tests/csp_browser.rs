//! The generated Content-Security-Policy in a real browser: headless Chromium (Debian `chromium`
//! and `chromium-driver`, driven by scripts/csp-browser.py through selenium) loads the CSP fixture
//! site (tests/csp_site) served with the policy `pixelguard audit --csp` generated for it. The
//! tracker hosts resolve (Chromium `--host-resolver-rules`) to a loopback HTTPS server that
//! records every request; the site's fonts and map tiles to another. With the policy: no request
//! reaches the tracker server, the site's own scripts (a file and the hashed inline ones) still
//! run, every blocked tracker snippet's report reaches pixelguard's endpoint and
//! `pixelguard_csp_blocked_total` equals the blocked loads by vendor. Without it: the tracker
//! server does receive the requests (so the policy is what stopped them).
//!
//! Ignored in `cargo test`: needs chromium, chromedriver and the selenium venv; run by
//! scripts/csp-check.sh. Network rule: every socket here is on 127.0.0.0/8, and the browser
//! maps every other host to nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod csp_site;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use csp_site::{PAGES, Site, audit, config, start_site};
use serde_json::Value;
use support::{pg, poll_until};

const TRACKER_HOSTS: [&str; 6] = [
    "connect.facebook.net",
    "www.facebook.com",
    "www.googletagmanager.com",
    "snap.licdn.com",
    "px.ads.linkedin.com",
    "www.google-analytics.com",
];
const SITE_HOSTS: [&str; 2] = ["fonts.fontcdn.test", "tiles.maps.test"];

// ---------------------------------------------------------------------------------------------
// Recording HTTPS servers

type Seen = Arc<Mutex<Vec<(String, String)>>>;

struct Recorder {
    addr: SocketAddr,
    seen: Seen,
}

impl Recorder {
    fn hosts(&self) -> Vec<String> {
        let mut h: Vec<String> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h.clone())
            .collect();
        h.sort();
        h.dedup();
        h
    }
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn record(State(seen): State<Seen>, headers: HeaderMap, uri: Uri) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_owned();
    seen.lock().unwrap().push((host, uri.path().to_owned()));
    let ty = if uri.path().ends_with(".css") || uri.path().starts_with("/css") {
        "text/css"
    } else if uri.path().ends_with(".png") || uri.path().contains("/tr") {
        "image/gif"
    } else {
        "text/javascript"
    };
    ([(header::CONTENT_TYPE, ty)], "/* recorded */").into_response()
}

struct TlsAccept {
    tcp: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsAccept {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((s, a)) = self.tcp.accept().await else {
                continue;
            };
            let hs = tokio::time::timeout(Duration::from_secs(5), self.tls.accept(s)).await;
            if let Ok(Ok(t)) = hs {
                return (t, a);
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

async fn recorder(names: &[&str]) -> Recorder {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let app = Router::new().fallback(record).with_state(seen.clone());
    let l = TlsAccept {
        tcp,
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
    };
    tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    Recorder { addr, seen }
}

// ---------------------------------------------------------------------------------------------
// The browser

struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn start(rules: &str, origin: &str) -> Browser {
        let python = std::env::var("PIXELGUARD_CSP_PYTHON")
            .expect("PIXELGUARD_CSP_PYTHON: the selenium venv's python (run scripts/csp-check.sh)");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/csp-browser.py");
        let mut child = Command::new(python)
            .arg(script)
            .env("PIXELGUARD_CSP_RESOLVER_RULES", rules)
            .env("PIXELGUARD_CSP_ORIGIN", origin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the browser driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Browser {
            child,
            stdin,
            stdout,
        }
    }

    /// Loads `url`; the driver waits (bounded) for the first-party marker and answers.
    async fn visit(&mut self, url: &str) -> Value {
        writeln!(self.stdin, "visit {url}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        tokio::task::block_in_place(|| self.stdout.read_line(&mut line)).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver said {line:?}: {e}"))
    }

    fn quit(mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Only when a test failed before quit(): the driver's own process, by its id.
        let _ = self.child.kill();
    }
}

// ---------------------------------------------------------------------------------------------

fn series(text: &str, prefix: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

async fn metrics(pg: &pg::Pg) -> String {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/metrics", pg.app.admin_addr.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn policies(doc: &Value) -> Vec<(String, String)> {
    let site = doc["policy"].as_str().unwrap().to_owned();
    let mut out: Vec<(String, String)> = ["/", "/news.html", "/careers.html"]
        .iter()
        .map(|p| ((*p).to_owned(), site.clone()))
        .collect();
    for s in doc["sensitive"].as_array().unwrap() {
        out.push((
            s["path"].as_str().unwrap().to_owned(),
            s["policy"].as_str().unwrap().to_owned(),
        ));
    }
    out
}

async fn visit_all(b: &mut Browser, site_port: u16) -> Vec<Value> {
    let mut out = Vec::new();
    for p in PAGES {
        out.push(
            b.visit(&format!("http://www.force.test:{site_port}{p}"))
                .await,
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver: run by scripts/csp-check.sh"]
async fn the_generated_policy_stops_the_pixels_in_chromium() {
    let site: Site = start_site().await;
    let trackers = recorder(&TRACKER_HOSTS).await;
    let allowed = recorder(&SITE_HOSTS).await;
    let up: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let pg = pg::start(
        &format!(
            "{}[csp_reports]\nlisten = \"127.0.0.1:0\"\nsites = [\"www.force.test\"]\nrate = 100\nburst = 100\n",
            pg::base(&[up])
        ),
        &[],
    )
    .await;
    let endpoint = format!("http://{}/csp-report", pg.app.csp_reports_addr.unwrap());

    // The policy, as the operator would generate it.
    let cfg = config();
    let run = audit(
        &site,
        &cfg,
        &["--csp", "--format", "json", "--report-uri", &endpoint],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    // Served in the report-uri form: with `report-to`, Chromium ignores `report-uri` and sends
    // through the Reporting API, which batches reports for up to a minute; Firefox and Safari
    // use `report-uri`. The endpoint takes both shapes (tests/csp_reports.rs).
    for (path, policy) in policies(&doc) {
        assert!(policy.ends_with("; report-to csp-endpoint"), "{policy}");
        let policy = policy
            .trim_end_matches("; report-to csp-endpoint")
            .to_owned();
        site.set_headers(&path, vec![("content-security-policy".into(), policy)]);
    }

    // Tracker hosts to the tracker recorder, the site's CDN hosts to the other one, the site to
    // its server; everything else to nothing.
    let mut rules: Vec<String> = TRACKER_HOSTS
        .iter()
        .map(|h| format!("MAP {h} 127.0.0.1:{}", trackers.addr.port()))
        .collect();
    rules.extend(
        SITE_HOSTS
            .iter()
            .map(|h| format!("MAP {h} 127.0.0.1:{}", allowed.addr.port())),
    );
    rules.push("MAP www.force.test 127.0.0.1".into());
    rules.push("MAP * ~NOTFOUND".into());
    rules.push("EXCLUDE 127.0.0.1".into());
    let port = site.addr.port();
    let mut browser = Browser::start(&rules.join(", "), &format!("http://www.force.test:{port}"));

    // 1. With the policy.
    let results = visit_all(&mut browser, port).await;
    for r in &results {
        assert_eq!(
            r["first_party"], true,
            "first-party script did not run: {r}"
        );
    }
    assert_eq!(
        results[0]["inline"], "ran",
        "hashed inline script on /: {}",
        results[0]
    );
    assert_eq!(
        results[1]["form"], "ready",
        "hashed inline script on the form: {}",
        results[1]
    );
    // Each blocked tracker snippet is reported: Meta on the form, GTM on the news page, the two
    // LinkedIn snippets on the careers page.
    let expected: BTreeMap<String, u64> = [
        ("advertising", "meta", 1),
        ("tag_manager", "google", 1),
        ("advertising", "linkedin", 2),
    ]
    .iter()
    .map(|(c, v, n)| {
        (
            format!(
                "pixelguard_csp_blocked_total{{category=\"{c}\",site=\"www.force.test\",vendor=\"{v}\"}}"
            ),
            *n,
        )
    })
    .collect();
    poll_until(Duration::from_secs(20), "the browser's CSP reports", || {
        let pg = &pg;
        async move {
            let m = metrics(pg).await;
            let now = series(&m, "pixelguard_csp_blocked_total");
            let rejected = series(&m, "pixelguard_csp_reports_rejected_total");
            assert!(rejected.is_empty(), "{rejected:?}");
            now.values().sum::<u64>() >= 4
        }
    })
    .await;
    let m = metrics(&pg).await;
    let last = series(&m, "pixelguard_csp_blocked_total");
    assert_eq!(last, expected);
    assert!(
        series(&m, "pixelguard_csp_reports_rejected_total").is_empty(),
        "{m}"
    );
    assert_eq!(
        trackers.count(),
        0,
        "tracker requests: {:?}",
        trackers.hosts()
    );
    assert_eq!(allowed.hosts(), ["fonts.fontcdn.test", "tiles.maps.test"]);

    // 2. The same pages without the policy: the trackers are reached.
    site.clear_headers();
    let results = visit_all(&mut browser, port).await;
    for r in &results {
        assert_eq!(r["first_party"], true, "{r}");
    }
    poll_until(
        Duration::from_secs(20),
        "tracker requests without CSP",
        || {
            let hosts = trackers.hosts();
            async move {
                [
                    "connect.facebook.net",
                    "www.googletagmanager.com",
                    "snap.licdn.com",
                ]
                .iter()
                .all(|h| hosts.iter().any(|x| x == h))
            }
        },
    )
    .await;
    browser.quit();
    // No new report without a policy.
    let after = series(&metrics(&pg).await, "pixelguard_csp_blocked_total");
    assert_eq!(after, expected);
}
