//! Resolver-daemon integration tests: a real pixelguard on 127.0.0.1 against real upstreams on
//! loopback (an in-process authoritative server, and scripted raw-socket upstreams for
//! misbehaviour), queried by a real DNS client over UDP and TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use support::pg::{self, base};
use support::scripted::{self, Reply};
use support::{
    AuthServer, QueryOpts, ScriptedUpstream, answer_ips, ede, query, query_raw, soa_in_authority,
    ttls,
};

const ALL_LOOPBACK_ZONE: &str = "[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn pg_for(upstreams: &[std::net::SocketAddr]) -> pg::Pg {
    pg::start(&format!("{}{ALL_LOOPBACK_ZONE}", base(upstreams)), &[]).await
}

#[tokio::test]
async fn forwards_answers_faithfully() {
    let auth = AuthServer::start_test_zone();
    let pg = pg_for(&[auth.addr()]).await;
    let o = QueryOpts::default();

    // A record, TTL, flags, the client's question case preserved.
    let m = query(pg.addr, "WwW.Example.TEST.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.recursion_available);
    assert!(!m.metadata.authoritative);
    assert_eq!(m.queries[0].name().to_ascii(), "WwW.Example.TEST.");
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    assert_eq!(ttls(&m), vec![300]);
    assert!(
        auth.seen().iter().any(|q| q.name == "WwW.Example.TEST."),
        "upstream saw the client's case"
    );

    // CNAME chain passed whole.
    let m = query(pg.addr, "chain1.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        vec![RecordType::CNAME, RecordType::CNAME, RecordType::A]
    );

    // NXDOMAIN and NODATA with the SOA.
    let m = query(pg.addr, "nope.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(soa_in_authority(&m).is_some());
    let m = query(pg.addr, "mail.example.test.", RecordType::AAAA, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert!(soa_in_authority(&m).is_some());

    // MX over TCP.
    let m = query(
        pg.addr,
        "mx.example.test.",
        RecordType::MX,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert_eq!(m.answers.len(), 1);
    assert!(matches!(m.answers[0].data, RData::MX(_)));
}

#[tokio::test]
async fn big_answers_truncate_over_udp_and_complete_over_tcp() {
    let auth = AuthServer::start_test_zone();
    let pg = pg_for(&[auth.addr()]).await;
    // The upstream answer needs TCP; pixelguard retries over TCP upstream, then must truncate to
    // the client's UDP size.
    let m = query(
        pg.addr,
        "big.example.test.",
        RecordType::TXT,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert!(
        m.metadata.truncation,
        "UDP answer above 1232 bytes is truncated"
    );
    let m = query(
        pg.addr,
        "big.example.test.",
        RecordType::TXT,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 10);
    assert!(
        auth.seen()
            .iter()
            .any(|q| q.name_is("big.example.test") && q.proto == support::Proto::Tcp)
    );
}

#[tokio::test]
async fn dnssec_bits_and_records() {
    let auth = AuthServer::start_test_zone();
    let pg = pg_for(&[auth.addr()]).await;
    // AD only when the client set AD or DO.
    let plain = QueryOpts::default();
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            ad: true,
            ..plain.clone()
        },
    )
    .await
    .unwrap();
    assert!(m.metadata.authentic_data);
    let m = query(pg.addr, "signed.example.test.", RecordType::A, &plain)
        .await
        .unwrap();
    assert!(!m.metadata.authentic_data);
    // DO=1: RRSIG kept, DO echoed; DO=0: stripped. DO and CD passed upstream as the client set them.
    let m = query(
        pg.addr,
        "signed.example.test.",
        RecordType::A,
        &QueryOpts {
            do_bit: true,
            cd: true,
            ..plain.clone()
        },
    )
    .await
    .unwrap();
    assert!(
        m.answers
            .iter()
            .any(|r| r.record_type() == RecordType::RRSIG),
        "{m:?}"
    );
    assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
    assert!(m.metadata.authentic_data, "{m:?} {:?}", auth.seen());
    let seen = auth.seen();
    let up = seen
        .iter()
        .find(|q| q.name_is("signed.example.test") && q.do_bit)
        .expect("DO passed upstream");
    assert!(up.cd, "CD passed upstream");
    let m = query(pg.addr, "signed.example.test.", RecordType::A, &plain)
        .await
        .unwrap();
    assert!(
        m.answers
            .iter()
            .all(|r| r.record_type() != RecordType::RRSIG)
    );
    assert!(!m.answers.is_empty());
    assert!(
        auth.seen()
            .iter()
            .any(|q| q.name_is("signed.example.test") && !q.do_bit && !q.cd)
    );
}

#[tokio::test]
async fn edns_opcode_and_malformed_requests() {
    let auth = AuthServer::start_test_zone();
    let pg = pg_for(&[auth.addr()]).await;
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            edns_version: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            opcode: OpCode::Status,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    // Response payload clamp(client, 512, 1232).
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            edns: Some(4096),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            edns: Some(100),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 512);
    // Junk (src/pipeline/decode.rs, src/respond/encode.rs `formerr_for`): a request whose body
    // does not parse gets FORMERR when its header is readable and says "query": the header alone,
    // id, opcode and RD copied, QR=1, RA/AD/CD/AA/TC/Z clear (the minimal header of
    // tests/conformance.rs), no records (never silence, never a crash). A response
    // (QR=1), parsable or not, and anything shorter than a header get nothing at all.
    let query_header = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let formerr = vec![
        0x12, 0x34, 0x81, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let mut header_and_garbage = query_header.to_vec();
    header_and_garbage.extend_from_slice(&[0xff; 20]);
    for junk in [&header_and_garbage[..], &query_header[..]] {
        for tcp in [false, true] {
            let r = query_raw(pg.addr, junk, tcp, ip("127.0.0.1"))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no FORMERR (tcp = {tcp}) to {}", show(junk)));
            assert_eq!(r, formerr, "FORMERR (tcp = {tcp}) to {}", show(junk));
        }
        assert_eq!(
            replies_before_sentinel(pg.addr, junk).await,
            vec![formerr.clone()],
            "exactly one FORMERR to {}",
            show(junk)
        );
    }
    let mut response_and_garbage = query_header.to_vec();
    response_and_garbage[2] |= 0x80; // QR=1
    response_and_garbage.extend_from_slice(&[0xff; 20]);
    let mut response = hickory_proto::op::Message::new(
        0x4321,
        hickory_proto::op::MessageType::Response,
        OpCode::Query,
    );
    response.add_query(hickory_proto::op::Query::query(
        "www.example.test.".parse().unwrap(),
        RecordType::A,
    ));
    let response = response.to_vec().unwrap();
    for junk in [
        &[][..],
        &[0u8; 3][..],
        &query_header[..11],
        &[0xffu8; 512][..],
        &response_and_garbage[..],
        &response[..],
    ] {
        assert_eq!(
            replies_before_sentinel(pg.addr, junk).await,
            Vec::<Vec<u8>>::new(),
            "no reply to {}",
            show(junk)
        );
    }
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
}

/// A junk input for a failure message: its length and first bytes.
fn show(junk: &[u8]) -> String {
    format!("{} bytes {:02x?}", junk.len(), &junk[..junk.len().min(16)])
}

/// Id of the sentinel query of [`replies_before_sentinel`] (no junk above uses it).
const SENTINEL_ID: u16 = 0x5e47;

/// Sends `junk` and then a sentinel query (a name the upstream has to be asked for, so it takes
/// the server's full path after the junk and is answered last) from one UDP socket; returns
/// every datagram that arrived before the sentinel's answer, which must come.
async fn replies_before_sentinel(server: std::net::SocketAddr, junk: &[u8]) -> Vec<Vec<u8>> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server).await.unwrap();
    let name = format!(
        "sentinel-{}.example.test.",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut sentinel =
        support::client::build_query(&name, RecordType::A, &QueryOpts::default()).unwrap();
    sentinel.metadata.id = SENTINEL_ID;
    sock.send(junk).await.unwrap();
    sock.send(&sentinel.to_vec().unwrap()).await.unwrap();
    let mut before = Vec::new();
    let mut buf = vec![0u8; 65_535];
    // Bounded: 16 datagrams, each within 3 s.
    for _ in 0..16 {
        let len = tokio::time::timeout(Duration::from_secs(3), sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no answer to the sentinel after {}", show(junk)))
            .unwrap();
        let datagram = buf[..len].to_vec();
        if let Ok(m) = hickory_proto::op::Message::from_vec(&datagram)
            && m.metadata.id == SENTINEL_ID
        {
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "sentinel");
            return before;
        }
        before.push(datagram);
    }
    panic!("more than 16 datagrams in answer to {}", show(junk));
}

#[tokio::test]
async fn upstream_failover_on_every_kind_of_failure() {
    let auth = AuthServer::start_test_zone();
    for (what, bad) in [
        ("silence", ScriptedUpstream::start(scripted::silence())),
        (
            "servfail",
            ScriptedUpstream::start(scripted::servfail_with_ede(23, "down")),
        ),
        ("refused", ScriptedUpstream::start(scripted::refused())),
        ("garbage", ScriptedUpstream::start(scripted::garbage())),
        (
            "zero-length",
            ScriptedUpstream::start(scripted::zero_length()),
        ),
    ] {
        let pg = pg_for(&[bad.addr(), auth.addr()]).await;
        let t = Instant::now();
        let m = query(
            pg.addr,
            "www.example.test.",
            RecordType::A,
            &QueryOpts::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            answer_ips(&m),
            vec![ip("192.0.2.1")],
            "{what}: answered by the second upstream"
        );
        assert!(bad.count() >= 1, "{what}: first upstream was tried first");
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{what}: within the deadline"
        );
        pg.app.shutdown().await;
    }
}

#[tokio::test]
async fn tc_retries_over_tcp_and_formerr_retries_without_edns() {
    let tc = ScriptedUpstream::start(scripted::tc_over_udp_then_answer_over_tcp(ip("192.0.2.7")));
    let pg = pg_for(&[tc.addr()]).await;
    let m = query(
        pg.addr,
        "t.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.7")]);
    assert_eq!(tc.count_proto(support::Proto::Tcp), 1);
    pg.app.shutdown().await;

    let fe = ScriptedUpstream::start(scripted::formerr_to_edns_else_answer(ip("192.0.2.8")));
    let pg = pg_for(&[fe.addr()]).await;
    let m = query(
        pg.addr,
        "f.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.8")]);
    let seen = fe.seen();
    assert!(seen.iter().any(|q| q.has_edns()) && seen.iter().any(|q| !q.has_edns()));
}

