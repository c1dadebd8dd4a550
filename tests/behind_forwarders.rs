//! pixelguard behind real forwarders from Debian, on loopback: dnsdist in front with
//! `useProxyProtocol=true` (PROXY v2 over UDP and TCP), and dnsmasq as a branch forwarder with
//! `add-subnet=32,128` (EDNS Client Subnet). Clients on 127.0.0.2 (kiosk, blocks the tracker) and
//! 127.0.0.3 (staff, allows it) ask through them and each gets its own zone's policy; the
//! recording upstream never sees ECS; a dnsdist backend whose source is not in
//! `server.proxy_protocol` has its queries dropped and counted.
//!
//! Ignored by `cargo test` (they need the tools): `scripts/proxy-check.sh` runs them and fails
//! when dnsdist or dnsmasq is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{RData, RecordType};

use support::scripted::answer_for;
use support::{QueryOpts, Reply, ScriptedUpstream, loopback, pg, poll_until, query};

const TRACKER: &str = "tracker.example.test.";
const ANSWER: [u8; 4] = [192, 0, 2, 1];
/// dnsdist's backend source (trusted) and a second backend's (not trusted).
const DNSDIST_SOURCE: u8 = 8;
const UNTRUSTED_SOURCE: u8 = 7;
/// dnsmasq's source towards pixelguard (a trusted ECS forwarder).
const DNSMASQ_SOURCE: u8 = 9;
const READY: Duration = Duration::from_secs(15);

/// A child process, killed (by its own id) and reaped when dropped.
struct Running(Child, &'static str);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn spawn(tool: &'static str, args: &[&str]) -> Running {
        let child = Command::new(tool)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} cannot be started ({e}): is it installed?"));
        Running(child, tool)
    }

    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!("{} exited: {status}", self.1);
        }
    }
}

/// A loopback port free for UDP and TCP right now.
fn free_port() -> u16 {
    let (udp, _tcp) = support::bind_udp_tcp(loopback(1));
    udp.local_addr().unwrap().port()
}

fn upstream() -> ScriptedUpstream {
    ScriptedUpstream::start(|q| match &q.message {
        Some(m) => Reply::Message(answer_for(m, std::net::IpAddr::from(ANSWER), 60)),
        None => Reply::Silence,
    })
}

async fn start_pixelguard(up: &ScriptedUpstream) -> pg::Pg {
    let cfg = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
proxy_protocol = ["127.0.0.{DNSDIST_SOURCE}/32"]
client_subnet_from = ["127.0.0.{DNSMASQ_SOURCE}/32"]

[upstream]
servers = ["{}"]
timeout = "400ms"
deadline = "1500ms"

[admin]
listen = "127.0.0.1:0"

[lists.b]
source = "b.txt"

[zones.kiosk]
networks = ["127.0.0.2/32"]
block = ["b"]

[zones.staff]
networks = ["127.0.0.3/32"]
"#,
        up.addr()
    );
    pg::start(&cfg, &[("b.txt", "tracker.example.test\n")]).await
}

fn from(n: u8, tcp: bool) -> QueryOpts {
    let mut o = QueryOpts::from_source(loopback(n));
    o.tcp = tcp;
    o.timeout = Duration::from_secs(3);
    o
}

fn blocked(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NXDomain && m.answers.is_empty()
}

fn resolved(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NoError
        && m.answers
            .iter()
            .any(|r| matches!(r.data, RData::A(a) if a.0.octets() == ANSWER))
}

