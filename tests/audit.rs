//! `pixelguard audit` end to end: the real binary crawls a fixture police website served by an
//! in-process HTTP server on 127.0.0.1 (tests/data/audit/site, plus a page that hangs, an
//! endless page and redirects), resolves the site's first-party hosts through an in-process
//! authoritative DNS server on 127.0.0.1 (CNAME cloaking), and reports as table, JSON and SARIF.
//! Saved-HTML and HAR inputs (tests/data/audit/site.har) must give the same findings.
//!
//! Network rule: every socket here is on 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::Value;
use support::AuthServer;

/// The organisation's DNS zone: two Adobe Analytics CNAME-cloaked hosts and a plain one.
const ZONE: &str = "$ORIGIN force.test.
$TTL 300
@        3600 IN SOA ns1.force.test. hostmaster.force.test. 2026120101 7200 900 1209600 300
@        3600 IN NS ns1.force.test.
ns1      300 IN A 192.0.2.53
www      300 IN A 192.0.2.80
metrics  300 IN CNAME forcetest.sc.omtrdc.net.
smetrics 300 IN CNAME forcetest.sc.omtrdc.net.
";

const META_ID: &str = "1234567890123456";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/audit")
}

fn site_dir() -> PathBuf {
    data_dir().join("site")
}

// ---------------------------------------------------------------------------------------------
// The fixture web server

struct Site {
    base: String,
    _task: tokio::task::JoinHandle<()>,
}

async fn file(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let name = if path.is_empty() { "index.html" } else { path };
    if name.contains('/') || name.contains("..") || !name.ends_with(".html") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    match std::fs::read_to_string(site_dir().join(name)) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// An endless page (capped at 64 MiB so that nothing runs forever): a Hotjar tag in the head,
/// then 64 KiB chunks of paragraphs.
async fn huge() -> Response {
    let head = "<!doctype html><html><head><meta charset=\"utf-8\"><title>News archive | Force Test Police</title>\
        <script async src=\"https://static.hotjar.com/c/hotjar-3412345.js?sv=6\"></script></head><body><main><h1>News archive</h1>\n"
        .to_owned();
    let chunk =
        "<p>Archived item: road closures, community meetings and new neighbourhood teams.</p>\n"
            .repeat(800);
    let stream =
        futures_util::stream::iter(std::iter::once(head).chain(std::iter::repeat_n(chunk, 800)))
            .map(|s| Ok::<_, std::convert::Infallible>(Bytes::from(s)));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// A page whose Content-Security-Policy header allows trackers it does not load itself.
async fn policy_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' https://*.hotjar.com https://www.googletagmanager.com; connect-src 'self' https://*.google-analytics.com",
            ),
        ],
        "<!doctype html><title>Privacy notice</title><main><h1>Privacy notice</h1><p>How we use cookies.</p></main>",
    )
        .into_response()
}

