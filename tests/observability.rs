//! Observability integration tests: a real pixelguard on 127.0.0.1 (DNS and the admin HTTP server
//! on port 0) against an in-process authoritative upstream, queried from loopback clients in
//! several zones (127.0.0.2 / .3 / .4 / ...), then checked from the outside: `/metrics` scraped
//! over HTTP with exact values per label set, `/api/stats`, `/api/explain`, `/readyz`,
//! `/api/reload` with and without the token, the query log's lines per record and client mode,
//! rotation, and a stalled query-log sink that drops (and counts) entries while DNS keeps
//! answering. The Grafana dashboard and the alert rules are checked against the metric names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use pixelguard::app::{App, ConfigSource};
use pixelguard::config::{ClientMode, Overrides};
use pixelguard::metrics;
use pixelguard::querylog::Pseudonymizer;
use serde_json::Value;
use support::pg::{self, base_without_admin};
use support::scripted::Reply;
use support::{AuthServer, QueryOpts, ScriptedUpstream, loopback, query};

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// `[server]`, `[upstream]` and an admin server on a random loopback port.
fn head(upstreams: &[SocketAddr]) -> String {
    format!(
        "{}[admin]\nlisten = \"127.0.0.1:0\"\n\n",
        base_without_admin(upstreams)
    )
}

fn from(n: u8) -> QueryOpts {
    QueryOpts::from_source(loopback(n))
}

async fn ask(pg: &pg::Pg, n: u8, name: &str, t: RecordType) -> ResponseCode {
    query(pg.addr, name, t, &from(n))
        .await
        .unwrap_or_else(|e| panic!("{name} from 127.0.0.{n}: {e}"))
        .metadata
        .response_code
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
}

fn admin(pg: &pg::Pg) -> String {
    format!("http://{}", pg.app.admin_addr.expect("admin server bound"))
}

async fn get(url: &str) -> (u16, String) {
    let r = http().get(url).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

async fn get_json(url: &str) -> (u16, Value) {
    let (s, t) = get(url).await;
    (
        s,
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("{url}: {e}: {t}")),
    )
}

async fn scrape(pg: &pg::Pg) -> String {
    let (s, t) = get(&format!("{}/metrics", admin(pg))).await;
    assert_eq!(s, 200, "{t}");
    t
}

/// One sample line of the text format: name, labels (in order), value.
type Sample = (String, Vec<(String, String)>, f64);

fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap();
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), Vec::new()),
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let mut labels = Vec::new();
                let mut chars = body.chars().peekable();
                // Bounded by the line's length.
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut val = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => val.push(chars.next().unwrap()),
                            '"' => break,
                            c => val.push(c),
                        }
                    }
                    labels.push((key, val));
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (n.to_owned(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// The value of the series `name{labels}` with exactly these labels (any order); `None` when the
/// series does not exist.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeSet<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    parse_samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && l.iter().cloned().collect::<BTreeSet<_>>() == want)
        .map(|s| s.2)
}

#[track_caller]
fn assert_metric(text: &str, name: &str, labels: &[(&str, &str)], want: f64) {
    let got = value(text, name, labels);
    assert_eq!(got, Some(want), "{name}{labels:?}");
}

fn series_of(text: &str, name: &str) -> Vec<Sample> {
    parse_samples(text)
        .into_iter()
        .filter(|s| s.0 == name)
        .collect()
}

fn read_lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Metrics, stats, explain
// ------------------------------------------------------------------------------------------

/// kiosk (.2, enforce), staff (.3, log), lab (.4, enforce, trackers only), .9 in no zone.
fn zones_config(upstream: SocketAddr) -> String {
    format!(
        "{}[lists.trackers]\nsource = \"builtin:trackers\"\n[lists.plain]\nsource = \"plain.txt\"\n\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\", \"plain\"]\n\n\
         [zones.staff]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\", \"plain\"]\nmode = \"log\"\n\n\
         [zones.lab]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"trackers\"]\n",
        head(&[upstream])
    )
}

const PLAIN: &str = "# a plain list: no vendor data\nmx.example.test\nads.example.test\n";

#[tokio::test]
async fn metrics_count_each_attempt_by_zone_vendor_and_mode() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&zones_config(auth.addr()), &[("plain.txt", PLAIN)]).await;
    use RecordType::{A, SVCB};

    // kiosk: two catalogue trackers, one plain-list name, one CNAME-cloaked tracker, a clean
    // name twice (forwarded, then cached).
    assert_eq!(
        ask(&pg, 2, "connect.facebook.net.", A).await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 2, "www.google-analytics.com.", A).await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 2, "mx.example.test.", A).await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 2, "metrics.example.test.", A).await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 2, "www.example.test.", A).await,
        ResponseCode::NoError
    );
    assert_eq!(
        ask(&pg, 2, "www.example.test.", A).await,
        ResponseCode::NoError
    );
    // staff (log mode): the same attempts resolve normally and count as would-block.
    assert_eq!(
        ask(&pg, 3, "mx.example.test.", A).await,
        ResponseCode::NoError
    );
    assert_eq!(
        ask(&pg, 3, "metrics.example.test.", A).await,
        ResponseCode::NoError
    );
    ask(&pg, 3, "connect.facebook.net.", A).await; // the test upstream refuses foreign names
    // lab: bypass attempts.
    assert_eq!(
        ask(&pg, 4, "use-application-dns.net.", A).await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 4, "mask.icloud.com.", A).await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 4, "_dns.resolver.arpa.", SVCB).await,
        ResponseCode::NoError
    );
    ask(&pg, 4, "dns.google.", A).await;
    // A client in no zone.
    assert_eq!(
        ask(&pg, 9, "www.example.test.", A).await,
        ResponseCode::Refused
    );

    let m = scrape(&pg).await;
    let q = metrics::QUERIES_TOTAL;
    assert_metric(&m, q, &[("zone", "kiosk"), ("outcome", "blocked")], 4.0);
    assert_metric(&m, q, &[("zone", "kiosk"), ("outcome", "forwarded")], 1.0);
    assert_metric(&m, q, &[("zone", "kiosk"), ("outcome", "cached")], 1.0);
    assert_metric(&m, q, &[("zone", "kiosk"), ("outcome", "would_block")], 0.0);
    assert_metric(&m, q, &[("zone", "staff"), ("outcome", "would_block")], 3.0);
    assert_metric(&m, q, &[("zone", "staff"), ("outcome", "blocked")], 0.0);
    assert_metric(&m, q, &[("zone", "lab"), ("outcome", "local")], 3.0);
    assert_metric(&m, q, &[("zone", "lab"), ("outcome", "forwarded")], 1.0);
    assert_metric(&m, q, &[("zone", "none"), ("outcome", "refused")], 1.0);
    assert_metric(&m, metrics::REFUSED_CLIENTS_TOTAL, &[], 1.0);

    let t = metrics::TRACKER_ATTEMPTS_TOTAL;
    let attempt = |z: &'static str, v: &'static str, c: &'static str, mode: &'static str| {
        [("zone", z), ("vendor", v), ("category", c), ("mode", mode)]
    };
    assert_metric(
        &m,
        t,
        &attempt("kiosk", "meta", "advertising", "enforce"),
        1.0,
    );
    assert_metric(
        &m,
        t,
        &attempt("kiosk", "google", "analytics", "enforce"),
        1.0,
    );
    assert_metric(&m, t, &attempt("kiosk", "other", "other", "enforce"), 1.0);
    // The cloaked tracker counts with the cloaking vendor (the CNAME target's), not "other".
    assert_metric(
        &m,
        t,
        &attempt("kiosk", "adobe_experience_cloud", "cname_cloak", "enforce"),
        1.0,
    );
    assert_metric(&m, t, &attempt("staff", "meta", "advertising", "log"), 1.0);
    assert_metric(&m, t, &attempt("staff", "other", "other", "log"), 1.0);
    assert_metric(
        &m,
        t,
        &attempt("staff", "adobe_experience_cloud", "cname_cloak", "log"),
        1.0,
    );
    // Pre-registered at zero; no enforce series for a log zone, no plain-list series for lab.
    assert_metric(
        &m,
        t,
        &attempt("lab", "meta", "advertising", "enforce"),
        0.0,
    );
    assert_eq!(
        value(&m, t, &attempt("staff", "meta", "advertising", "enforce")),
        None
    );
    assert_eq!(
        value(&m, t, &attempt("lab", "other", "other", "enforce")),
        None
    );
    let total: f64 = series_of(&m, t).iter().map(|s| s.2).sum();
    assert_eq!(total, 7.0, "every attempt counted once");

    let b = metrics::BLOCKED_TOTAL;
    assert_metric(&m, b, &[("zone", "kiosk"), ("list", "trackers")], 3.0);
    assert_metric(&m, b, &[("zone", "kiosk"), ("list", "plain")], 1.0);
    assert_eq!(
        value(&m, b, &[("zone", "staff"), ("list", "trackers")]),
        None,
        "log mode blocks nothing"
    );

    let by = metrics::BYPASS_ATTEMPTS_TOTAL;
    for kind in ["canary", "private_relay", "ddr", "doh_host"] {
        assert_metric(&m, by, &[("zone", "lab"), ("kind", kind)], 1.0);
        assert_metric(&m, by, &[("zone", "kiosk"), ("kind", kind)], 0.0);
    }

    // Cache: kiosk www (miss, hit), kiosk metrics (miss), staff mx (miss), staff metrics (hit),
    // staff connect.facebook.net (miss; REFUSED is not cached), lab dns.google (miss).
    assert_metric(&m, metrics::CACHE_HITS_TOTAL, &[], 2.0);
    assert_metric(&m, metrics::CACHE_MISSES_TOTAL, &[], 5.0);
    assert!(value(&m, metrics::CACHE_ENTRIES, &[]).unwrap() >= 3.0);
    let up = auth.addr().to_string();
    let uq = metrics::UPSTREAM_QUERIES_TOTAL;
    assert_metric(
        &m,
        uq,
        &[("group", "default"), ("upstream", &up), ("result", "ok")],
        3.0,
    );
    assert_metric(
        &m,
        uq,
        &[
            ("group", "default"),
            ("upstream", &up),
            ("result", "refused"),
        ],
        2.0,
    );
    assert_metric(
        &m,
        uq,
        &[
            ("group", "default"),
            ("upstream", &up),
            ("result", "timeout"),
        ],
        0.0,
    );
    assert_metric(
        &m,
        &format!("{}_count", metrics::UPSTREAM_DURATION_SECONDS),
        &[("group", "default"), ("upstream", &up)],
        5.0,
    );
    let d = format!("{}_count", metrics::REQUEST_DURATION_SECONDS);
    assert_metric(&m, &d, &[("outcome", "blocked")], 4.0);
    assert_metric(&m, &d, &[("outcome", "local")], 3.0);
    let le = format!("{}_bucket", metrics::REQUEST_DURATION_SECONDS);
    assert_metric(&m, &le, &[("outcome", "blocked"), ("le", "5")], 4.0);
    assert!(
        value(&m, &le, &[("outcome", "blocked"), ("le", "0.00005")]).is_some(),
        "50 µs bucket"
    );
    assert_metric(&m, metrics::LIST_ENTRIES, &[("list", "plain")], 2.0);
    assert!(value(&m, metrics::LIST_ENTRIES, &[("list", "trackers")]).unwrap() > 100.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = value(
        &m,
        metrics::LIST_LAST_SUCCESS_TIMESTAMP_SECONDS,
        &[("list", "plain")],
    )
    .unwrap();
    assert!((now - last).abs() < 120.0, "{last} vs {now}");
    assert_metric(
        &m,
        metrics::LIST_UPDATE_FAILURES_TOTAL,
        &[("list", "plain"), ("reason", "read")],
        0.0,
    );
    assert_metric(&m, metrics::RELOADS_TOTAL, &[("result", "success")], 0.0);
    assert_metric(&m, metrics::QUERY_LOG_DROPPED_TOTAL, &[], 0.0);
    assert_metric(
        &m,
        metrics::BUILD_INFO,
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );

    // Closed label sets: no client address and no query name anywhere in the exposition.
    for needle in [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.9",
        "facebook",
        "example.test",
    ] {
        assert!(!m.contains(needle), "{needle} leaked into /metrics");
    }
    for (name, labels, _) in parse_samples(&m) {
        assert!(
            metrics::ALL_NAMES.iter().any(|n| name.starts_with(n)),
            "unknown family {name}"
        );
        for (k, _) in labels {
            assert!(
                [
                    "zone", "outcome", "vendor", "category", "mode", "list", "kind", "group",
                    "upstream", "result", "reason", "version", "le", "sink", "state"
                ]
                .contains(&k.as_str()),
                "label {k} on {name}"
            );
        }
    }

    // /api/stats: totals, attempts, top names and (pseudonymised) top clients.
    let (s, st) = get_json(&format!("{}/api/stats", admin(&pg))).await;
    assert_eq!(s, 200);
    assert_eq!(st["zones"]["kiosk"]["queries"]["blocked"], 4);
    assert_eq!(st["zones"]["kiosk"]["queries"]["total"], 6);
    assert_eq!(st["zones"]["staff"]["mode"], "log");
    assert_eq!(st["zones"]["none"]["queries"]["refused"], 1);
    assert_eq!(st["attempts"]["by_vendor"]["meta"], 2);
    assert_eq!(st["attempts"]["by_vendor"]["adobe_experience_cloud"], 2);
    assert_eq!(st["attempts"]["by_category"]["cname_cloak"], 2);
    let names = &st["zones"]["kiosk"]["top"]["hour"]["names"];
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(&"connect.facebook.net") && names.contains(&"metrics.example.test"));
    let clients = st["zones"]["kiosk"]["top"]["day"]["clients"]
        .as_array()
        .unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["count"], 4);
    let pseudonym = clients[0]["client"].as_str().unwrap();
    assert!(
        pseudonym.starts_with("c-") && pseudonym.len() == 18,
        "{pseudonym}"
    );
    assert_eq!(pseudonym, pg.app.pipeline.recorder.pseudonym(loopback(2)));
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9"] {
        assert!(
            !st.to_string().contains(ip),
            "client address {ip} in /api/stats"
        );
    }
    let lists = st["lists"].as_array().unwrap();
    assert!(
        lists
            .iter()
            .any(|l| l["name"] == "plain" && l["entries"] == 2 && l["loaded"] == true)
    );
    assert_eq!(st["cache"]["hits"], 2);

    let (s, bad) = get_json(&format!("{}/api/stats?top=0", admin(&pg))).await;
    assert_eq!(s, 400, "{bad}");

    // /api/explain: the trace as JSON.
    let url = |c: &str, n: &str| format!("{}/api/explain?client={c}&name={n}&type=A", admin(&pg));
    let (s, e) = get_json(&url("127.0.0.2", "connect.facebook.net")).await;
    assert_eq!(s, 200);
    assert_eq!(e["zone"]["name"], "kiosk");
    assert_eq!(e["zone"]["network"], "127.0.0.2/32");
    assert_eq!(e["decision"]["kind"], "blocked");
    assert_eq!(e["decision"]["vendor"], "meta");
    assert_eq!(e["decision"]["list"], "trackers");
    assert!(e["answer"].as_str().unwrap().starts_with("NXDOMAIN"), "{e}");
    assert!(e["matches"].as_array().unwrap().iter().any(|m| {
        m["rule"] == "connect.facebook.net"
            && m["location"]
                .as_str()
                .unwrap()
                .contains("blocklists/trackers.toml:")
    }));
    assert!(
        e["text"]
            .as_str()
            .unwrap()
            .contains("decision  blocked by list trackers")
    );
    let (_, e) = get_json(&url("127.0.0.3", "mx.example.test")).await;
    assert_eq!(e["decision"]["kind"], "would_block");
    assert_eq!(e["decision"]["list"], "plain");
    let (_, e) = get_json(&url("127.0.0.4", "mask.icloud.com")).await;
    assert_eq!(e["canary"], "private_relay");
    let (_, e) = get_json(&url("127.0.0.9", "www.example.test")).await;
    assert_eq!(e["decision"]["kind"], "refused");
    let (s, _) = get_json(&url("not-an-ip", "x.test")).await;
    assert_eq!(s, 400);
    let (s, _) = get_json(&format!(
        "{}/api/explain?client=127.0.0.2&name=x.test&type=BOGUS",
        admin(&pg)
    ))
    .await;
    assert_eq!(s, 400);

    let (s, r) = get_json(&format!("{}/readyz", admin(&pg))).await;
    assert_eq!((s, &r["ready"]), (200, &Value::Bool(true)), "{r}");
    let (s, body) = get(&format!("{}/healthz", admin(&pg))).await;
    assert_eq!((s, body.as_str()), (200, "ok\n"));
    let (s, _) = get(&format!("{}/nope", admin(&pg))).await;
    assert_eq!(s, 404);
    pg.app.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// Readiness
