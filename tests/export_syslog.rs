//! syslog export (issue 21), against UDP and TCP receivers written in the test on loopback: each
//! policy event once, as RFC 5424 with the structured data under `pixelguard@32473` and octet
//! counting over TCP; the faults (collector absent at start, killed and restarted, stalled: DNS
//! keeps answering, drops are counted, delivery resumes); and one pseudonym across two instances
//! sharing a key file. dnstap is in tests/export.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/export.rs"]
mod common;
mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KEY, LISTS, ask, config, free_port, metric};
use hickory_proto::op::ResponseCode;
use support::{AuthServer, loopback, pg, poll_until};

/// A parsed RFC 5424 message: PRI, header fields, SD params, text.
#[derive(Debug)]
struct Syslog {
    pri: u16,
    msgid: String,
    app: String,
    params: Vec<(String, String)>,
    text: String,
}

impl Syslog {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `<PRI>1 TS HOST APP PROCID MSGID [SD-ID k="v" ...] MSG` (one SD element).
fn parse_5424(line: &str) -> Syslog {
    let rest = line.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once('>').unwrap();
    let f: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!(f[0], "1", "{line}");
    humantime::parse_rfc3339(f[1]).unwrap_or_else(|e| panic!("timestamp {}: {e}", f[1]));
    let sd = f[6].strip_prefix("[pixelguard@32473").unwrap();
    let mut params = Vec::new();
    let mut chars = sd.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek() == Some(&']') {
            chars.next();
            break;
        }
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut v = String::new();
        loop {
            match chars.next().unwrap() {
                '\\' => v.push(chars.next().unwrap()),
                '"' => break,
                c => v.push(c),
            }
        }
        params.push((name, v));
    }
    let text: String = chars.collect();
    Syslog {
        pri: pri.parse().unwrap(),
        msgid: f[5].to_owned(),
        app: f[3].to_owned(),
        params,
        text: text.trim_start().to_owned(),
    }
}

