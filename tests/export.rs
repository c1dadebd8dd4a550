//! dnstap export (issue 21), against a Frame Streams collector written in the test
//! (pixelguard's own `framestream::Reader`) on loopback: what the sink sends (message types,
//! names, rcodes, the policy `extra`), privacy (no client address under `client = "hash"`), the
//! faults (collector absent at start, killed and restarted, stalled: DNS keeps answering, drops
//! are counted, delivery resumes), and the drop-free rate of both sinks (a measurement, ignored).
//! Syslog is in tests/export_syslog.rs; the Debian receivers (fstrm_capture, dnstap-ldns,
//! rsyslog) in tests/export_debian.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/export.rs"]
mod common;
mod support;

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KEY, LISTS, ask, config, free_port, metric};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use pixelguard::export::dnstap::{Dnstap, MessageKind};
use pixelguard::export::framestream::{DNSTAP_CONTENT_TYPE, Reader};
use prost::Message as _;
use support::{AuthServer, pg, poll_until};

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
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (s, c, f) = (stop.clone(), conns.clone(), frames.clone());
        let thread = std::thread::spawn(move || {
            // Blocking accept; `kill` sets `stop` and connects once to wake it.
            while let Ok((sock, _)) = l.accept() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
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
        let _ = TcpStream::connect(self.addr);
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
    // Shutdown ends the stream with STOP / FINISH: the collector has read every frame before
    // FINISH, so nothing more can arrive and the count below is final.
    pg.app.shutdown().await;
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
            exception: None,
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
            if d > 0 {
                break;
            }
            rate *= 2;
        }
        rt.block_on(x.shutdown(Duration::from_secs(2)));
    }
    col.kill();
}