async fn dropped(pg: &pg::Pg, reason: &str) -> u64 {
    let url = format!("http://{}/metrics", pg.app.admin_addr.unwrap());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let series = format!("pixelguard_proxy_dropped_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Polls until a staff client's query through `front` resolves (the forwarder is up).
async fn wait_ready(front: SocketAddr) {
    poll_until(
        READY,
        &format!("a forwarder answers on {front}"),
        || async {
            let mut o = from(3, false);
            o.timeout = Duration::from_millis(500);
            query(front, "ready.example.test.", RecordType::A, &o)
                .await
                .is_ok_and(|m| resolved(&m))
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs dnsdist: run by scripts/proxy-check.sh"]
async fn dnsdist_with_proxy_protocol_gives_each_client_its_zone() {
    let up = upstream();
    let pg = start_pixelguard(&up).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No packet cache is configured (dnsdist has none unless one is set on a pool), so every
    // query reaches pixelguard. No console, no carbon, no web server, no security polling.
    // Server 0: trusted source; server 1 (pool "untrusted", for client 127.0.0.6): a source not
    // in proxy_protocol, forced up with its health checks out of the way.
    let conf = format!(
        r#"setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
setACL({{"127.0.0.0/8"}})
newServer({{address="{pg}", useProxyProtocol=true, source="127.0.0.{DNSDIST_SOURCE}"}})
newServer({{address="{pg}", useProxyProtocol=true, source="127.0.0.{UNTRUSTED_SOURCE}", pool="untrusted", checkInterval=3600}})
getServer(1):setUp()
addAction(makeRule("127.0.0.6/32"), PoolAction("untrusted"))
"#,
        pg = pg.addr
    );
    let path = dir.path().join("dnsdist.conf");
    std::fs::write(&path, conf).unwrap();
    let mut dnsdist = Running::spawn(
        "dnsdist",
        &[
            "--supervised",
            "--disable-syslog",
            "-C",
            path.to_str().unwrap(),
        ],
    );
    let front = SocketAddr::new(loopback(1), port);
    wait_ready(front).await;
    dnsdist.assert_alive();
    for tcp in [false, true] {
        for _ in 0..2 {
            let m = query(front, TRACKER, RecordType::A, &from(2, tcp))
                .await
                .unwrap();
            assert!(blocked(&m), "kiosk through dnsdist (tcp {tcp}): {m:?}");
            let m = query(front, TRACKER, RecordType::A, &from(3, tcp))
                .await
                .unwrap();
            assert!(resolved(&m), "staff through dnsdist (tcp {tcp}): {m:?}");
        }
    }
    assert_eq!(
        dropped(&pg, "missing").await,
        0,
        "dnsdist always sent a header"
    );
    assert_eq!(dropped(&pg, "malformed").await, 0);
    // The same headers from a backend source pixelguard does not trust: dropped and counted.
    let before = dropped(&pg, "untrusted").await;
    let asked =
        tokio::spawn(async move { query(front, TRACKER, RecordType::A, &from(6, false)).await });
    poll_until(
        READY,
        "the untrusted backend's query is dropped",
        || async { dropped(&pg, "untrusted").await > before },
    )
    .await;
    let r = asked.await.unwrap();
    assert!(
        !r.is_ok_and(|m| resolved(&m)),
        "no answer through the untrusted backend"
    );
    dnsdist.assert_alive();
}

#[tokio::test]
#[ignore = "needs dnsmasq: run by scripts/proxy-check.sh"]
async fn dnsmasq_add_subnet_gives_a_branch_client_its_zone_and_never_reaches_the_upstream() {
    let up = upstream();
    let pg = start_pixelguard(&up).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pid = dir.path().join("dnsmasq.pid");
    let server = format!(
        "--server=127.0.0.1#{}@127.0.0.{DNSMASQ_SOURCE}",
        pg.addr.port()
    );
    let listen = format!("--port={port}");
    let pid_arg = format!("--pid-file={}", pid.display());
    let mut dnsmasq = Running::spawn(
        "dnsmasq",
        &[
            "-k",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--cache-size=0",
            "--add-subnet=32,128",
            &listen,
            &server,
            &pid_arg,
        ],
    );
    let front = SocketAddr::new(loopback(1), port);
    wait_ready(front).await;
    dnsmasq.assert_alive();
    for tcp in [false, true] {
        let m = query(front, TRACKER, RecordType::A, &from(2, tcp))
            .await
            .unwrap();
        assert!(blocked(&m), "kiosk behind dnsmasq (tcp {tcp}): {m:?}");
        let m = query(front, TRACKER, RecordType::A, &from(3, tcp))
            .await
            .unwrap();
        assert!(resolved(&m), "staff behind dnsmasq (tcp {tcp}): {m:?}");
    }
    // The upstream saw the staff client's questions, and never an ECS option.
    assert!(up.saw_name(TRACKER));
    for q in up.seen() {
        let m = q.message.as_ref().unwrap();
        let ecs = m.edns.as_ref().is_some_and(|e| {
            e.options()
                .as_ref()
                .iter()
                .any(|(_, o)| matches!(o, EdnsOption::Subnet(_)))
        });
        assert!(!ecs, "ECS reached the upstream: {m:?}");
    }
    // The kiosk client asking pixelguard directly with an ECS naming a staff address: its own
    // zone still (only the forwarder's ECS counts).
    let mut m = support::client::build_query(TRACKER, RecordType::A, &from(2, false)).unwrap();
    if let Some(e) = m.edns.as_mut() {
        e.options_mut()
            .insert(EdnsOption::Subnet("127.0.0.3/32".parse().unwrap()));
    }
    let m = support::client::send_message(pg.addr, &m, &from(2, false))
        .await
        .unwrap();
    assert!(blocked(&m), "a client's own ECS changes nothing: {m:?}");
    dnsmasq.assert_alive();
}
