//! The CSP report endpoint end to end: a real pixelguard on loopback with `[csp_reports]`, real
//! HTTP (reqwest) posting report bodies shaped like Chromium's and Firefox's (both the legacy
//! `application/csp-report` and the Reporting API's `application/reports+json`), then
//! `/metrics` scraped from the admin server. Bad input (oversized, broken, wrong media type, a
//! flood from one address, a host outside the catalogue) gets its status code and its counter,
//! and no personal detail (query strings, addresses) reaches the metrics. HTTPS with a
//! certificate made by rcgen. Config errors name file:line.
//!
//! Network rule: every socket here is on 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pixelguard::app::ConfigSource;
use pixelguard::config::Overrides;
use support::pg;

const LEGACY: &str = "application/csp-report";
const API: &str = "application/reports+json";

fn config(extra: &str) -> String {
    let up: SocketAddr = "127.0.0.1:9".parse().unwrap();
    format!(
        "{}[csp_reports]\nlisten = \"127.0.0.1:0\"\nsites = [\"www.force.test\"]\nmax_body = \"2KiB\"\nrate = 1\nburst = 20\n{extra}\n",
        pg::base(&[up])
    )
}

fn client(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Posts `body` as `ty`; the status and the answer's body.
async fn post(c: &reqwest::Client, url: &str, ty: &str, body: String) -> (u16, String) {
    let r = c
        .post(url)
        .header("content-type", ty)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn legacy(document: &str, blocked: &str, disposition: &str) -> String {
    serde_json::json!({"csp-report": {
        "document-uri": document,
        "referrer": "",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "original-policy": "default-src 'self'; report-uri /csp-report",
        "disposition": disposition,
        "blocked-uri": blocked,
        "status-code": 200,
        "script-sample": ""
    }})
    .to_string()
}

fn api(reports: &[(&str, &str)]) -> String {
    let list: Vec<serde_json::Value> = reports
        .iter()
        .map(|(doc, blocked)| {
            serde_json::json!({
                "age": 10, "type": "csp-violation", "url": doc, "user_agent": "Mozilla/5.0 HeadlessChrome",
                "body": {"documentURL": doc, "blockedURL": blocked, "effectiveDirective": "script-src-elem",
                         "disposition": "enforce", "originalPolicy": "default-src 'self'", "sample": "",
                         "statusCode": 200, "lineNumber": 8, "columnNumber": 1, "sourceFile": doc}
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

async fn metrics_text(pg: &pg::Pg) -> String {
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

fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn blocked(site: &str, vendor: &str, category: &str) -> String {
    // The exposition format sorts label names.
    format!(
        "pixelguard_csp_blocked_total{{category=\"{category}\",site=\"{site}\",vendor=\"{vendor}\"}}"
    )
}

fn rejected(reason: &str) -> String {
    format!("pixelguard_csp_reports_rejected_total{{reason=\"{reason}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_counted_by_site_vendor_and_category() {
    let pg = pg::start(&config(""), &[]).await;
    let addr = pg.app.csp_reports_addr.expect("endpoint on");
    let url = format!("http://{addr}/csp-report");
    let c = client("127.0.0.1");

    // Chromium's report-uri body: the Meta Pixel loader on the reporting form.
    let r = post(
        &c,
        &url,
        LEGACY,
        legacy(
            "https://www.force.test/report-a-crime?name=Jane+Doe&crime=assault",
            "https://connect.facebook.net/en_US/fbevents.js",
            "enforce",
        ),
    )
    .await;
    assert_eq!(r, (204, String::new()));
    // The Reporting API: GTM and an inline snippet on the site, one more on another host.
    let r = post(
        &c,
        &url,
        API,
        api(&[
            (
                "https://www.force.test/news?utm=x",
                "https://www.googletagmanager.com/gtm.js?id=GTM-ABCD123",
            ),
            ("https://www.force.test/news", "inline"),
            (
                "https://staging.force.test/careers",
                "https://snap.licdn.com/li.lms-analytics/insight.min.js",
            ),
        ]),
    )
    .await;
    assert_eq!(r, (204, String::new()));
    // A host outside the catalogue is taken and counted as `other`.
    let r = post(
        &c,
        &url,
        "application/csp-report; charset=utf-8",
        legacy(
            "https://www.force.test/",
            "https://cdn.unlisted.test/app.js",
            "enforce",
        ),
    )
    .await;
    assert_eq!(r.0, 204);
    // A Report-Only trial counts as would-block, not as blocked.
    let r = post(
        &c,
        &url,
        LEGACY,
        legacy(
            "https://www.force.test/report-a-crime",
            "https://www.facebook.com/tr?id=1234567890123456&ev=PageView",
            "report",
        ),
    )
    .await;
    assert_eq!(r.0, 204);

    let m = metrics_text(&pg).await;
    assert_eq!(
        sample(&m, &blocked("www.force.test", "meta", "advertising")),
        1
    );
    assert_eq!(
        sample(&m, &blocked("www.force.test", "google", "tag_manager")),
        1
    );
    assert_eq!(
        sample(&m, &blocked("www.force.test", "inline", "inline")),
        1
    );
    assert_eq!(sample(&m, &blocked("other", "linkedin", "advertising")), 1);
    assert_eq!(sample(&m, &blocked("www.force.test", "other", "other")), 1);
    assert_eq!(
        sample(
            &m,
            "pixelguard_csp_would_block_total{category=\"advertising\",site=\"www.force.test\",vendor=\"meta\"}"
        ),
        1
    );
    // No personal detail anywhere in the metrics: no query string, no path, no address.
    for secret in ["Jane", "assault", "utm", "report-a-crime", "127.0.0.1\""] {
        assert!(!m.contains(secret), "{secret} in metrics");
    }
    for reason in ["too_large", "rate_limited", "unparseable", "media_type"] {
        assert_eq!(sample(&m, &rejected(reason)), 0, "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_counted_and_never_detailed() {
    let pg = pg::start(&config(""), &[]).await;
    let addr = pg.app.csp_reports_addr.unwrap();
    let url = format!("http://{addr}/csp-report");
    let c = client("127.0.0.2");

    let big = legacy(
        "https://www.force.test/",
        &format!("https://x.test/{}", "a".repeat(3000)),
        "enforce",
    );
    assert_eq!(post(&c, &url, LEGACY, big).await, (413, String::new()));
    assert_eq!(
        post(&c, &url, LEGACY, "{\"csp-report\": {".into()).await,
        (400, String::new())
    );
    assert_eq!(
        post(&c, &url, API, "[{\"type\": \"csp-violation\"}]".into()).await,
        (400, String::new())
    );
    assert_eq!(
        post(&c, &url, "text/plain", "hello".into()).await,
        (400, String::new())
    );
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.text().await.unwrap(), "");
    let r = c
        .post(format!("http://{addr}/other"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.text().await.unwrap(), "");

    // A flood from one address: 20 taken (the burst), the rest 429; bounded at 40 requests.
    let flood = client("127.0.0.3");
    let mut codes = Vec::new();
    for _ in 0..40 {
        let body = legacy("https://www.force.test/", "inline", "enforce");
        codes.push(post(&flood, &url, LEGACY, body).await.0);
    }
    let taken = codes.iter().filter(|c| **c == 204).count();
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert!((20..=22).contains(&taken), "{codes:?}");
    assert_eq!(taken + limited, 40, "{codes:?}");
    // Another address is not held up by the flood.
    let r = post(
        &c,
        &url,
        LEGACY,
        legacy("https://www.force.test/", "inline", "enforce"),
    )
    .await;
    assert_eq!(r.0, 204);

    let m = metrics_text(&pg).await;
    assert_eq!(sample(&m, &rejected("too_large")), 1);
    assert_eq!(sample(&m, &rejected("unparseable")), 2);
    assert_eq!(sample(&m, &rejected("media_type")), 1);
    assert_eq!(sample(&m, &rejected("rate_limited")), limited as u64);
    assert_eq!(
        sample(&m, &blocked("www.force.test", "inline", "inline")),
        taken as u64 + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_certificate() {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pg = pg::start(
        &config("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"),
        &[("cert.pem", &cert.pem()), ("key.pem", &key.serialize_pem())],
    )
    .await;
    let addr = pg.app.csp_reports_addr.unwrap();
    let c = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/csp-report", addr.port());
    let r = post(
        &c,
        &url,
        LEGACY,
        legacy(
            "https://www.force.test/",
            "https://connect.facebook.net/en_US/fbevents.js",
            "enforce",
        ),
    )
    .await;
    assert_eq!(r, (204, String::new()));
    // Plain HTTP on the TLS port gets nothing.
    let plain = client("127.0.0.1")
        .post(format!("http://{addr}/csp-report"))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let m = metrics_text(&pg).await;
    assert_eq!(
        sample(&m, &blocked("www.force.test", "meta", "advertising")),
        1
    );
}

#[tokio::test]
async fn config_errors_name_file_and_line() {
    for (section, line, needle) in [
        (
            "[csp_reports]\nlisten = \"8443\"\n",
            2,
            "csp_reports.listen: expected \"IP:PORT\"",
        ),
        (
            "[csp_reports]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"c.pem\"\n",
            3,
            "tls_cert and tls_key go together",
        ),
        (
            "[csp_reports]\nlisten = \"127.0.0.1:0\"\nmax_body = \"2GiB\"\n",
            3,
            "csp_reports.max_body: expected a size from 1KiB to 1MiB",
        ),
        (
            "[csp_reports]\nlisten = \"127.0.0.1:0\"\nsites = [\"www.force.test\", \"not a host\"]\n",
            3,
            "csp_reports.sites: expected a host name",
        ),
        (
            "[csp_reports]\nlisten = \"127.0.0.1:0\"\nrate = 0\n",
            3,
            "csp_reports.rate: expected a number from 0.1 to 100000",
        ),
        (
            "[csp_reports]\nlisten = \"127.0.0.1:0\"\nquery_log = true\n",
            3,
            "unknown field `query_log`",
        ),
    ] {
        let dir = pg::folder(section, &[]);
        let path = dir.path().join("pixelguard.toml");
        let err = ConfigSource {
            path: Some(path.clone()),
            overrides: Overrides::default(),
        }
        .load()
        .expect_err(section)
        .to_string();
        let at = format!("{}:{line}:", path.display());
        assert!(err.contains(&at), "{at} not in {err}");
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}
