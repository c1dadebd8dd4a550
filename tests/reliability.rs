//! Reliability tests through a real server on loopback: per-client rate limits (REFUSED and
//! drop), serve-stale when the upstream is gone, RFC 8482 answers to ANY, and the per-client TCP
//! connection cap. Every loop is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, answer_ips, ede, query, ttls};
use tokio::io::AsyncReadExt;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn from(n: u8) -> QueryOpts {
    QueryOpts {
        timeout: Duration::from_millis(300),
        ..QueryOpts::from_source(ip(&format!("127.0.0.{n}")))
    }
}

#[tokio::test]
async fn per_client_rate_limits_refuse_or_drop() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[zones.limited]\nnetworks = [\"127.0.0.5/32\", \"127.0.0.6/32\"]\nrate_limit = {{ qps = 5, burst = 10 }}\n\
         [zones.dropped]\nnetworks = [\"127.0.0.7/32\"]\nrate_limit = {{ qps = 1, burst = 5, action = \"drop\" }}\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    let (mut ok, mut refused) = (0, 0);
    let t0 = std::time::Instant::now();
    for _ in 0..30 {
        let m = query(pg.addr, "www.example.test.", RecordType::A, &from(5))
            .await
            .unwrap();
        match m.metadata.response_code {
            ResponseCode::NoError => ok += 1,
            ResponseCode::Refused => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // The burst of 10, plus what 5 qps refilled while the loop ran (a slow machine refills more).
    let refill = (t0.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(
        ok >= 10 && ok <= 10 + refill + 1,
        "burst 10 + refill {refill}: {ok} answered"
    );
    assert!(refused > 0);
    assert_eq!(ok + refused, 30);
    // Another client has its own bucket.
    let m = query(pg.addr, "www.example.test.", RecordType::A, &from(6))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // Over TCP the same bucket applies.
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            tcp: true,
            ..from(5)
        },
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // action = "drop": no answer at all past the burst.
    let mut timeouts = 0;
    for _ in 0..20 {
        if query(pg.addr, "www.example.test.", RecordType::A, &from(7))
            .await
            .is_err()
        {
            timeouts += 1;
        }
    }
    assert!(timeouts >= 8, "dropped past the burst: {timeouts}");
    assert!(
        pg.app
            .pipeline
            .recorder
            .count(pixelguard::outcome::Outcome::RateLimited)
            >= 25
    );
}

#[tokio::test]
async fn serves_stale_answers_when_every_upstream_is_gone() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    let m = query(
        pg.addr,
        "short.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.9")]);
    drop(auth); // the only upstream goes away
    // Until the 2 s TTL has run out: the cached entry is stale.
    let key = pixelguard::cache::CacheKey::new("short.example.test", 1, 1, false, false);
    assert!(
        support::wait_until(Duration::from_secs(5), || pg
            .app
            .pipeline
            .cache
            .get(key.as_bytes(), std::time::Instant::now())
            .is_none())
        .await,
        "the entry expires"
    );
    let m = query(
        pg.addr,
        "short.example.test.",
        RecordType::A,
        &QueryOpts {
            timeout: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.9")], "the stale answer");
    assert!(ttls(&m).iter().all(|t| *t <= 30));
    assert_eq!(ede(&m).first().map(|e| e.0), Some(3), "EDE 3 Stale Answer");
    // A name never cached: SERVFAIL.
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            timeout: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn any_gets_a_minimal_rfc8482_answer() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[lists.t]\nsource = \"builtin:trackers\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"t\"]\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::ANY,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(m.answers.len(), 1);
    assert!(
        matches!(&m.answers[0].data, RData::HINFO(h) if h.cpu == b"RFC8482".to_vec().into_boxed_slice()),
        "{m:?}"
    );
    assert!(
        !auth.seen().iter().any(|q| q.qtype == RecordType::ANY),
        "ANY is never forwarded"
    );
    let m = query(
        pg.addr,
        "connect.facebook.net.",
        RecordType::ANY,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "a blocked name stays blocked"
    );
}

/// One query for www.example.test A on an open TCP connection; the answer's addresses.
async fn tcp_exchange(s: &mut tokio::net::TcpStream, id: u16) -> Vec<IpAddr> {
    use tokio::io::AsyncWriteExt;
    let mut q = support::client::build_query("www.example.test.", RecordType::A, &from(7)).unwrap();
    q.metadata.id = id;
    let b = q.to_vec().unwrap();
    let mut out = u16::try_from(b.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(&b);
    s.write_all(&out).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut len))
        .await
        .expect("an answer within 3 s")
        .unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.unwrap();
    let m = hickory_proto::op::Message::from_vec(&buf).unwrap();
    assert_eq!(m.metadata.id, id);
    answer_ips(&m)
}