async fn start_site() -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    // Off-site redirect target: another loopback address, so nothing leaves the machine even if
    // the crawler wrongly followed it.
    let offsite = format!("http://127.0.0.2:{}/", addr.port());
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .route("/huge", get(huge))
        .route("/policy.html", get(policy_page))
        .route(
            "/old-report",
            get(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/report-a-crime.html")],
                )
            }),
        )
        .route(
            "/offsite",
            get(move || {
                let to = offsite.clone();
                async move { (StatusCode::FOUND, [(header::LOCATION, to)]) }
            }),
        )
        .fallback(get(file));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Site {
        base: format!("http://{addr}"),
        _task: task,
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

async fn pixelguard(args: Vec<String>) -> Run {
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

/// A config folder: the DNS upstream for uncloaking, a normal and a strict zone.
fn config(dns: SocketAddr) -> tempfile::TempDir {
    assert!(dns.ip().is_loopback());
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstream]\nservers = [\"{dns}\"]\ntimeout = \"500ms\"\ndeadline = \"1500ms\"\n\n\
         [lists.trackers]\nsource = \"builtin:trackers\"\n\n\
         [zones.staff]\nnetworks = [\"10.10.0.0/16\"]\nblock = [\"trackers\"]\nmode = \"enforce\"\n\n\
         [zones.kiosk]\nnetworks = [\"10.20.0.0/16\"]\nblock = [\"trackers\"]\nmode = \"enforce\"\ncatalogue = \"strict\"\n"
    );
    std::fs::write(dir.path().join("pixelguard.toml"), text).unwrap();
    dir
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn cfg_path(dir: &tempfile::TempDir) -> String {
    dir.path().join("pixelguard.toml").display().to_string()
}

/// The standard crawl of the fixture site.
async fn crawl_site(
    site: &Site,
    dns: &AuthServer,
    format: &str,
    extra: &[&str],
) -> (Run, tempfile::TempDir) {
    let cfg = config(dns.addr());
    let mut a = args(&[
        "--config",
        &cfg_path(&cfg),
        "audit",
        &format!("{}/", site.base),
        "--site-domain",
        "force.test",
        "--format",
        format,
        "--timeout",
        "1s",
        "--delay",
        "0s",
        "--max-body",
        "1MiB",
    ]);
    a.extend(args(extra));
    (pixelguard(a).await, cfg)
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

fn page<'a>(report: &'a Value, suffix: &str) -> &'a Value {
    report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["url"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no page ending in {suffix}"))
}

fn finding<'a>(page: &'a Value, vendor: &str, host: &str) -> &'a Value {
    page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["vendor_id"] == vendor && f["host"] == host)
        .unwrap_or_else(|| {
            panic!(
                "no {vendor} finding for {host} on {}: {:#}",
                page["url"], page["findings"]
            )
        })
}

