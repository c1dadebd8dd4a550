//! The admin dashboard, from the outside: a real pixelguard on 127.0.0.1 against an in-process
//! authoritative upstream, a known load of blocked (enforce zone), would-block (log-mode zone)
//! and CNAME-cloaked tracker queries from three zones (127.0.0.2 / .3 / .4), then the served
//! HTML parsed (scraper) and its zone × vendor × mode table compared with `/metrics`; the
//! access rules (no token from an untrusted peer is refused, the read token opens the page but
//! not reload, the sign-in form's cookie), the CSP header, and the series surviving a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use pixelguard::app::{App, ConfigSource};
use pixelguard::config::Overrides;
use scraper::{Html, Selector};
use support::dashboard::{metric_counts, page_counts};
use support::pg::{self, base_without_admin};
use support::{AuthServer, QueryOpts, loopback, query};

const TOKEN: &str = "admin-token-0123456789";
const READ: &str = "read-only-token-0123456789";
const PLAIN: &str = "mx.example.test\n";

fn config(upstream: SocketAddr) -> String {
    format!(
        "state_dir = \"state\"\n\n{}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nread_token = \"{READ}\"\ntrust_loopback = false\n\n\
         [lists.trackers]\nsource = \"builtin:trackers\"\n[lists.plain]\nsource = \"plain.txt\"\n\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\", \"plain\"]\n\n\
         [zones.staff]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\", \"plain\"]\nmode = \"log\"\n\n\
         [zones.lab]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"trackers\"]\n",
        base_without_admin(&[upstream])
    )
}

/// A known load: blocked, would-block and cloaked tracker calls, and bypass attempts.
async fn load(pg: &pg::Pg) {
    let ask = |n: u8, name: &'static str| async move {
        let _ = query(
            pg.addr,
            name,
            RecordType::A,
            &QueryOpts::from_source(loopback(n)),
        )
        .await
        .unwrap_or_else(|e| panic!("{name} from 127.0.0.{n}: {e}"));
    };
    for _ in 0..3 {
        ask(2, "connect.facebook.net.").await;
    }
    ask(2, "www.google-analytics.com.").await;
    ask(2, "mx.example.test.").await;
    ask(2, "metrics.example.test.").await; // CNAME-cloaked
    ask(3, "mx.example.test.").await;
    ask(3, "metrics.example.test.").await;
    ask(3, "connect.facebook.net.").await;
    for _ in 0..2 {
        ask(4, "www.google-analytics.com.").await;
    }
    ask(4, "use-application-dns.net.").await;
    ask(4, "www.example.test.").await;
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn admin(app: &App) -> String {
    format!("http://{}", app.admin_addr.expect("admin server bound"))
}

async fn page(base: &str, auth: Option<(&str, &str)>) -> reqwest::Response {
    let mut r = http().get(format!("{base}/"));
    if let Some((k, v)) = auth {
        r = r.header(k, v);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn the_page_equals_metrics_and_only_tokens_open_it() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&config(auth.addr()), &[("plain.txt", PLAIN)]).await;
    load(&pg).await;
    let base = admin(&pg.app);

    // Refused without a token (loopback is not trusted here); a browser is sent to sign in.
    let r = page(&base, None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let r = page(
        &base,
        Some(("authorization", "Bearer not-the-token-at-all")),
    )
    .await;
    assert_eq!(r.status(), 403);
    let stats = http()
        .get(format!("{base}/api/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 401);

    // The read token opens the page and the reads, never reload.
    let bearer = format!("Bearer {READ}");
    let r = page(&base, Some(("authorization", &bearer))).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    let html = r.text().await.unwrap();
    let stats = http()
        .get(format!("{base}/api/stats"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    let reload = http()
        .post(format!("{base}/api/reload"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 403);

    // The numbers on the page are those of /metrics.
    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want = metric_counts(&metrics);
    let got = page_counts(&html);
    assert_eq!(got, want, "page table vs /metrics");
    let key = |z: &str, v: &str, c: &str, m: &str| (z.into(), v.into(), c.into(), m.into());
    assert_eq!(
        want.get(&key("kiosk", "meta", "advertising", "enforce")),
        Some(&3)
    );
    assert_eq!(want.get(&key("staff", "other", "other", "log")), Some(&1));
    assert!(
        want.keys().any(|k| k.0 == "kiosk" && k.2 == "cname_cloak"),
        "a cloaked call counted: {want:?}"
    );
    assert!(want.keys().any(|k| k.0 == "lab"), "{want:?}");

    // Charts: one per zone and mode, a series group per vendor, and no client anywhere.
    let doc = Html::parse_document(&html);
    let fig = Selector::parse("figure.chart svg g.series").unwrap();
    let series: Vec<_> = doc
        .select(&fig)
        .map(|g| g.value().attr("data-series").unwrap().to_owned())
        .collect();
    assert!(series.iter().any(|s| s == "meta"), "{series:?}");
    for m in ["enforce", "log"] {
        let s = Selector::parse(&format!("figure.chart[data-mode={m}] svg rect")).unwrap();
        assert!(doc.select(&s).next().is_some(), "a {m} chart with bars");
    }
    for n in 2..=4 {
        let ip = format!("127.0.0.{n}");
        let outside_networks = html.replace(&format!("{ip}/32"), "");
        assert!(
            !outside_networks.contains(&ip),
            "no client address on the overview"
        );
    }
    assert!(html.contains("this instance only"));

    // Sign in with the form: a session cookie (HttpOnly, SameSite=Strict) opens the page.
    let r = http()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={READ}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let r = page(&base, Some(("cookie", &pair))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(page_counts(&r.text().await.unwrap()), want);
    let r = http()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // A session cookie does not open reload.
    let reload = http()
        .post(format!("{base}/api/reload"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 401);

    // The series survive a restart: the new process's counters are zero, the page is not.
    let dir = pg.dir;
    pg.app.shutdown().await;
    assert!(dir.path().join("state/dashboard-series.json").exists());
    let app = App::start(ConfigSource {
        path: Some(dir.path().join("pixelguard.toml")),
        overrides: Overrides::default(),
    })
    .await
    .expect("pixelguard restarts");
    let base = admin(&app);
    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metric_counts(&metrics).is_empty(), "a fresh process");
    let r = page(&base, Some(("authorization", &bearer))).await;
    assert_eq!(page_counts(&r.text().await.unwrap()), want);
    app.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_series_file_is_ignored() {
    let auth = AuthServer::start_test_zone();
    let dir = pg::folder(&config(auth.addr()), &[("plain.txt", PLAIN)]);
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/dashboard-series.json"), b"{ torn").unwrap();
    let app = App::start(ConfigSource {
        path: Some(dir.path().join("pixelguard.toml")),
        overrides: Overrides::default(),
    })
    .await
    .expect("starts despite a corrupt series file");
    let r = page(
        &admin(&app),
        Some(("authorization", &format!("Bearer {TOKEN}"))),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(page_counts(&r.text().await.unwrap()).is_empty());
    app.shutdown().await;
}
