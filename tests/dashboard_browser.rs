//! The dashboard beyond plain `cargo test` (run by scripts/dashboard-check.sh):
//!
//! - **In a real browser**: a pixelguard on loopback after a known load; headless Chromium,
//!   driven through chromedriver by `scripts/dashboard_browser.py` (Python selenium in a venv),
//!   signs in at `/login` with the read token, loads `/`, and checks the SVG series, the zone ×
//!   vendor table against `/metrics`, that no request left for another host, and that the
//!   console has no error; it saves a screenshot to `target/dashboard.png`.
//! - **Cluster view**: Debian's `prometheus` on loopback scrapes two pixelguards given different
//!   loads every second; each page, with `[admin] prometheus`, shows the sum of both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use support::dashboard::{Counts, metric_counts, page_counts};
use support::pg::{self, base_without_admin};
use support::{AuthServer, QueryOpts, loopback, poll_until, query};

const READ: &str = "read-only-token-0123456789";
const PLAIN: &str = "mx.example.test\n";

fn config(upstream: SocketAddr, prometheus: Option<u16>) -> String {
    let prom = prometheus.map_or(String::new(), |p| {
        format!("prometheus = \"http://127.0.0.1:{p}\"\n")
    });
    // Its own state_dir (the temp folder): no series saved by another process is read back.
    format!(
        "state_dir = \".\"\n\n{}[admin]\nlisten = \"127.0.0.1:0\"\nread_token = \"{READ}\"\ntrust_loopback = false\n{prom}\n\
         [lists.trackers]\nsource = \"builtin:trackers\"\n[lists.plain]\nsource = \"plain.txt\"\n\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\", \"plain\"]\n\n\
         [zones.staff]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\", \"plain\"]\nmode = \"log\"\n\n\
         [zones.lab]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"trackers\"]\n",
        base_without_admin(&[upstream])
    )
}

/// `times` rounds of a load of blocked, would-block and cloaked calls from three zones.
async fn load(pg: &pg::Pg, times: usize) {
    let plan: [(u8, &str); 7] = [
        (2, "connect.facebook.net."),
        (2, "www.google-analytics.com."),
        (2, "metrics.example.test."),
        (2, "mx.example.test."),
        (3, "connect.facebook.net."),
        (3, "metrics.example.test."),
        (4, "www.google-analytics.com."),
    ];
    for _ in 0..times {
        for (n, name) in plan {
            let _ = query(
                pg.addr,
                name,
                RecordType::A,
                &QueryOpts::from_source(loopback(n)),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

fn admin(pg: &pg::Pg) -> String {
    format!("http://{}", pg.app.admin_addr.unwrap())
}

async fn text(url: &str, bearer: Option<&str>) -> String {
    let mut r = http().get(url);
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    r.send().await.unwrap().text().await.unwrap()
}

/// Kills (and reaps) a child process when dropped, so a failing test leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium, chromedriver and python selenium: run by scripts/dashboard-check.sh"]
async fn the_dashboard_in_a_real_browser() {
    let python = std::env::var("PIXELGUARD_DASHBOARD_PYTHON")
        .expect("PIXELGUARD_DASHBOARD_PYTHON: the venv's python with selenium (scripts/dashboard-check.sh sets it)");
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&config(auth.addr(), None), &[("plain.txt", PLAIN)]).await;
    load(&pg, 3).await;
    let base = admin(&pg);
    let want = metric_counts(&text(&format!("{base}/metrics"), None).await);
    let expected: Vec<serde_json::Value> = want
        .iter()
        .map(|((z, v, c, m), n)| serde_json::json!([z, v, c, m, n]))
        .collect();
    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/target/dashboard.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dashboard_browser.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([script, &base, READ, shot])
            .arg(serde_json::Value::Array(expected).to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run the browser check")
    })
    .await
    .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{log}");
    assert!(out.status.success(), "browser check failed:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus: run by scripts/dashboard-check.sh"]
async fn each_replica_shows_the_cluster_sum_from_prometheus() {
    let prom_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth = AuthServer::start_test_zone();
    let a = pg::start(
        &config(auth.addr(), Some(prom_port)),
        &[("plain.txt", PLAIN)],
    )
    .await;
    let b = pg::start(
        &config(auth.addr(), Some(prom_port)),
        &[("plain.txt", PLAIN)],
    )
    .await;
    load(&a, 2).await;
    load(&b, 5).await;
    let (ua, ub) = (admin(&a), admin(&b));
    let ma = metric_counts(&text(&format!("{ua}/metrics"), None).await);
    let mb = metric_counts(&text(&format!("{ub}/metrics"), None).await);
    let mut sum = ma.clone();
    for (k, v) in &mb {
        *sum.entry(k.clone()).or_default() += v;
    }
    assert_ne!(ma, mb, "different loads");

    let dir = tempfile::tempdir().unwrap();
    let targets = [&a, &b]
        .map(|p| format!("\"{}\"", p.app.admin_addr.unwrap()))
        .join(", ");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: pixelguard\n    static_configs: [{{ targets: [{targets}] }}]\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prom = Reaped(child);

    // Each replica's page shows the sum of both once Prometheus has scraped them.
    for (name, base) in [("a", &ua), ("b", &ub)] {
        let last = std::sync::Arc::new(std::sync::Mutex::new(Counts::new()));
        poll_until(
            Duration::from_secs(60),
            "the page shows the cluster sum",
            || {
                let (base, sum, last) = (base.clone(), sum.clone(), last.clone());
                async move {
                    let html = text(&format!("{base}/"), Some(READ)).await;
                    let got = page_counts(&html);
                    let done = html.contains("summed by Prometheus") && got == sum;
                    *last.lock().unwrap() = got;
                    done
                }
            },
        )
        .await;
        let last = last.lock().unwrap().clone();
        assert_eq!(last, sum, "replica {name}");
    }
}
