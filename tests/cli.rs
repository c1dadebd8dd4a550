//! Config and command-line tests: file:line errors, `check` exit codes, the embedded default
//! started as a real child process, SIGHUP reload and SIGTERM shutdown of that process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use pixelguard::config::{Config, Overrides};
use support::{AuthServer, QueryOpts, answer_ips, ede, query};

const BIN: &str = env!("CARGO_BIN_EXE_pixelguard");

fn errors(text: &str) -> String {
    match Config::from_str(text, "test.toml", Path::new("."), &Overrides::default()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Runs `pixelguard check` on a config that must be refused: exit 1, the errors on stderr.
fn check_fails(config: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn config_errors_name_file_line_and_expectation() {
    let e = errors(
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[zones.kiosk]\nnetworks = [\"10.20.0.0/16\",\n  \"10.20.0.0/33\"]\n",
    );
    assert_eq!(
        e,
        "test.toml:7:3: zones.kiosk.networks[1]: invalid CIDR \"10.20.0.0/33\"; expected e.g. \"10.20.0.0/16\" or \"fd00::/48\""
    );
    let e = errors(
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[lists.a]\nsource = \"a.txt\"\n[lists.b]\nsource = \"b.txt\"\n[zones.z]\nnetworks = [\"10.0.0.0/8\"]\nblock = [\"ads\"]\n",
    );
    assert_eq!(
        e,
        "test.toml:11:10: zones.z.block[0]: undefined list \"ads\"; defined: a, b"
    );
    let e = errors("[server]\nlisten = [\"127.0.0.1:53\"]\nlistne = 1\n");
    assert!(
        e.starts_with("test.toml:3:1: unknown field `listne`"),
        "{e}"
    );
    let e = errors("[upstream]\ntimeout = \"2 parsecs\"\n");
    assert!(e.starts_with("test.toml:2:11:"), "{e}");
    let e = errors(
        "[server]\nlisten = [\"localhost\"]\n[zones.z]\nnetworks = [\"10.0.0.0/8\"]\nmode = \"block\"\nresponse = \"sinkhole\"\n",
    );
    assert!(
        e.contains("test.toml:2:11: server.listen: invalid address \"localhost\""),
        "{e}"
    );
    assert!(
        e.contains(
            "test.toml:5:8: zones.z.mode: unknown mode \"block\"; expected enforce, log or off"
        ),
        "{e}"
    );
    assert!(
        e.contains("test.toml:6:12: zones.z.response: unknown response \"sinkhole\""),
        "{e}"
    );
    let e = errors(
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[zones.a]\nnetworks = [\"10.0.0.0/8\"]\n[zones.b]\nnetworks = [\"10.0.0.0/8\"]\n",
    );
    assert!(e.contains("is already in zone \"a\""), "{e}");
}

#[test]
fn the_reference_config_loads_and_relative_paths_resolve() {
    let c = Config::load(Path::new("config/pixelguard.toml"), &Overrides::default()).unwrap();
    assert_eq!(c.zones.len(), 4);
    assert_eq!(c.exceptions.len(), 1);
    assert_eq!(c.exceptions[0].label(), "INC-4411");
    let allow = &c.lists["local-allow"];
    assert_eq!(
        allow.source,
        pixelguard::config::ListSource::File(Path::new("config").join("allow.txt"))
    );
    assert_eq!(c.upstream.servers.len(), 2);
}

#[test]
fn check_exit_codes() {
    let ok = Command::new(BIN)
        .args(["check", "--config", "config/pixelguard.toml"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = String::from_utf8(ok.stdout).unwrap();
    assert!(out.contains("list trackers: format catalogue"), "{out}");
    assert!(
        out.contains("NOT LOADED"),
        "the missing easyprivacy file is reported: {out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[zones.z]\nnetworks = [\"10.0.0.0/33\"]\n",
    )
    .unwrap();
    let err = check_fails(&bad);
    assert!(
        err.contains("bad.toml:4:13: zones.z.networks[0]: invalid CIDR"),
        "{err}"
    );

    let list = dir.path().join("l.txt");
    std::fs::write(&list, "good.example\nbad..name\n# comment\n").unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[lists.l]\nsource = \"l.txt\"\n[zones.z]\nnetworks = [\"10.0.0.0/8\"]\nblock = [\"l\"]\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("list l: format domains, 1 entries, 1 lines skipped"),
        "{text}"
    );
    assert!(text.contains("l.txt:2: invalid_name_bad_label"), "{text}");

    let missing = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/pixelguard.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let usage = Command::new(BIN).args(["--no-such-flag"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let embedded = Command::new(BIN).args(["check"]).output().unwrap();
    assert_eq!(embedded.status.code(), Some(0));
    assert!(
        String::from_utf8(embedded.stdout)
            .unwrap()
            .contains("<embedded default>: ok")
    );
}

/// A duration or size past its bound is a config error with its place (exit 1 from `check`),
/// not a panic on the first upstream try; `audit`'s durations are bounded the same way (exit 2).
#[test]
fn out_of_bound_durations_and_sizes_are_config_errors() {
    let e = errors(
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\ntimeout = \"400000000000y\"\n[lists.r]\nsource = \"https://lists.example/r.txt\"\nrefresh = \"100y\"\n",
    );
    assert_eq!(
        e,
        "test.toml:5:11: upstream.timeout: at most 1m, got 400000000000y\ntest.toml:8:11: lists.r.refresh: at most 30d, got 100y"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[cache]\nserve_stale = \"400000000000y\"\n",
    )
    .unwrap();
    let err = check_fails(&bad);
    assert!(
        err.contains("bad.toml:6:15: cache.serve_stale: at most 7d, got 400000000000y"),
        "{err}"
    );
    for (flag, value) in [("--delay", "400000000000y"), ("--timeout", "1h")] {
        let out = Command::new(BIN)
            .args(["audit", "--input", "x.html", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("at most"), "{flag}: {err}");
    }
}

fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = s.local_addr().unwrap().port();
    let t = std::net::TcpListener::bind(("127.0.0.1", p));
    if t.is_err() {
        return free_port();
    }
    p
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(addr: std::net::SocketAddr) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        let o = QueryOpts {
            timeout: Duration::from_millis(200),
            ..Default::default()
        };
        if query(addr, "use-application-dns.net.", RecordType::A, &o)
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pixelguard did not come up on {addr}");
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn embedded_default_runs_as_a_child_and_stops_on_sigterm() {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut d = Daemon(child);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_ready(addr).await;
    // Only blocked and local names: the embedded default forwards to the system's resolver.
    let m = query(
        addr,
        "connect.facebook.net.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ede(&m)[0].1, "pixelguard: trackers (meta/advertising)");
    let m = query(
        addr,
        "analytics.tiktok.com.",
        RecordType::AAAA,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    signal(&d.0, "-TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = d.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(d.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("listen    127.0.0.1:"),
        "start-up lines: {err}"
    );
    assert!(err.contains("zone      local:"), "{err}");
    assert!(
        err.contains("list      trackers: builtin:trackers (catalogue)"),
        "{err}"
    );
}

/// Collects a child's stderr in the background, line by line.
fn collect_stderr(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    let err = child.stderr.take().expect("stderr piped");
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        // Ends when the child closes its stderr (exits or is killed).
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

/// `pixelguard_reloads_total{result="<result>"}` scraped from the admin server's /metrics.
async fn reloads(admin: std::net::SocketAddr, result: &str) -> Option<f64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .unwrap();
    let text = client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let series = format!("pixelguard_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls /metrics until `pixelguard_reloads_total{result}` is `want` (at most 10 s).
async fn wait_reloads(admin: std::net::SocketAddr, result: &str, want: f64) {
    let what = format!("pixelguard_reloads_total{{result=\"{result}\"}} reaches {want}");
    support::poll_until(Duration::from_secs(10), &what, || async {
        reloads(admin, result).await == Some(want)
    })
    .await;
}

#[tokio::test]
async fn sighup_reloads_and_a_broken_config_keeps_the_running_one() {
    let auth = AuthServer::start_test_zone();
    let port = free_port();
    let admin_port = free_port();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("block.txt");
    std::fs::write(&list, "mx.example.test\n").unwrap();
    let cfg = dir.path().join("pixelguard.toml");
    let good = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\n[upstream]\nservers = [\"{}\"]\n[lists.b]\nsource = \"block.txt\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"b\"]\n[admin]\nlisten = \"{admin}\"\n",
        auth.addr()
    );
    std::fs::write(&cfg, &good).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect_stderr(&mut child);
    let d = Daemon(child);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_ready(addr).await;
    wait_reloads(admin, "success", 0.0).await;
    wait_reloads(admin, "failure", 0.0).await;
    let o = QueryOpts::default();
    let m = query(addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m).len(), 1, "not blocked yet");

    std::fs::write(&list, "mx.example.test\nwww.example.test\n").unwrap();
    signal(&d.0, "-HUP");
    wait_reloads(admin, "success", 1.0).await;
    let m = query(addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "the reloaded list blocks"
    );
    // A broken config: the reload fails (counted and logged with file:line), the running policy
    // stays.
    std::fs::write(&cfg, good.replace("127.0.0.0/8", "127.0.0.0/40")).unwrap();
    signal(&d.0, "-HUP");
    wait_reloads(admin, "failure", 1.0).await;
    assert_eq!(reloads(admin, "success").await, Some(1.0));
    let logged = support::wait_until(Duration::from_secs(10), || {
        let t = log.lock().unwrap();
        t.contains("reload failed, keeping the running config")
            && t.contains(
                "pixelguard.toml:8:13: zones.lo.networks[0]: invalid CIDR \"127.0.0.0/40\"",
            )
    })
    .await;
    assert!(
        logged,
        "the failed reload is logged with file:line: {}",
        log.lock().unwrap()
    );
    let m = query(addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "still filtering with the old config"
    );
    let m = query(addr, "mail.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m).len(), 1, "still resolving");
}
