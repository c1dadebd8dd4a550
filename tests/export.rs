//! dnstap and syslog export (issue 21), against receivers written in the test: a Frame Streams
//! collector (pixelguard's own `framestream::Reader`) and UDP / TCP syslog receivers, all on
//! loopback. Covers what each sink sends (message types, names, rcodes, the policy `extra`,
//! RFC 5424 structured data), privacy (no client address under `client = "hash"`), the faults
//! (collector absent at start, killed and restarted, stalled: DNS keeps answering, drops are
//! counted, delivery resumes), and one pseudonym across two instances sharing a key file.
//! The Debian receivers (fstrm_capture, dnstap-ldns, rsyslog) are in tests/export_debian.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use pixelguard::export::dnstap::{Dnstap, MessageKind};
use pixelguard::export::framestream::{DNSTAP_CONTENT_TYPE, Reader};
use prost::Message as _;
use support::{AuthServer, QueryOpts, loopback, pg, poll_until, query};

const KEY: &str = "export-test-key-000001";

fn from(n: u8) -> QueryOpts {
    QueryOpts::from_source(loopback(n))
}

async fn ask(pg: &pg::Pg, n: u8, name: &str) -> ResponseCode {
    query(pg.addr, name, RecordType::A, &from(n))
        .await
        .unwrap_or_else(|e| panic!("{name} from 127.0.0.{n}: {e}"))
        .metadata
        .response_code
}