fn ids(f: &Value) -> Vec<(String, String)> {
    f["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A page's findings as comparable tuples: (vendor, host, sorted ids, severity).
fn finding_set(page: &Value) -> BTreeSet<(String, String, Vec<String>, String)> {
    page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut i: Vec<String> = ids(f)
                .into_iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            i.sort();
            (
                f["vendor_id"].as_str().unwrap().to_owned(),
                f["host"].as_str().unwrap().to_owned(),
                i,
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_finds_trackers_on_the_fixture_site() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let began = Instant::now();
    let (run, _cfg) = crawl_site(&site, &dns, "json", &[]).await;
    let elapsed = began.elapsed();
    assert_eq!(
        run.code, 4,
        "a tracker on a sensitive page fails by default; stderr: {}",
        run.stderr
    );
    let r = run.json();

    // Crawl: every page once, the hanging one timed out, the endless one cut, limits reported.
    let urls: Vec<String> = r["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["url"].as_str().unwrap().to_owned())
        .collect();
    let paths: BTreeSet<String> = urls
        .iter()
        .map(|u| u.trim_start_matches(&site.base).to_owned())
        .collect();
    assert_eq!(urls.len(), paths.len(), "each page once: {urls:?}");
    assert_eq!(
        paths,
        set(&[
            "/",
            "/report-a-crime.html",
            "/news.html",
            "/careers.html",
            "/about.html",
            "/opening-hours.html",
            "/cycle-a.html",
            "/cycle-b.html",
            "/slow",
            "/huge",
        ])
    );
    assert!(
        page(&r, "/slow")["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{:#}",
        page(&r, "/slow")
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "the hanging page must not stall the crawl: {elapsed:?}"
    );
    let huge = page(&r, "/huge");
    assert!(
        huge["notes"][0]
            .as_str()
            .unwrap()
            .contains("larger than 1 MiB"),
        "{:#}",
        huge["notes"]
    );
    let hotjar = finding(huge, "hotjar", "static.hotjar.com");
    assert_eq!(
        ids(hotjar),
        vec![("hotjar_site".to_owned(), "3412345".to_owned())]
    );
    assert_eq!(hotjar["severity"], "high");
    let crawl = &r["crawl"];
    assert_eq!(crawl["pages"], 10);
    assert_eq!(crawl["failed"], 1);
    assert_eq!(crawl["truncated"], 1);
    assert_eq!(crawl["limit_reached"], false);
    // Off-site: gov.example (index), jobs.recruit.example (careers) and the GTM noscript iframe
    // (news; frames are followed when same-site). The PDF is never fetched.
    assert_eq!(crawl["not_followed"]["off_site"], 3, "{crawl:#}");
    let skipped: Vec<String> = crawl["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("redirects off-site to http://127.0.0.2:")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|s| s.ends_with("/report-a-crime.html, already audited")),
        "/old-report redirects to a page already audited: {skipped:?}"
    );

    // The crime-report form: Meta Pixel, sensitive, critical, with the pixel ID.
    let report = page(&r, "/report-a-crime.html");
    assert_eq!(report["sensitive"], true);
    let reasons = strings(&report["sensitive_reasons"]).join("; ");
    assert!(
        reasons.contains("URL contains \"report a crime\""),
        "{reasons}"
    );
    assert!(
        reasons.contains("\"rape\"") && reasons.contains("\"sexual assault\""),
        "{reasons}"
    );
    assert!(reasons.contains("form collects 4 fields: text \"name\", email \"email\", tel \"phone\", textarea \"details\""), "{reasons}");
    let meta = finding(report, "meta", "connect.facebook.net");
    assert_eq!(meta["severity"], "critical");
    assert_eq!(meta["category"], "advertising");
    assert_eq!(
        ids(meta),
        vec![("meta_pixel".to_owned(), META_ID.to_owned())]
    );
    let kinds: BTreeSet<String> = meta["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, set(&["inline_script", "snippet", "csp_meta"]));
    assert_eq!(meta["policy"]["catalogue"], "block");
    assert_eq!(
        strings(&meta["policy"]["blocked_in"]),
        vec!["kiosk", "staff"]
    );
    assert!(meta["line"].as_u64().unwrap() > 5);
    // The noscript image beacon: a path on www.facebook.com, which only a strict zone blocks
    // (as part of the whole facebook.com service).
    let tr = finding(report, "meta", "www.facebook.com");
    assert_eq!(tr["severity"], "critical");
    assert_eq!(ids(tr), vec![("meta_pixel".to_owned(), META_ID.to_owned())]);
    assert_eq!(tr["policy"]["catalogue"], "shared");
    assert_eq!(strings(&tr["policy"]["blocked_in"]), vec!["kiosk"]);
    // The CSP also allows *.google-analytics.com, which the page does not load: medium only.
    let csp = finding(report, "google", "*.google-analytics.com");
    assert_eq!(csp["severity"], "medium");
    assert_eq!(csp["evidence"][0]["kind"], "csp_meta");

    // GTM + GA4.
    let news = page(&r, "/news.html");
    assert_eq!(news["sensitive"], false, "{:#}", news["sensitive_reasons"]);
    let gtm = finding(news, "google", "www.googletagmanager.com");
    assert_eq!(
        ids(gtm),
        vec![
            ("ga4".to_owned(), "G-8XK2M4PL1Q".to_owned()),
            ("gtm_container".to_owned(), "GTM-P7X2Q9K".to_owned())
        ]
    );
    assert_eq!(gtm["severity"], "medium");
    assert_eq!(gtm["category"], "tag_manager");
    assert_eq!(gtm["policy"]["catalogue"], "caution");
    assert_eq!(strings(&gtm["policy"]["blocked_in"]), vec!["kiosk"]);
    let ga = finding(news, "google", "www.google-analytics.com");
    assert_eq!(ids(ga), vec![("ga4".to_owned(), "G-8XK2M4PL1Q".to_owned())]);
    assert_eq!(ga["category"], "analytics");
    assert_eq!(strings(&ga["policy"]["blocked_in"]), vec!["kiosk", "staff"]);
    assert_eq!(
        news["findings"].as_array().unwrap().len(),
        2,
        "fonts.googleapis.com is not a tracker: {:#}",
        news["findings"]
    );
    assert!(news["notes"][0].as_str().unwrap().contains("GTM-P7X2Q9K"));

    // Recruitment page with the LinkedIn Insight Tag.
    let careers = page(&r, "/careers.html");
    assert_eq!(
        careers["sensitive"], false,
        "{:#}",
        careers["sensitive_reasons"]
    );
    for host in ["snap.licdn.com", "px.ads.linkedin.com"] {
        let li = finding(careers, "linkedin", host);
        assert_eq!(
            ids(li),
            vec![("linkedin_partner".to_owned(), "4567890".to_owned())]
        );
        assert_eq!(li["severity"], "high");
    }

    // CNAME cloaking, found through the loopback DNS server.
    let about = page(&r, "/about.html");
    for host in ["metrics.force.test", "smetrics.force.test"] {
        let c = finding(about, "adobe_experience_cloud", host);
        assert_eq!(c["vendor"], "Adobe Experience Cloud");
        assert_eq!(c["category"], "cname_cloak");
        assert_eq!(c["severity"], "high");
        assert_eq!(strings(&c["cloaked_via"]), vec!["forcetest.sc.omtrdc.net"]);
        assert_eq!(c["policy"]["catalogue"], "cloak_target");
        assert_eq!(strings(&c["policy"]["blocked_in"]), vec!["kiosk", "staff"]);
        assert_eq!(
            c["evidence"][0]["detail"],
            format!("CNAME {host} → forcetest.sc.omtrdc.net")
        );
    }
    assert_eq!(about["findings"].as_array().unwrap().len(), 2);
    assert!(dns.saw_name("metrics.force.test.") && dns.saw_name("www.force.test."));
    assert_eq!(r["uncloak"]["checked"], 3);
    assert_eq!(r["uncloak"]["cloaked"], 2);

    // Clean pages: no trackers, not sensitive (footer text and header search forms are chrome).
    for p in ["/opening-hours.html", "/cycle-a.html", "/cycle-b.html"] {
        assert_eq!(page(&r, p)["findings"].as_array().unwrap().len(), 0, "{p}");
        assert_eq!(page(&r, p)["sensitive"], false, "{p}");
    }
    let index = &r["pages"][0];
    assert_eq!(index["url"], format!("{}/", site.base));
    assert_eq!(
        index["sensitive"], false,
        "{:#}",
        index["sensitive_reasons"]
    );
    assert_eq!(index["findings"].as_array().unwrap().len(), 0);

    // Totals.
    let s = &r["summary"];
    assert_eq!(s["pages"], 10);
    assert_eq!(s["sensitive_pages"], 1);
    assert_eq!(s["pages_with_trackers"], 5);
    assert_eq!(s["critical"], 2);
    assert_eq!(s["worst"], "critical");
    let meta_vendor = r["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vendor_id"] == "meta")
        .unwrap();
    assert_eq!(meta_vendor["sensitive_pages"], 1);
    assert_eq!(r["vendors"][0]["vendor_id"], "meta", "worst first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_field_names_are_stable() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let (run, _cfg) = crawl_site(&site, &dns, "json", &["--depth", "1"]).await;
    let r = run.json();
    assert_eq!(r["schema"], "pixelguard.audit/1");
    assert_eq!(
        keys(&r),
        set(&[
            "schema",
            "tool",
            "start_urls",
            "inputs",
            "site_domains",
            "summary",
            "crawl",
            "uncloak",
            "vendors",
            "pages"
        ])
    );
    assert_eq!(keys(&r["tool"]), set(&["name", "version"]));
    assert_eq!(
        keys(&r["summary"]),
        set(&[
            "pages",
            "pages_failed",
            "sensitive_pages",
            "pages_with_trackers",
            "findings",
            "critical",
            "high",
            "medium",
            "low",
            "worst"
        ])
    );
    assert_eq!(
        keys(&r["crawl"]),
        set(&[
            "requests",
            "pages",
            "failed",
            "truncated",
            "max_pages",
            "depth",
            "limit_reached",
            "not_followed",
            "skipped",
            "elapsed_ms"
        ])
    );
    assert_eq!(
        keys(&r["crawl"]["not_followed"]),
        set(&["depth", "max_pages", "off_site"])
    );
    assert_eq!(
        keys(&r["uncloak"]),
        set(&[
            "enabled",
            "upstreams",
            "checked",
            "cloaked",
            "failed",
            "note"
        ])
    );
    assert_eq!(
        keys(&r["vendors"][0]),
        set(&[
            "vendor_id",
            "vendor",
            "categories",
            "hosts",
            "ids",
            "pages",
            "sensitive_pages",
            "findings",
            "worst"
        ])
    );
    let p = page(&r, "/report-a-crime.html");
    assert_eq!(
        keys(p),
        set(&[
            "url",
            "source",
            "depth",
            "status",
            "title",
            "sensitive",
            "sensitive_reasons",
            "error",
            "notes",
            "findings"
        ])
    );
    assert_eq!(p["source"], "crawl");
    assert_eq!(p["depth"], 1);
    assert_eq!(p["status"], 200);
    let f = &p["findings"][0];
    assert_eq!(
        keys(f),
        set(&[
            "severity",
            "vendor_id",
            "vendor",
            "category",
            "host",
            "ids",
            "evidence",
            "cloaked_via",
            "policy",
            "line"
        ])
    );
    assert_eq!(keys(&f["ids"][0]), set(&["kind", "id"]));
    assert_eq!(keys(&f["evidence"][0]), set(&["kind", "detail"]));
    assert_eq!(
        keys(&f["policy"]),
        set(&["catalogue", "rule", "blocked_in", "logged_in"])
    );
    for sev in r["pages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["findings"].as_array().unwrap())
        .map(|f| f["severity"].as_str().unwrap())
    {
        assert!(["critical", "high", "medium", "low"].contains(&sev));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarif_is_minimally_valid() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let (run, _cfg) =
        crawl_site(&site, &dns, "sarif", &["--depth", "1", "--fail-on", "none"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = run.json();
    assert_eq!(s["version"], "2.1.0");
    assert!(s["$schema"].as_str().unwrap().contains("sarif"));
    let run0 = &s["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "pixelguard");
    let rules: Vec<String> = run0["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let results = run0["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for res in results {
        let rule = res["ruleId"].as_str().unwrap();
        assert!(rules.contains(&rule.to_owned()), "{rule} is declared");
        assert_eq!(rules[res["ruleIndex"].as_u64().unwrap() as usize], rule);
        assert!(["error", "warning", "note"].contains(&res["level"].as_str().unwrap()));
        assert!(!res["message"]["text"].as_str().unwrap().is_empty());
        let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(uri.starts_with(&site.base), "{uri}");
    }
    let meta = results
        .iter()
        .find(|r| r["properties"]["host"] == "connect.facebook.net")
        .expect("the Meta Pixel is a result");
    assert_eq!(meta["ruleId"], "PGA001", "tracker on a sensitive page");
    assert_eq!(meta["level"], "error");
    assert!(meta["message"]["text"].as_str().unwrap().contains(META_ID));
    assert!(
        meta["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap()
            > 1
    );
    let cloaked = results
        .iter()
        .find(|r| r["properties"]["host"] == "metrics.force.test")
        .unwrap();
    assert_eq!(cloaked["ruleId"], "PGA002");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_report_of_the_fixture_site() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let (run, _cfg) = crawl_site(&site, &dns, "table", &[]).await;
    assert_eq!(run.code, 4);
    // Shown with --nocapture; the README's example comes from here.
    println!("{}", run.stdout);
    let t = &run.stdout;
    assert!(t.starts_with("pixelguard audit of "), "{t}");
    assert!(t.contains("10 pages, 1 sensitive, 5 with trackers"), "{t}");
    assert!(
        t.contains("/report-a-crime.html  \"Report a crime online | Force Test Police\""),
        "{t}"
    );
    assert!(
        t.contains("  SENSITIVE: URL contains \"report a crime\""),
        "{t}"
    );
    let meta_line = t
        .lines()
        .find(|l| l.contains("connect.facebook.net") && l.contains("critical"))
        .unwrap();
    assert!(
        meta_line.contains("Meta Pixel 1234567890123456")
            && meta_line.contains("block: blocked in kiosk, staff"),
        "{meta_line}"
    );
    assert!(
        t.contains("cloaked (uncloaking): blocked in kiosk, staff"),
        "{t}"
    );
    assert!(
        t.contains("No trackers found (4): /, /opening-hours.html, /cycle-a.html, /cycle-b.html"),
        "{t}"
    );
    assert!(t.contains("/slow: timed out after 1s"), "{t}");
    assert!(
        t.contains("Uncloaking: 3 first-party hosts under force.test resolved via 127.0.0.1:"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_fail_on() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let cfg = config(dns.addr());
    let c = cfg_path(&cfg);
    let base = &site.base;
    let one = |path: &str, extra: &[&str]| {
        let mut a = args(&[
            "--config",
            &c,
            "audit",
            &format!("{base}{path}"),
            "--depth",
            "0",
            "--timeout",
            "1s",
            "--format",
            "json",
        ]);
        a.extend(args(extra));
        a
    };
    // A clean page passes at every level.
    for level in ["sensitive", "any", "none"] {
        assert_eq!(
            pixelguard(one("/opening-hours.html", &["--fail-on", level]))
                .await
                .code,
            0,
            "{level}"
        );
    }
    // Trackers on an ordinary page fail only --fail-on any.
    assert_eq!(pixelguard(one("/news.html", &[])).await.code, 0);
    assert_eq!(
        pixelguard(one("/news.html", &["--fail-on", "any"]))
            .await
            .code,
        4
    );
    // A tracker on a sensitive page fails the default and --fail-on any, not none.
    assert_eq!(pixelguard(one("/report-a-crime.html", &[])).await.code, 4);
    assert_eq!(
        pixelguard(one("/report-a-crime.html", &["--fail-on", "any"]))
            .await
            .code,
        4
    );
    assert_eq!(
        pixelguard(one("/report-a-crime.html", &["--fail-on", "none"]))
            .await
            .code,
        0
    );
    // Nothing auditable: 3.
    let dead = pixelguard(one("/slow", &[])).await;
    assert_eq!(dead.code, 3, "{}", dead.stdout);
    // Usage errors: 2.
    assert_eq!(pixelguard(args(&["--config", &c, "audit"])).await.code, 2);
    assert_eq!(
        pixelguard(args(&["--config", &c, "audit", "ftp://x.test/"]))
            .await
            .code,
        2
    );
    assert_eq!(
        pixelguard(args(&[
            "--config",
            &c,
            "audit",
            "--input",
            "/nonexistent/page.html"
        ]))
        .await
        .code,
        2
    );
    assert_eq!(
        pixelguard(args(&[
            "--config",
            &c,
            "audit",
            "--input",
            "x.html",
            "--max-body",
            "12 parsecs"
        ]))
        .await
        .code,
        2
    );
    // A broken config: 1.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("bad.toml"), "[upstream]\nservers = 7\n").unwrap();
    let bad_path = bad.path().join("bad.toml").display().to_string();
    assert_eq!(
        pixelguard(args(&["--config", &bad_path, "audit", "--input", "x.html"]))
            .await
            .code,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_limits_depth_and_cycles() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let cfg = config(dns.addr());
    let c = cfg_path(&cfg);
    let base = &site.base;
    let run = |start: &str, extra: &[&str]| {
        let mut a = args(&[
            "--config",
            &c,
            "audit",
            &format!("{base}{start}"),
            "--format",
            "json",
            "--timeout",
            "1s",
            "--delay",
            "0s",
            "--fail-on",
            "none",
            "--no-uncloak",
        ]);
        a.extend(args(extra));
        pixelguard(a)
    };
    // A cycle (a → b → a, self links, a fragment link) ends, each page counted once.
    let r = run("/cycle-a.html", &["--depth", "50"]).await.json();
    let urls: Vec<String> = r["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        urls,
        vec![
            format!("{base}/cycle-a.html"),
            format!("{base}/cycle-b.html")
        ]
    );
    assert_eq!(r["crawl"]["requests"], 2);
    // --max-pages.
    let r = run("/", &["--max-pages", "3"]).await.json();
    assert_eq!(r["crawl"]["pages"], 3);
    assert_eq!(r["crawl"]["requests"], 3);
    assert_eq!(r["crawl"]["limit_reached"], true);
    assert!(
        r["crawl"]["not_followed"]["max_pages"].as_u64().unwrap() >= 5,
        "{:#}",
        r["crawl"]
    );
    // --depth 0: the start page only; its same-site links are counted, not followed.
    let r = run("/", &["--depth", "0"]).await.json();
    assert_eq!(r["pages"].as_array().unwrap().len(), 1);
    assert_eq!(r["crawl"]["not_followed"]["depth"], 10, "{:#}", r["crawl"]);
    assert_eq!(r["uncloak"]["enabled"], false);
    // --depth 1 from the index reaches the pages it links to and no further.
    let r = run("/", &["--depth", "1"]).await.json();
    assert!(
        r["pages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["depth"].as_u64().unwrap() <= 1)
    );
    assert!(
        !r["pages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["url"].as_str().unwrap().ends_with("cycle-b.html"))
    );
    // Concurrency 1 with a delay spaces the requests.
    let began = Instant::now();
    let r = run("/cycle-a.html", &["--concurrency", "1", "--delay", "300ms"])
        .await
        .json();
    assert_eq!(r["crawl"]["pages"], 2);
    assert!(began.elapsed() >= Duration::from_millis(300));
}

fn input_args(dns: SocketAddr, cfg: &tempfile::TempDir, inputs: &[PathBuf]) -> Vec<String> {
    let _ = dns;
    let mut a = args(&[
        "--config",
        &cfg_path(cfg),
        "audit",
        "--site-domain",
        "force.test",
        "--format",
        "json",
        "--fail-on",
        "none",
    ]);
    for i in inputs {
        a.push("--input".to_owned());
        a.push(i.display().to_string());
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_html_and_har_give_the_same_findings() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let (crawl, cfg) = crawl_site(&site, &dns, "json", &[]).await;
    let crawl = crawl.json();
    let names = [
        "report-a-crime.html",
        "news.html",
        "careers.html",
        "about.html",
    ];
    let html: Vec<PathBuf> = names.iter().map(|n| site_dir().join(n)).collect();
    let saved = pixelguard(input_args(dns.addr(), &cfg, &html)).await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let saved = saved.json();
    let har = pixelguard(input_args(dns.addr(), &cfg, &[data_dir().join("site.har")])).await;
    assert_eq!(har.code, 0, "{}", har.stderr);
    let har = har.json();
    assert_eq!(saved["pages"].as_array().unwrap().len(), 4);
    assert_eq!(har["pages"].as_array().unwrap().len(), 4);
    for name in names {
        let suffix = format!("/{name}");
        let from_crawl = finding_set(page(&crawl, &suffix));
        assert!(!from_crawl.is_empty(), "{name}");
        let s = page(&saved, &suffix);
        let h = page(&har, &suffix);
        assert_eq!(s["source"], "html");
        assert_eq!(h["source"], "har");
        assert_eq!(finding_set(s), from_crawl, "saved HTML {name}");
        assert_eq!(finding_set(h), from_crawl, "HAR {name}");
        assert_eq!(s["sensitive"], page(&crawl, &suffix)["sensitive"]);
        assert_eq!(h["sensitive"], page(&crawl, &suffix)["sensitive"]);
    }
    // The HAR adds what the browser really requested as evidence.
    let meta = finding(
        page(&har, "/report-a-crime.html"),
        "meta",
        "connect.facebook.net",
    );
    assert!(
        meta["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "network_request")
    );
    // Saved HTML: SARIF locations are the files, so code scanning maps them to the repository.
    let mut a = input_args(dns.addr(), &cfg, &html[..1]);
    a.extend(args(&["--format", "sarif"]));
    let s = pixelguard(a).await.json();
    let uri =
        s["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(
        uri.ends_with("tests/data/audit/site/report-a-crime.html"),
        "{uri}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn har_shows_trackers_loaded_at_run_time() {
    // A page whose HTML names only GTM; the capture shows what the container then loaded.
    let dir = tempfile::tempdir().unwrap();
    let har = serde_json::json!({"log": {"version": "1.2", "pages": [{"id": "p"}], "entries": [
        {"pageref": "p", "request": {"url": "https://www.force.test/victim-support.html"},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "text/html",
            "text": "<title>Victim support</title><script async src=\"https://www.googletagmanager.com/gtm.js?id=GTM-ABCD123\"></script><h1>Victim support</h1>"}}},
        {"pageref": "p", "request": {"url": "https://www.googletagmanager.com/gtm.js?id=GTM-ABCD123"},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/javascript"}}},
        {"pageref": "p", "request": {"url": "https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=C4ABCDEFGH12345678"},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/javascript"}}},
        {"pageref": "p", "request": {"url": "https://region1.analytics.google.com/g/collect?v=2&tid=G-XYZ"},
         "response": {"status": 204, "headers": [], "content": {"mimeType": "text/plain"}}}
    ]}});
    let path = dir.path().join("capture.har");
    std::fs::write(&path, har.to_string()).unwrap();
    let run = pixelguard(args(&[
        "audit",
        "--no-uncloak",
        "--format",
        "json",
        "--input",
        &path.display().to_string(),
    ]))
    .await;
    assert_eq!(
        run.code, 4,
        "sensitive page with trackers; stderr: {}",
        run.stderr
    );
    let r = run.json();
    let p = &r["pages"][0];
    assert_eq!(p["sensitive"], true);
    let tiktok = finding(p, "tiktok", "analytics.tiktok.com");
    assert_eq!(tiktok["severity"], "critical");
    assert_eq!(
        ids(tiktok),
        vec![("tiktok_pixel".to_owned(), "C4ABCDEFGH12345678".to_owned())]
    );
    assert_eq!(tiktok["evidence"][0]["kind"], "network_request");
    assert_eq!(
        finding(p, "google", "region1.analytics.google.com")["severity"],
        "critical"
    );
    assert_eq!(r["uncloak"]["enabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csp_header_allowing_trackers_is_reported() {
    let site = start_site().await;
    let dns = AuthServer::start("force.test.", ZONE);
    let cfg = config(dns.addr());
    let run = pixelguard(args(&[
        "--config",
        &cfg_path(&cfg),
        "audit",
        &format!("{}/policy.html", site.base),
        "--depth",
        "0",
        "--format",
        "json",
        "--fail-on",
        "any",
    ]))
    .await;
    assert_eq!(run.code, 4);
    let r = run.json();
    let p = &r["pages"][0];
    let hosts: BTreeSet<String> = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["host"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        hosts,
        set(&[
            "*.hotjar.com",
            "www.googletagmanager.com",
            "*.google-analytics.com"
        ])
    );
    for f in p["findings"].as_array().unwrap() {
        assert_eq!(f["severity"], "low", "an allowance alone is low: {f:#}");
        assert_eq!(f["evidence"][0]["kind"], "csp_header");
    }
    assert_eq!(
        finding(p, "hotjar", "*.hotjar.com")["evidence"][0]["detail"],
        "script-src allows https://*.hotjar.com"
    );
}

#[test]
fn har_fixture_matches_the_site_pages() {
    let har: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir().join("site.har")).unwrap())
            .unwrap();
    let mut checked = 0;
    for e in har["log"]["entries"].as_array().unwrap() {
        let Some(text) = e["response"]["content"]["text"].as_str() else {
            continue;
        };
        let url = e["request"]["url"].as_str().unwrap();
        let name = url.rsplit('/').next().unwrap();
        let text = if e["response"]["content"]["encoding"] == "base64" {
            String::from_utf8(pixelguard::audit::input::base64_decode(text).unwrap()).unwrap()
        } else {
            text.to_owned()
        };
        let file = std::fs::read_to_string(site_dir().join(name)).unwrap();
        assert_eq!(
            text, file,
            "site.har is stale for {name}: run tests/data/audit/make-har.py in tests/data/audit"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}