/// Reads octet-counted frames from a TCP stream until `n` arrived or the time is up.
fn read_octet_counted(s: &mut TcpStream, n: usize, within: Duration) -> Vec<String> {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let end = Instant::now() + within;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < end {
        let mut chunk = [0u8; 4096];
        if let Ok(k) = s.read(&mut chunk) {
            if k == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..k]);
        }
        while let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            out.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tcp_sends_each_policy_event_once_as_rfc5424() {
    let auth = AuthServer::start_test_zone();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let sections = format!(
        "[syslog]\nserver = \"tcp://{}\"\nfacility = \"local5\"\nhostname = \"dns-test\"\n",
        l.local_addr().unwrap()
    );
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    assert_eq!(
        ask(&pg, 2, "ads.example.test.").await,
        ResponseCode::NXDomain
    ); // blocked
    ask(&pg, 2, "www.example.test.").await; // nothing
    ask(&pg, 2, "mx.example.test.").await; // exception (allow beat block)
    ask(&pg, 3, "ads.example.test.").await; // would-block
    ask(&pg, 2, "use-application-dns.net.").await; // bypass (canary)
    pg.app.reload().await.unwrap(); // reload
    let (mut s, _) = l.accept().unwrap();
    let lines = read_octet_counted(&mut s, 5, Duration::from_secs(10));
    let msgs: Vec<Syslog> = lines.iter().map(|l| parse_5424(l)).collect();
    let ids: Vec<&str> = msgs.iter().map(|m| m.msgid.as_str()).collect();
    assert_eq!(
        ids,
        ["blocked", "exception", "would_block", "bypass", "reload"],
        "{lines:#?}"
    );
    let b = &msgs[0];
    assert_eq!(b.pri, 21 * 8 + 5, "local5.notice");
    assert_eq!(b.app, "pixelguard");
    assert_eq!(b.param("zone"), Some("office"));
    assert_eq!(b.param("outcome"), Some("blocked"));
    assert_eq!(b.param("list"), Some("b"));
    assert_eq!(b.param("rule"), Some("ads.example.test"));
    assert_eq!(b.param("qname"), Some("ads.example.test"));
    let key = pixelguard::querylog::Pseudonymizer::from_secret(KEY);
    assert_eq!(b.param("client"), Some(key.pseudonym(loopback(2)).as_str()));
    assert!(!lines[0].contains("127.0.0.2"), "{}", lines[0]);
    assert!(b.text.contains("ads.example.test"), "{}", b.text);
    assert_eq!(msgs[1].param("list"), Some("allow"));
    assert_eq!(
        msgs[2].param("client"),
        Some("127.0.0.0/24"),
        "the zone's masked mode"
    );
    assert_eq!(msgs[3].param("bypass"), Some("canary"));
    assert_eq!(msgs[4].param("result"), Some("success"));
    // Nothing else (each event once).
    assert!(read_octet_counted(&mut s, 1, Duration::from_millis(300)).is_empty());
    pg.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_udp_one_message_per_datagram() {
    let auth = AuthServer::start_test_zone();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sections = format!(
        "[syslog]\nserver = \"udp://{}\"\nclient = \"none\"\n",
        rx.local_addr().unwrap()
    );
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    ask(&pg, 2, "ads.example.test.").await;
    let mut b = [0u8; 4096];
    let n = rx.recv(&mut b).unwrap();
    let m = parse_5424(std::str::from_utf8(&b[..n]).unwrap());
    assert_eq!(m.msgid, "blocked");
    assert_eq!(m.param("client"), None, "client = none");
    assert_eq!(m.param("zone"), Some("office"));
    pg.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tcp_faults_absent_killed_restarted_and_stalled_never_delay_dns() {
    let auth = AuthServer::start_test_zone();
    let port = free_port();
    let sections = format!("[syslog]\nserver = \"tcp://{port}\"\nbuffer = 4\n");
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    let dropped = "pixelguard_export_dropped_total{sink=\"syslog\"}";

    // Absent at start: answers at once, 4 queued, the rest dropped and counted.
    for _ in 0..20 {
        assert_eq!(
            ask(&pg, 2, "ads.example.test.").await,
            ResponseCode::NXDomain
        );
    }
    assert!(metric(&pg, dropped).await >= 16.0);

    // The collector appears: the queued events arrive, octet-counted.
    let l = TcpListener::bind(port).unwrap();
    let (mut s, _) = l.accept().unwrap();
    let got = read_octet_counted(&mut s, 4, Duration::from_secs(20));
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got.iter().all(|m| parse_5424(m).msgid == "blocked"));

    // Killed and restarted: a later event arrives on a new connection.
    drop(s);
    drop(l);
    ask(&pg, 2, "ads.example.test.").await; // written to the dead connection, or queued
    let l = Arc::new(TcpListener::bind(port).unwrap());
    l.set_nonblocking(true).unwrap();
    let conn: Arc<Mutex<Option<TcpStream>>> = Arc::default();
    // Events keep coming: the first write after a kill is what finds the connection dead.
    poll_until(Duration::from_secs(30), "a reconnection", || {
        let (l, conn, pg) = (l.clone(), conn.clone(), &pg);
        async move {
            ask(pg, 2, "ads.example.test.").await;
            if let Ok((c, _)) = l.accept() {
                *conn.lock().unwrap() = Some(c);
            }
            conn.lock().unwrap().is_some()
        }
    })
    .await;
    let mut c = conn.lock().unwrap().take().unwrap();
    c.set_nonblocking(false).unwrap();
    ask(&pg, 2, "ads.example.test.").await;
    let got = read_octet_counted(&mut c, 1, Duration::from_secs(20));
    assert!(!got.is_empty(), "delivery after the restart");
    drop(c);
    drop(l);

    // Stalled: a listener that never accepts or reads; DNS keeps its pace.
    let _stalled = TcpListener::bind(port).unwrap();
    let t = Instant::now();
    for _ in 0..200 {
        assert_eq!(
            ask(&pg, 2, "ads.example.test.").await,
            ResponseCode::NXDomain
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "answers delayed: {:?}",
        t.elapsed()
    );
    pg.app.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// One pseudonym across replicas
// ------------------------------------------------------------------------------------------

fn logged_clients(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["client"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_one_key_file_write_the_same_pseudonym() {
    let auth = AuthServer::start_test_zone();
    let secret = tempfile::tempdir().unwrap();
    let key_file = secret.path().join("pseudonym.key");
    // As the Kubernetes Secret holds it: 32 hex digits.
    std::fs::write(&key_file, "8f14e45fceea167a5a36dedd4bea2543\n").unwrap();
    let other_key = secret.path().join("other.key");
    std::fs::write(&other_key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let cfg = |key: &std::path::Path| {
        format!(
            "{}[query_log]\npath = \"queries.jsonl\"\nkey_file = \"{}\"\n\
             [lists.b]\nsource = \"b.txt\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"b\"]\n",
            pg::base(&[auth.addr()]),
            key.display()
        )
    };
    let a = pg::start(&cfg(&key_file), LISTS).await;
    let b = pg::start(&cfg(&key_file), LISTS).await;
    let c = pg::start(&cfg(&other_key), LISTS).await;
    for p in [&a, &b, &c] {
        ask(p, 5, "ads.example.test.").await;
        assert!(p.app.flush_query_log(Duration::from_secs(5)).await);
    }
    let (ca, cb, cc) = (
        logged_clients(&a.path("queries.jsonl")),
        logged_clients(&b.path("queries.jsonl")),
        logged_clients(&c.path("queries.jsonl")),
    );
    assert_eq!(ca.len(), 1);
    assert_eq!(ca, cb, "same key file, same pseudonym");
    assert_ne!(ca, cc, "another key, another pseudonym");
    assert!(ca[0].starts_with("c-"));
}

// ------------------------------------------------------------------------------------------
// Drop-free rate (a measurement, run by hand)
// ------------------------------------------------------------------------------------------