/// A metric sample from the admin server's /metrics (0 when absent).
async fn metric(pg: &pg::Pg, series: &str) -> f64 {
    let url = format!("http://{}/metrics", pg.app.admin_addr.unwrap());
    let text = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn config(upstream: SocketAddr, sections: &str) -> String {
    format!(
        "{}[query_log]\npath = \"queries.jsonl\"\nkey = \"{KEY}\"\n\n{sections}\n\
         [lists.b]\nsource = \"b.txt\"\n[lists.allow]\nsource = \"allow.txt\"\n\
         [zones.office]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"b\"]\nallow = [\"allow\"]\n\
         [zones.lab]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"b\"]\nmode = \"log\"\nquery_log = \"all\"\nquery_log_client = \"masked\"\n",
        pg::base(&[upstream])
    )
}

const LISTS: &[(&str, &str)] = &[
    ("b.txt", "ads.example.test\nmx.example.test\n"),
    ("allow.txt", "mx.example.test\n"),
];

// ------------------------------------------------------------------------------------------
// A Frame Streams collector
// ------------------------------------------------------------------------------------------

/// A dnstap collector on a TCP port: accepts connections one after another, keeps every data
/// frame. `kill` closes the listener and every connection (the port can be bound again).
struct Collector {
    addr: SocketAddr,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    fn start(addr: SocketAddr, frames: Arc<Mutex<Vec<Vec<u8>>>>) -> Collector {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (s, c, f) = (stop.clone(), conns.clone(), frames.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((sock, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                sock.set_nonblocking(false).unwrap();
                c.lock().unwrap().push(sock.try_clone().unwrap());
                let f = f.clone();
                std::thread::spawn(move || {
                    let Ok(mut r) = Reader::accept(sock, DNSTAP_CONTENT_TYPE) else {
                        return;
                    };
                    while let Ok(Some(frame)) = r.next_frame() {
                        f.lock().unwrap().push(frame);
                    }
                });
            }
        });
        Collector {
            addr,
            frames,
            stop,
            conns,
            thread: Some(thread),
        }
    }

    fn count(&self) -> usize {
        self.frames.lock().unwrap().len()
    }

    fn decoded(&self) -> Vec<Dnstap> {
        decode(&self.frames.lock().unwrap())
    }

    fn kill(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn decode(frames: &[Vec<u8>]) -> Vec<Dnstap> {
    frames
        .iter()
        .map(|f| Dnstap::decode(&f[..]).unwrap())
        .collect()
}

fn kind(d: &Dnstap) -> MessageKind {
    MessageKind::try_from(d.message.as_ref().unwrap().r#type).unwrap()
}

fn dns(d: &Dnstap) -> Message {
    let m = d.message.as_ref().unwrap();
    let b = m
        .response_message
        .as_ref()
        .or(m.query_message.as_ref())
        .unwrap();
    Message::from_vec(b).unwrap()
}

fn extra(d: &Dnstap) -> serde_json::Value {
    serde_json::from_slice(d.extra.as_ref().unwrap()).unwrap()
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnstap_carries_policy_answers_with_extra_and_no_client_address() {
    let auth = AuthServer::start_test_zone();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), Arc::default());
    let sections = format!(
        "[dnstap]\ntcp = \"{}\"\nidentity = \"dns-test\"\nforwarder = true\n",
        col.addr
    );
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    // office (policy): the blocked name is sent, the clean one and the exception are not.
    assert_eq!(
        ask(&pg, 2, "ads.example.test.").await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 2, "www.example.test.").await,
        ResponseCode::NoError
    );
    assert_eq!(ask(&pg, 2, "mx.example.test.").await, ResponseCode::NoError);
    // lab (its query_log = "all" applies; masked): would-block and a clean name, fetched upstream.
    assert_eq!(
        ask(&pg, 3, "ads.example.test.").await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 3, "www.example.test.").await,
        ResponseCode::NoError
    );
    // 2 (office blocked) + 4 (lab would-block, upstream) + 2 (lab clean, from the cache).
    poll_until(Duration::from_secs(10), "8 dnstap frames", || async {
        col.count() >= 8
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await; // nothing more arrives (a bound, not a sync)
    let msgs = col.decoded();
    assert_eq!(msgs.len(), 8, "{msgs:#?}");
    let kinds: Vec<MessageKind> = msgs.iter().map(kind).collect();
    use MessageKind::*;
    assert_eq!(kinds[..2], [ClientQuery, ClientResponse]);
    assert_eq!(
        kinds[2..6],
        [
            ClientQuery,
            ForwarderQuery,
            ForwarderResponse,
            ClientResponse
        ]
    );
    for d in &msgs {
        assert_eq!(d.identity.as_deref(), Some(&b"dns-test"[..]));
        assert!(String::from_utf8_lossy(d.version.as_deref().unwrap()).starts_with("pixelguard "));
    }
    let r = dns(&msgs[1]);
    assert_eq!(r.queries[0].name().to_ascii(), "ads.example.test.");
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    let x = extra(&msgs[1]);
    assert_eq!(x["zone"], "office");
    assert_eq!(x["outcome"], "blocked");
    assert_eq!(x["list"], "b");
    assert_eq!(x["rule"], "ads.example.test");
    assert!(x["client"].as_str().unwrap().starts_with("c-"), "{x}");
    assert!(
        x.get("vendor").is_some() && x.get("category").is_some(),
        "{x}"
    );
    // hash: no address anywhere in office's frames.
    for f in &col.frames.lock().unwrap()[..2] {
        assert!(
            !f.windows(4).any(|w| w == [127, 0, 0, 2]),
            "client address in a frame"
        );
        assert!(!String::from_utf8_lossy(f).contains("127.0.0.2"));
    }
    assert_eq!(msgs[0].message.as_ref().unwrap().query_address, None);
    // lab: masked network in the address field and in extra; would-block resolved normally.
    let x = extra(&msgs[5]);
    assert_eq!(
        (x["zone"].as_str(), x["outcome"].as_str()),
        (Some("lab"), Some("would_block"))
    );
    assert_eq!(x["client"], "127.0.0.0/24");
    assert_eq!(
        msgs[5].message.as_ref().unwrap().query_address.as_deref(),
        Some(&[127, 0, 0, 0][..])
    );
    let fwd = msgs[3].message.as_ref().unwrap();
    assert_eq!(fwd.response_port, Some(u32::from(auth.addr().port())));
    assert_eq!(kinds[6..], [ClientQuery, ClientResponse]);
    let r = dns(&msgs[7]);
    assert_eq!(r.queries[0].name().to_ascii(), "www.example.test.");
    assert_eq!(extra(&msgs[7])["outcome"], "cached");
    pg.app.shutdown().await;
    col.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnstap_faults_absent_killed_restarted_and_stalled_never_delay_dns() {
    let auth = AuthServer::start_test_zone();
    let port = free_port();
    let sections = format!("[dnstap]\ntcp = \"{port}\"\nbuffer = 8\n");
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    let dropped = "pixelguard_export_dropped_total{sink=\"dnstap\"}";
    let sent = "pixelguard_export_sent_total{sink=\"dnstap\"}";

    // 1. Absent at start: every query answered at once; what does not fit the queue is dropped.
    let t = Instant::now();
    for _ in 0..40 {
        assert_eq!(
            ask(&pg, 2, "ads.example.test.").await,
            ResponseCode::NXDomain
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "answers delayed: {:?}",
        t.elapsed()
    );
    assert!(metric(&pg, dropped).await >= 32.0, "drops counted");

    // 2. The collector appears: the queued events (the oldest 8) are delivered.
    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let col = Collector::start(port, frames.clone());
    poll_until(
        Duration::from_secs(20),
        "delivery after the collector starts",
        || async { col.count() >= 2 * 8 },
    )
    .await;

    // 3. Killed mid-run and restarted: delivery resumes on a new connection.
    col.kill();
    for _ in 0..5 {
        ask(&pg, 2, "ads.example.test.").await;
    }
    let before = frames.lock().unwrap().len();
    let col = Collector::start(port, frames.clone());
    poll_until(
        Duration::from_secs(30),
        "delivery after a restart",
        || async {
            ask(&pg, 2, "ads.example.test.").await;
            col.count() > before
        },
    )
    .await;
    col.kill();

    // 4. Stalled: a listener that accepts (kernel backlog) and never reads or answers.
    let stalled = TcpListener::bind(port).unwrap();
    let sent_before = metric(&pg, sent).await;
    let dropped_before = metric(&pg, dropped).await;
    let t = Instant::now();
    for _ in 0..200 {
        assert_eq!(
            ask(&pg, 2, "ads.example.test.").await,
            ResponseCode::NXDomain
        );
    }
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "answers delayed by a stalled collector: {took:?}"
    );
    assert!(
        metric(&pg, dropped).await >= dropped_before + 150.0,
        "drops counted while stalled"
    );
    // At most the few events written to the killed collector's socket before TCP noticed.
    assert!(
        metric(&pg, sent).await < sent_before + 10.0,
        "nothing sent to a stalled collector"
    );
    drop(stalled);
    pg.app.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// syslog
// ------------------------------------------------------------------------------------------

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

/// The highest offered rate at which each sink drops nothing: events handed to the export at a
/// paced rate for 1 s each (rates doubling from 12,500/s), into in-process collectors on
/// loopback that read as fast as they can; the default queue (4096). Prints one line per rate.
/// `cargo test --release --test export -- --ignored drop_free --nocapture`
#[test]
#[ignore = "a measurement: run by hand with --release"]
fn drop_free_rate_per_sink() {
    use pixelguard::config::{
        ClientMode, DEFAULT_EXPORT_BUFFER, DnstapConfig, DnstapTarget, RecordMode, SyslogConfig,
        SyslogTransport,
    };
    use pixelguard::export::{Export, QueryEvent, Wants};
    use pixelguard::metrics::Metrics;
    use pixelguard::outcome::Outcome;
    use pixelguard::querylog::{Entry, Pseudonymizer};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let frames: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let col = Collector::start("127.0.0.1:0".parse().unwrap(), frames.clone());
    // A syslog receiver that reads and discards.
    let sl = TcpListener::bind("127.0.0.1:0").unwrap();
    let syslog_addr = sl.local_addr().unwrap();
    std::thread::spawn(move || {
        while let Ok((mut s, _)) = sl.accept() {
            std::thread::spawn(move || {
                let mut b = vec![0u8; 1 << 16];
                while matches!(s.read(&mut b), Ok(n) if n > 0) {}
            });
        }
    });
    let key = Arc::new(Pseudonymizer::from_secret(KEY));
    let event = |i: u32| QueryEvent {
        entry: Entry {
            ts: std::time::SystemTime::now(),
            zone: Some("office".into()),
            client: std::net::IpAddr::from([10, 1, (i >> 8) as u8, i as u8]),
            client_mode: ClientMode::Hash,
            qname: format!("px{}.tracker.example", i % 1000).into(),
            qtype: RecordType::A,
            outcome: Outcome::Blocked,
            rcode: ResponseCode::NXDomain,
            list: Some("trackers".into()),
            rule: Some("tracker.example".into()),
            vendor: Some("acme".into()),
            category: Some("advertising"),
            cloaked_via: None,
            upstream: None,
            duration: Duration::from_micros(80),
        },
        policy_hit: true,
        exception: false,
        bypass: None,
        client_override: None,
        key: key.clone(),
    };
    for sink in ["dnstap", "syslog"] {
        let m = Metrics::new();
        let (d, s) = match sink {
            "dnstap" => (
                Some(DnstapConfig {
                    target: DnstapTarget::Tcp(col.addr),
                    record: RecordMode::Policy,
                    client: ClientMode::Hash,
                    forwarder: false,
                    identity: "bench".into(),
                    buffer: DEFAULT_EXPORT_BUFFER,
                }),
                None,
            ),
            _ => (
                None,
                Some(SyslogConfig {
                    server: syslog_addr,
                    transport: SyslogTransport::Tcp,
                    facility: 21,
                    client: ClientMode::Hash,
                    hostname: "bench".into(),
                    ca_certs: Vec::new(),
                    buffer: DEFAULT_EXPORT_BUFFER,
                }),
            ),
        };
        let x = Export::start(d, s, &m).unwrap().unwrap();
        let to = Wants {
            dnstap: sink == "dnstap",
            syslog: sink == "syslog",
        };
        let dropped = m.export_dropped.with_label_values(&[sink]);
        let sent = m.export_sent.with_label_values(&[sink]);
        // Let it connect.
        let t = Instant::now();
        while sent.get() == 0 && t.elapsed() < Duration::from_secs(10) {
            x.send(event(0), to);
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut rate = 12_500u64;
        while rate <= 3_200_000 {
            let d0 = dropped.get();
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < Duration::from_secs(1) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                while n < due {
                    x.send(event(n as u32), to);
                    n += 1;
                }
                std::hint::spin_loop();
            }
            let d = dropped.get() - d0;
            println!("{sink}: offered {rate}/s for 1 s: {n} events, {d} dropped");
            // Let the queue drain before the next rate.
            let t = Instant::now();
            while sent.get() + dropped.get() < n && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(200));
            if d > 0 {
                break;
            }
            rate *= 2;
        }
        rt.block_on(x.shutdown(Duration::from_secs(2)));
    }
    col.kill();
}