#[tokio::test]
async fn tcp_connections_per_client_are_capped() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        base(&[auth.addr()]).replace(
            "[upstream]",
            "tcp_max_connections_per_client = 2\n\n[upstream]"
        )
    );
    let pg = pg::start(&config, &[]).await;
    let connect = |src: &str| {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{src}:0").parse().unwrap()).unwrap();
        s.connect(pg.addr)
    };
    // Two connections of 127.0.0.7, each answered once: the server has accepted (and counts)
    // both before the third connects.
    let mut a = connect("127.0.0.7").await.unwrap();
    let mut b = connect("127.0.0.7").await.unwrap();
    for (n, s) in [&mut a, &mut b].into_iter().enumerate() {
        assert_eq!(
            tcp_exchange(s, 0x100 + n as u16).await,
            vec![ip("192.0.2.1")],
            "connection {n} is served"
        );
    }
    let mut c = connect("127.0.0.7").await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection of one client is closed at once");
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            tcp: true,
            ..from(8)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        answer_ips(&m),
        vec![ip("192.0.2.1")],
        "another client still gets in"
    );
}

#[tokio::test]
async fn a_dead_upstream_is_skipped_then_probed_again() {
    let auth = AuthServer::start_test_zone();
    let silent = support::ScriptedUpstream::start(support::scripted::silence());
    // Cache off, so every query goes upstream.
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        base(&[silent.addr(), auth.addr()])
            .replace("[upstream]", "[cache]\nmax_entries = 0\n\n[upstream]")
    );
    let pg = pg::start(&config, &[]).await;
    let o = QueryOpts {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    for _ in 0..3 {
        let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
            .await
            .unwrap();
        assert_eq!(answer_ips(&m).len(), 1, "answered by the second upstream");
    }
    let tried = silent.count();
    assert!(tried >= 3);
    // The third failure (inside the last query) started the back-off.
    let backed_off = std::time::Instant::now();
    // Backed off: the next queries go straight to the healthy upstream, fast.
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let m = query(pg.addr, "mail.example.test.", RecordType::A, &o)
            .await
            .unwrap();
        assert_eq!(answer_ips(&m).len(), 1);
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "no timeout spent on the dead upstream: {:?}",
            t.elapsed()
        );
    }
    assert_eq!(silent.count(), tried, "skipped while backed off");
    // After the back-off period (1 s) the dead upstream is probed again by the next query: ask
    // until it has been probed (every query still answered by the healthy one), then once more.
    support::poll_until(
        Duration::from_secs(5),
        "the dead upstream is never probed again",
        || async {
            let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
                .await
                .unwrap();
            assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
            silent.count() != tried
        },
    )
    .await;
    assert!(
        backed_off.elapsed() >= Duration::from_millis(900),
        "not probed before the 1 s back-off ran out: {:?}",
        backed_off.elapsed()
    );
    let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    assert_eq!(silent.count(), tried + 1, "probed once after the back-off");
}

#[tokio::test]
async fn fastest_strategy_prefers_the_quicker_upstream() {
    let auth = AuthServer::start_test_zone();
    let slow = support::ScriptedUpstream::start(support::scripted::delayed(
        Duration::from_millis(120),
        support::scripted::answer_a(ip("192.0.2.99"), 60),
    ));
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        base(&[slow.addr(), auth.addr()]).replace(
            "[upstream]",
            "[cache]\nmax_entries = 0\n\n[upstream]\nstrategy = \"fastest\""
        )
    );
    let pg = pg::start(&config, &[]).await;
    let o = QueryOpts {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    // The first query measures the slow one (tried first: never measured), then the fast one is
    // measured when the slow one... answers; make the fast one known by asking until both have RTTs.
    for _ in 0..3 {
        let _ = query(pg.addr, "www.example.test.", RecordType::A, &o)
            .await
            .unwrap();
    }
    let before = slow.count();
    let mut fast_answers = 0;
    for _ in 0..10 {
        let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
            .await
            .unwrap();
        if answer_ips(&m) == vec![ip("192.0.2.1")] {
            fast_answers += 1;
        }
    }
    assert_eq!(fast_answers, 10, "all from the fast upstream");
    assert_eq!(
        slow.count(),
        before,
        "the slow one is not asked while the fast one is healthy"
    );
}