#[tokio::test]
async fn all_upstreams_failing_gives_servfail_within_the_deadline() {
    let a = ScriptedUpstream::start(scripted::silence());
    let b = ScriptedUpstream::start(scripted::silence());
    let pg = pg_for(&[a.addr(), b.addr()]).await;
    let t = Instant::now();
    let m = query(
        pg.addr,
        "x.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        t.elapsed() < Duration::from_millis(1600),
        "deadline 1.5 s, took {:?}",
        t.elapsed()
    );
    assert!(a.count() >= 1 && b.count() >= 1, "both tried in order");
    // The upstream's SERVFAIL with EDE is passed through when it is the last word.
    let s = ScriptedUpstream::start(scripted::servfail_with_ede(22, "no reachable authority"));
    let pg2 = pg_for(&[s.addr()]).await;
    let m = query(
        pg2.addr,
        "y.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(ede(&m), vec![(22, "no reachable authority".to_owned())]);
}

#[tokio::test]
async fn identical_concurrent_queries_are_coalesced() {
    let slow = ScriptedUpstream::start(scripted::delayed(
        Duration::from_millis(300),
        scripted::answer_a(ip("192.0.2.9"), 60),
    ));
    let pg = pg_for(&[slow.addr()]).await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let addr = pg.addr;
        tasks.push(tokio::spawn(async move {
            query(
                addr,
                "same.example.test.",
                RecordType::A,
                &QueryOpts::default(),
            )
            .await
        }));
    }
    for t in tasks {
        let m = t.await.unwrap().unwrap();
        assert_eq!(answer_ips(&m), vec![ip("192.0.2.9")]);
    }
    assert_eq!(
        slow.count(),
        1,
        "five identical questions, one upstream query"
    );
}