// ------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok, "mkfifo {}", p.display());
}

#[tokio::test]
async fn readyz_is_503_while_lists_load_and_when_upstreams_fail() {
    // The list is a FIFO: building the first snapshot blocks until the test writes it, which
    // holds start-up in the "lists loading" phase for as long as the test wants.
    let dead = ScriptedUpstream::start(|_| Reply::Empty);
    let port = free_port();
    let cfg = format!(
        "{}[admin]\nlisten = \"127.0.0.1:{port}\"\n\n[lists.slow]\nsource = \"slow.txt\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"slow\"]\n",
        base_without_admin(&[dead.addr()])
    );
    let dir = pg::folder(&cfg, &[]);
    let fifo = dir.path().join("slow.txt");
    mkfifo(&fifo);
    let source = ConfigSource {
        path: Some(dir.path().join("pixelguard.toml")),
        overrides: Overrides::default(),
    };
    let starting = tokio::spawn(App::start(source));
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        if let Ok(r) = http().get(&url).send().await {
            let s = r.status().as_u16();
            break (s, r.text().await.unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "admin server never answered during start-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("starting"), "{body}");
    let (s, _) = get(&format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(s, 200, "alive while starting");
    let (s, _) = get(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(s, 503);

    let writer = tokio::task::spawn_blocking(move || {
        std::fs::write(&fifo, "ads.example.test\n").unwrap();
    });
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
    let app = tokio::time::timeout(Duration::from_secs(10), starting)
        .await
        .expect("start-up finishes")
        .unwrap()
        .unwrap();
    assert_eq!(app.admin_addr.unwrap().port(), port);
    let (s, body) = get(&url).await;
    assert_eq!(
        s, 200,
        "listeners serving, snapshot loaded, no upstream tried yet: {body}"
    );

    // A blocked name needs no upstream; a cache miss tries the (broken) upstream.
    let o = QueryOpts::default();
    let m = query(app.addrs[0], "ads.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(get(&url).await.0, 200);
    let m = query(app.addrs[0], "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let (s, body) = get(&url).await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("no upstream has answered"), "{body}");
    app.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// Reload endpoint
// ------------------------------------------------------------------------------------------

const TOKEN: &str = "s3cret-token-0123456789";

#[tokio::test]
async fn reload_endpoint_needs_the_token_and_reports_errors() {
    let auth = AuthServer::start_test_zone();
    let cfg = |extra_block: &str| {
        format!(
            "{}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\ntrust_loopback = false\n\n[lists.b]\nsource = \"b.txt\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"b\"]\n{extra_block}",
            base_without_admin(&[auth.addr()])
        )
    };
    let pg = pg::start(&cfg(""), &[("b.txt", "ads.example.test\n")]).await;
    let url = format!("{}/api/reload", admin(&pg));
    let c = http();

    let r = c.post(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "loopback is not trusted here");
    assert!(r.headers().contains_key("www-authenticate"));
    let r = c
        .post(&url)
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Reads are protected too once a token is set.
    let r = c
        .get(format!("{}/api/stats", admin(&pg)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(format!("{}/api/stats", admin(&pg)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        get(&format!("{}/metrics", admin(&pg))).await.0,
        200,
        "metrics stay open"
    );

    // A list change, applied by the endpoint.
    assert_eq!(
        ask(&pg, 1, "www.example.test.", RecordType::A).await,
        ResponseCode::NoError
    );
    std::fs::write(pg.path("b.txt"), "ads.example.test\nwww.example.test\n").unwrap();
    let r = c.post(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({"ok": true}));
    assert_eq!(
        ask(&pg, 1, "www.example.test.", RecordType::A).await,
        ResponseCode::NXDomain
    );

    // A broken config: 422 with file:line:column errors, the running config stays.
    std::fs::write(pg.path("pixelguard.toml"), cfg("mode = \"block\"\n")).unwrap();
    let r = c.post(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["ok"], false);
    let err = v["errors"][0].as_str().unwrap();
    assert!(
        err.contains("pixelguard.toml:") && err.contains("zones.lo.mode"),
        "{err}"
    );
    assert_eq!(
        ask(&pg, 1, "www.example.test.", RecordType::A).await,
        ResponseCode::NXDomain
    );

    let m = scrape(&pg).await;
    assert_metric(&m, metrics::RELOADS_TOTAL, &[("result", "success")], 1.0);
    assert_metric(&m, metrics::RELOADS_TOTAL, &[("result", "failure")], 1.0);
    pg.app.shutdown().await;

    // Default access: loopback is trusted, no token needed.
    let pg = pg::start(
        &format!(
            "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
            head(&[auth.addr()])
        ),
        &[],
    )
    .await;
    let r = c
        .post(format!("{}/api/reload", admin(&pg)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    pg.app.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// Query log
// ------------------------------------------------------------------------------------------

const KEY: &str = "query-log-test-key-0001";

#[tokio::test]
async fn query_log_records_per_zone_mode_and_client_identity() {
    let auth = AuthServer::start_test_zone();
    let cfg = format!(
        "{}[query_log]\npath = \"log/queries.jsonl\"\nkey = \"{KEY}\"\n\n\
         [lists.b]\nsource = \"b.txt\"\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"b\"]\n\
         [zones.staff]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"b\"]\nmode = \"log\"\nquery_log = \"all\"\nquery_log_client = \"masked\"\n\
         [zones.lab]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"b\"]\nquery_log = \"none\"\n\
         [zones.vip]\nnetworks = [\"127.0.0.6/32\"]\nquery_log = \"all\"\nquery_log_client = \"full\"\n\
         [zones.anon]\nnetworks = [\"127.0.0.7/32\"]\nblock = [\"b\"]\nquery_log_client = \"none\"\n",
        head(&[auth.addr()])
    );
    let pg = pg::start(&cfg, &[("b.txt", "ads.example.test\nmx.example.test\n")]).await;
    std::fs::create_dir_all(pg.path("log")).unwrap(); // created by the test after start: the writer opens lazily
    use RecordType::A;
    // kiosk (policy, hash): two policy hits logged, the clean name not.
    ask(&pg, 2, "ads.example.test.", A).await;
    ask(&pg, 2, "www.example.test.", A).await;
    ask(&pg, 2, "mx.example.test.", RecordType::AAAA).await;
    // staff (all, masked): everything, would-block included.
    ask(&pg, 3, "alias.example.test.", A).await;
    ask(&pg, 3, "ads.example.test.", A).await;
    // lab (none): nothing.
    ask(&pg, 4, "ads.example.test.", A).await;
    // vip (all, full: opt-in), anon (policy, no client).
    ask(&pg, 6, "www.example.test.", A).await;
    ask(&pg, 7, "ads.example.test.", A).await;
    // Not in a zone: the global mode (policy) records nothing for a refusal.
    ask(&pg, 9, "ads.example.test.", A).await;
    assert!(pg.app.flush_query_log(Duration::from_secs(5)).await);

    let lines = read_lines(&pg.path("log/queries.jsonl"));
    let zones: Vec<&str> = lines.iter().map(|l| l["zone"].as_str().unwrap()).collect();
    assert_eq!(
        zones,
        ["kiosk", "kiosk", "staff", "staff", "vip", "anon"],
        "{lines:#?}"
    );
    let keys: BTreeSet<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = [
        "ts",
        "zone",
        "client",
        "qname",
        "qtype",
        "outcome",
        "rcode",
        "list",
        "rule",
        "vendor",
        "category",
        "cloaked_via",
        "upstream",
        "duration_us",
    ]
    .into();
    assert_eq!(keys, want);

    let (k1, k2) = (&lines[0], &lines[1]);
    assert_eq!(k1["qname"], "ads.example.test");
    assert_eq!(
        (k1["outcome"].as_str(), k1["rcode"].as_str()),
        (Some("blocked"), Some("NXDOMAIN"))
    );
    assert_eq!(
        (k1["list"].as_str(), k1["rule"].as_str()),
        (Some("b"), Some("ads.example.test"))
    );
    assert_eq!(k1["vendor"], Value::Null, "plain list");
    assert_eq!(
        (k2["qname"].as_str(), k2["qtype"].as_str()),
        (Some("mx.example.test"), Some("AAAA"))
    );
    // The same client gives the same pseudonym, and it is the keyed hash of its address.
    let p = Pseudonymizer::from_secret(KEY).pseudonym(loopback(2));
    assert_eq!(k1["client"], p.as_str());
    assert_eq!(k2["client"], p.as_str());
    assert!(!p.contains("127"));
    assert!(k1["ts"].as_str().unwrap().ends_with('Z'));
    assert!(k1["duration_us"].as_u64().unwrap() < 5_000_000);

    let (s1, s2) = (&lines[2], &lines[3]);
    assert_eq!(
        (s1["outcome"].as_str(), s1["client"].as_str()),
        (Some("forwarded"), Some("127.0.0.0/24"))
    );
    assert_eq!(s1["upstream"], auth.addr().to_string());
    assert_eq!(s1["rcode"], "NOERROR");
    assert_eq!(s2["outcome"], "would_block");
    assert_eq!(s2["client"], "127.0.0.0/24", "masked really masks");
    assert_eq!(
        lines[4]["client"], "127.0.0.6",
        "full only where configured"
    );
    assert_eq!(lines[5]["client"], Value::Null);
    let text = std::fs::read_to_string(pg.path("log/queries.jsonl")).unwrap();
    for ip in [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.7",
        "127.0.0.9",
    ] {
        assert!(!text.contains(ip), "{ip} in the log");
    }

    // Reload with another key rotates the pseudonyms; a client mode change applies at once.
    let cfg2 = cfg.replace(KEY, "another-key-0123456789");
    std::fs::write(pg.path("pixelguard.toml"), cfg2).unwrap();
    pg.app.reload().await.unwrap();
    ask(&pg, 2, "ads.example.test.", A).await;
    assert!(pg.app.flush_query_log(Duration::from_secs(5)).await);
    let lines = read_lines(&pg.path("log/queries.jsonl"));
    let last = lines.last().unwrap();
    assert_eq!(last["zone"], "kiosk");
    assert_ne!(last["client"], p.as_str());
    assert_eq!(
        last["client"],
        Pseudonymizer::from_secret("another-key-0123456789")
            .pseudonym(loopback(2))
            .as_str()
    );
    pg.app.shutdown().await;
}

#[tokio::test]
async fn query_log_key_file_is_generated_once() {
    let auth = AuthServer::start_test_zone();
    let cfg = format!(
        "{}[query_log]\npath = \"queries.jsonl\"\nkey_file = \"state/ql.key\"\nclient = \"hash\"\n[lists.b]\nsource = \"b.txt\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"b\"]\n",
        head(&[auth.addr()])
    );
    let pg = pg::start(&cfg, &[("b.txt", "ads.example.test\n")]).await;
    let key = std::fs::read_to_string(pg.path("state/ql.key")).unwrap();
    assert_eq!(key.trim().len(), 32);
    ask(&pg, 5, "ads.example.test.", RecordType::A).await;
    assert!(pg.app.flush_query_log(Duration::from_secs(5)).await);
    let first = read_lines(&pg.path("queries.jsonl"))[0]["client"]
        .as_str()
        .unwrap()
        .to_owned();
    // After a restart the same key (and pseudonym) is used.
    let config_path = pg.path("pixelguard.toml");
    let (app, dir) = (pg.app, pg.dir);
    app.shutdown().await;
    let pg_path = |p: &str| dir.path().join(p);
    let app = App::start(ConfigSource {
        path: Some(config_path),
        overrides: Overrides::default(),
    })
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(pg_path("state/ql.key")).unwrap(),
        key
    );
    query(app.addrs[0], "ads.example.test.", RecordType::A, &from(5))
        .await
        .unwrap();
    app.shutdown().await; // flushes
    let lines = read_lines(&pg_path("queries.jsonl"));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["client"], first.as_str());
    assert_eq!(app_client_mode_default(), ClientMode::Hash);
}

fn app_client_mode_default() -> ClientMode {
    pixelguard::config::Config::from_str(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[query_log]\npath = \"q\"\nkey = \"0123456789abcdef\"\n",
        "t",
        Path::new("/tmp"),
        &Overrides::default(),
    )
    .unwrap()
    .query_log
    .unwrap()
    .client
}

#[tokio::test]
async fn query_log_rotates_by_size_and_keeps_n_files() {
    let auth = AuthServer::start_test_zone();
    let cfg = format!(
        "{}[query_log]\npath = \"q.jsonl\"\nkey = \"{KEY}\"\nrecord = \"all\"\nmax_size = 4096\nkeep = 2\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        head(&[auth.addr()])
    );
    let pg = pg::start(&cfg, &[]).await;
    for i in 0..60 {
        ask(&pg, 2, &format!("n{i}.example.test."), RecordType::A).await;
    }
    assert!(pg.app.flush_query_log(Duration::from_secs(5)).await);
    let live = pg.path("q.jsonl");
    let r1 = pg.path("q.jsonl.1");
    let r2 = pg.path("q.jsonl.2");
    for p in [&live, &r1, &r2] {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len > 0 && len <= 4096, "{}: {len}", p.display());
    }
    assert!(!pg.path("q.jsonl.3").exists(), "keep = 2");
    let last = read_lines(&live);
    assert_eq!(last.last().unwrap()["qname"], "n59.example.test");
    let older = read_lines(&r1);
    assert!(older.last().unwrap()["qname"].as_str().unwrap() < "n59");
    pg.app.shutdown().await;
}

#[tokio::test]
async fn a_stalled_query_log_drops_entries_and_dns_keeps_answering() {
    let auth = AuthServer::start_test_zone();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stalled.jsonl");
    mkfifo(&fifo);
    // Nobody reads the FIFO: the writer blocks opening it, the 4-entry buffer fills up.
    let cfg = format!(
        "{}[query_log]\npath = \"{}\"\nkey = \"{KEY}\"\nrecord = \"all\"\nbuffer = 4\nmax_age = \"0s\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        head(&[auth.addr()]),
        fifo.display()
    );
    let pg = pg::start(&cfg, &[]).await;
    let started = Instant::now();
    for i in 0..40 {
        let t = Instant::now();
        let rc = ask(&pg, 2, "www.example.test.", RecordType::A).await;
        assert_eq!(rc, ResponseCode::NoError, "query {i}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "query {i} waited for the log"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let m = scrape(&pg).await;
    let dropped = value(&m, metrics::QUERY_LOG_DROPPED_TOTAL, &[]).unwrap();
    // 40 entries; the channel holds 4 and the writer holds 1 while it waits on the FIFO.
    assert!((35.0..=36.0).contains(&dropped), "dropped {dropped}");
    assert_metric(
        &m,
        metrics::QUERIES_TOTAL,
        &[("zone", "lo"), ("outcome", "cached")],
        39.0,
    );

    // A reader appears: what was queued is written, and shutdown flushes.
    let reader = std::thread::spawn(move || std::fs::read_to_string(&fifo).unwrap());
    pg.app.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the writer never closed the FIFO"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = reader.join().unwrap();
    let n = text.lines().count() as f64;
    assert_eq!(
        n + dropped,
        40.0,
        "every entry is either written or counted as dropped"
    );
}

// ------------------------------------------------------------------------------------------
// Dashboard and alert rules
// ------------------------------------------------------------------------------------------

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Metric names used in a PromQL expression (`pixelguard_*`, histogram suffixes removed).
fn names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    // Bounded by the expression's length.
    while let Some(i) = rest.find("pixelguard_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = &tail[..end];
        for suffix in ["_bucket", "_count", "_sum"] {
            if let Some(n) = name.strip_suffix(suffix)
                && metrics::ALL_NAMES.contains(&n)
            {
                name = n;
            }
        }
        out.push(name.to_owned());
        rest = &tail[end..];
    }
    out
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "expr" {
                    out.push(x.as_str().unwrap().to_owned());
                } else {
                    exprs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn grafana_dashboard_uses_only_known_metrics() {
    let text = std::fs::read_to_string(repo("deploy/grafana/pixelguard.json")).unwrap();
    let d: Value = serde_json::from_str(&text).unwrap();
    let mut all = Vec::new();
    exprs(&d, &mut all);
    assert!(all.len() >= 12, "{} expressions", all.len());
    let mut used = BTreeSet::new();
    for e in &all {
        let names = names_in(e);
        assert!(
            !names.is_empty(),
            "expression without a pixelguard metric: {e}"
        );
        for n in names {
            assert!(
                metrics::ALL_NAMES.contains(&n.as_str()),
                "{n} (in {e}) is not a metric"
            );
            used.insert(n);
        }
    }
    for must in [
        metrics::TRACKER_ATTEMPTS_TOTAL,
        metrics::QUERIES_TOTAL,
        metrics::REQUEST_DURATION_SECONDS,
        metrics::CACHE_HITS_TOTAL,
        metrics::UPSTREAM_QUERIES_TOTAL,
        metrics::LIST_LAST_SUCCESS_TIMESTAMP_SECONDS,
        metrics::LIST_UPDATE_FAILURES_TOTAL,
        metrics::QUERY_LOG_DROPPED_TOTAL,
    ] {
        assert!(used.contains(must), "dashboard has no panel on {must}");
    }
    // The datasource is a variable, and every panel uses it.
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["name"] == "datasource")
    );
    for p in d["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {}",
            p["title"]
        );
    }
    assert!(text.contains("histogram_quantile"), "latency quantiles");
    assert!(!text.contains(concat!("/wo", "rk/")), "no machine paths");
}

#[test]
fn alert_rules_use_only_known_metrics() {
    let path = repo("deploy/prometheus/alerts.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Minimal YAML reading (no YAML dependency): `- alert: Name` starts a rule, `expr:` holds a
    // one-line expression or a `|` block of more-indented lines.
    let mut alerts = Vec::new();
    let mut exprs: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        if let Some(a) = l.strip_prefix("- alert:") {
            alerts.push(a.trim().to_owned());
        }
        if let Some(e) = l.strip_prefix("expr:") {
            let e = e.trim();
            if e == "|" || e == ">" || e == "|-" || e == ">-" {
                let indent = lines[i].len() - l.len();
                let mut block = String::new();
                while i + 1 < lines.len()
                    && (lines[i + 1].trim().is_empty()
                        || lines[i + 1].len() - lines[i + 1].trim_start().len() > indent)
                {
                    i += 1;
                    block.push_str(lines[i].trim());
                    block.push(' ');
                }
                exprs.push(block);
            } else {
                exprs.push(e.to_owned());
            }
        }
        i += 1;
    }
    assert_eq!(alerts.len(), exprs.len(), "one expr per alert");
    for want in [
        "PixelguardListStale",
        "PixelguardUpstreamFailures",
        "PixelguardReloadFailed",
        "PixelguardQueryLogDrops",
        "PixelguardNoQueries",
    ] {
        assert!(
            alerts.iter().any(|a| a == want),
            "alert {want} missing: {alerts:?}"
        );
    }
    for e in &exprs {
        let names = names_in(e);
        assert!(!names.is_empty(), "{e}");
        for n in names {
            assert!(metrics::ALL_NAMES.contains(&n.as_str()), "{n} in {e}");
        }
    }
    assert!(
        text.contains("36 * 3600") || text.contains("129600"),
        "stale after 36 h"
    );
    assert!(!text.contains('\t'), "YAML forbids tabs");
    // promtool checks the file for real in scripts/promtool-check.sh, which .ci/run runs after
    // installing promtool and which fails when promtool is missing: a plain `cargo test` needs
    // only the Rust toolchain, and CI cannot skip the check silently.
    let script = std::fs::read_to_string(repo("scripts/promtool-check.sh")).unwrap();
    assert!(
        script.contains("promtool check rules deploy/prometheus/alerts.yml"),
        "the promtool check covers this file"
    );
    let ci = std::fs::read_to_string(repo(".ci/run")).unwrap();
    assert!(
        ci.contains("env -u PIXELGUARD_SKIP_PROMTOOL bash scripts/promtool-check.sh"),
        "CI runs the promtool check without its opt-out"
    );
}

/// `pixelguard_internal_errors_total` (panics contained in a listener) is exported from the
/// start, one series per place at 0, and stays 0 while the server answers on the fast path
/// (blocked), the full path (forwarded) and TCP.
#[tokio::test]
async fn internal_errors_are_exported_at_zero() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&zones_config(auth.addr()), &[("plain.txt", PLAIN)]).await;
    let m = scrape(&pg).await;
    assert!(
        m.contains(&format!("# HELP {} ", metrics::INTERNAL_ERRORS_TOTAL)),
        "{m}"
    );
    assert!(m.contains(&format!(
        "# TYPE {} counter",
        metrics::INTERNAL_ERRORS_TOTAL
    )));
    for kind in metrics::INTERNAL_ERROR_KINDS {
        assert_metric(&m, metrics::INTERNAL_ERRORS_TOTAL, &[("kind", kind)], 0.0);
    }
    assert_eq!(
        ask(&pg, 2, "connect.facebook.net.", RecordType::A).await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 2, "www.example.test.", RecordType::A).await,
        ResponseCode::NoError
    );
    let tcp = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            tcp: true,
            ..from(2)
        },
    )
    .await
    .unwrap();
    assert_eq!(tcp.metadata.response_code, ResponseCode::NoError);
    let m = scrape(&pg).await;
    for kind in metrics::INTERNAL_ERROR_KINDS {
        assert_metric(&m, metrics::INTERNAL_ERRORS_TOTAL, &[("kind", kind)], 0.0);
    }
    pg.app.shutdown().await;
}