#[tokio::test]
async fn pipelined_tcp_queries_are_answered_without_head_of_line_blocking() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    use tokio::io::AsyncWriteExt;
    let slow = support::ScriptedUpstream::start(support::scripted::delayed(
        Duration::from_millis(600),
        support::scripted::answer_a(ip("192.0.2.50"), 60),
    ));
    let config = format!(
        "{}[lists.t]\nsource = \"builtin:trackers\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"t\"]\n",
        base(&[slow.addr()]).replace("timeout = \"400ms\"", "timeout = \"1s\"")
    );
    let pg = pg::start(&config, &[]).await;
    let frame = |id: u16, name: &str| {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let b = m.to_vec().unwrap();
        let mut out = (b.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&b);
        out
    };
    let mut s = tokio::net::TcpStream::connect(pg.addr).await.unwrap();
    // First a slow cache miss, then a blocked name, on one connection, back to back.
    let mut both = frame(1, "slow.example.test.");
    both.extend(frame(2, "connect.facebook.net."));
    s.write_all(&both).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut len))
            .await
            .unwrap()
            .unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.unwrap();
        ids.push(Message::from_vec(&buf).unwrap().metadata.id);
    }
    assert_eq!(
        ids,
        vec![2, 1],
        "the blocked answer did not wait behind the slow one"
    );
}

#[tokio::test]
async fn stale_answers_are_refreshed_in_the_background_when_the_upstream_returns() {
    let up = support::ScriptedUpstream::start(support::scripted::answer_a(ip("192.0.2.70"), 1));
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        base(&[up.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    let o = QueryOpts {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let m = query(pg.addr, "r.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.70")]);
    up.set_behaviour(support::scripted::silence());
    // Until the 1 s TTL has run out: the cached entry is stale.
    let key = pixelguard::cache::CacheKey::new("r.example.test", 1, 1, false, false);
    assert!(
        support::wait_until(Duration::from_secs(5), || pg
            .app
            .pipeline
            .cache
            .get(key.as_bytes(), std::time::Instant::now())
            .is_none())
        .await,
        "the entry expires"
    );
    let m = query(pg.addr, "r.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(ede(&m).first().map(|e| e.0), Some(3), "stale");
    // The upstream returns with new data: the background refresh (after 1 s) fetches it.
    up.set_behaviour(support::scripted::answer_a(ip("192.0.2.71"), 300));
    // Wait for the refresh: until the cache holds a fresh (unexpired) entry again.
    assert!(
        support::wait_until(Duration::from_secs(10), || pg
            .app
            .pipeline
            .cache
            .get(key.as_bytes(), std::time::Instant::now())
            .is_some())
        .await,
        "the background refresh fills the cache"
    );
    let before = up.count();
    let m = query(pg.addr, "r.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(
        answer_ips(&m),
        vec![ip("192.0.2.71")],
        "fresh data, refreshed in the background"
    );
    assert!(ede(&m).is_empty());
    assert_eq!(
        up.count(),
        before,
        "served from the cache the refresh filled"
    );
}

#[tokio::test]
async fn upstream_queries_in_flight_are_bounded() {
    let slow = support::ScriptedUpstream::start(support::scripted::delayed(
        Duration::from_millis(300),
        support::scripted::answer_a(ip("192.0.2.80"), 60),
    ));
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n",
        base(&[slow.addr()]).replace("[upstream]", "[upstream]\nmax_inflight = 1")
    );
    let pg = pg::start(&config, &[]).await;
    let addr = pg.addr;
    let first = tokio::spawn(async move {
        query(
            addr,
            "one.example.test.",
            RecordType::A,
            &QueryOpts::default(),
        )
        .await
    });
    // Wait until the first query holds the only slot and has reached the upstream.
    assert!(
        support::wait_until(Duration::from_secs(3), || pg
            .app
            .pipeline
            .upstream_slots
            .available_permits()
            == 0
            && slow.count() == 1)
        .await,
        "the first query holds the slot"
    );
    let t = std::time::Instant::now();
    let m = query(
        pg.addr,
        "two.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::ServFail,
        "no slot: SERVFAIL at once"
    );
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "without waiting: {:?}",
        t.elapsed()
    );
    let m = first.await.unwrap().unwrap();
    assert_eq!(
        answer_ips(&m),
        vec![ip("192.0.2.80")],
        "the query holding the slot is answered"
    );
    assert_eq!(slow.count(), 1);
}