#[tokio::test]
async fn cache_decrements_ttls_and_caches_negatives() {
    let auth = AuthServer::start_test_zone();
    let pg = pg_for(&[auth.addr()]).await;
    let o = QueryOpts::default();
    let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(ttls(&m), vec![300]);
    // Part of the scenario, not synchronisation: let a second of the TTL pass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = auth.count();
    let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(auth.count(), before, "served from the cache");
    let t = ttls(&m)[0];
    assert!((295..300).contains(&t), "TTL decremented: {t}");
    // Negative caching (RFC 2308).
    query(pg.addr, "missing.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    let before = auth.count();
    let m = query(pg.addr, "missing.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(auth.count(), before, "negative answer cached");
    // A 2-second TTL expires and is fetched again.
    query(pg.addr, "short.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    let before = auth.count();
    // Part of the scenario, not synchronisation: wait out the 2 s TTL.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    query(pg.addr, "short.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(auth.count(), before + 1, "expired entry refetched");
    // DO is part of the key: a DO=1 query is not answered from the DO=0 entry.
    let before = auth.count();
    query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts {
            do_bit: true,
            ..o.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(auth.count(), before + 1);
}

#[tokio::test]
async fn truncated_upstream_answers_are_never_cached() {
    // An upstream whose TCP side is closed: the TC=1 UDP answer is the only thing pixelguard gets.
    let up = ScriptedUpstream::start(|q: &support::ScriptedQuery| match (q.proto, &q.message) {
        (support::Proto::Udp, Some(m)) => Reply::Message(scripted::truncated(m)),
        _ => Reply::Close,
    });
    let pg = pg_for(&[up.addr()]).await;
    // The only upstream gives no usable answer (TC=1 over UDP, TCP closed): SERVFAIL, both times,
    // with the question and no records (a TC=1 answer is never passed on as if complete).
    for round in 0..2 {
        let before = up.count();
        let m = query(
            pg.addr,
            "tc.example.test.",
            RecordType::A,
            &QueryOpts::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::ServFail,
            "round {round}"
        );
        assert!(!m.metadata.truncation, "round {round}");
        assert_eq!(m.queries.len(), 1, "round {round}");
        assert_eq!(m.queries[0].name().to_string(), "tc.example.test.");
        assert!(m.answers.is_empty(), "round {round}: {:?}", m.answers);
        assert_eq!(ede(&m), Vec::<(u16, String)>::new(), "round {round}");
        assert!(
            up.count() > before,
            "round {round}: asked again: the TC answer was not cached"
        );
        assert!(
            up.seen()[before..]
                .iter()
                .any(|q| q.proto == support::Proto::Udp && q.name_is("tc.example.test")),
            "round {round}: asked over UDP"
        );
    }
}

#[tokio::test]
async fn zones_longest_prefix_and_refused_outside() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[lists.www]\nsource = \"www.txt\"\n\n[zones.wide]\nnetworks = [\"127.0.0.0/29\"]\n\n[zones.narrow]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"www\"]\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[("www.txt", "www.example.test\n")]).await;
    // 127.0.0.2 is in `wide` (no lists): resolved.
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts::from_source(ip("127.0.0.2")),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    // 127.0.0.3 is in both; the /32 wins, and it blocks.
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts::from_source(ip("127.0.0.3")),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // 127.0.0.9 is in no zone: REFUSED, and nothing reaches the upstream.
    let before = auth.count();
    let m = query(
        pg.addr,
        "mail.example.test.",
        RecordType::A,
        &QueryOpts::from_source(ip("127.0.0.9")),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(auth.count(), before);
    assert_eq!(
        pg.app
            .pipeline
            .recorder
            .count(pixelguard::outcome::Outcome::Refused),
        1
    );
}

#[tokio::test]
async fn tcp_connections_are_capped_and_idle_ones_closed() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}{ALL_LOOPBACK_ZONE}",
        base(&[auth.addr()]).replace(
            "[upstream]",
            "tcp_max_connections = 1\ntcp_idle_timeout = \"300ms\"\n\n[upstream]"
        )
    );
    let pg = pg::start(&config, &[]).await;
    // Hold the only slot with an idle connection; a second connection's query waits until the
    // first is closed by the idle timeout, then is answered.
    let _idle = tokio::net::TcpStream::connect(pg.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "waited for the slot: {:?}",
        t.elapsed()
    );
}
