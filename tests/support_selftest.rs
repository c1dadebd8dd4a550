//! Self-test of the integration-test support code in `tests/support/`: the authoritative
//! server, the scripted upstream and the client, all on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;

use support::client::{
    self, QueryOpts, answer_ips, answer_types, cname_targets, ede, query, query_raw,
    query_raw_timeout, soa_in_authority, ttls,
};
use support::scripted::{self, Reply};
use support::{AuthServer, Proto, ScriptedUpstream, loopback};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ----------------------------------------------------------------------------------------
// AuthServer
// ----------------------------------------------------------------------------------------

#[tokio::test]
async fn auth_answers_a_and_aaaa() {
    let auth = AuthServer::start_test_zone();
    let r = query(
        auth.addr(),
        "www.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative);
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.1")]);
    assert_eq!(ttls(&r), vec![300]);
    assert!(!r.metadata.authentic_data, "no AD unless asked");

    let r = query(
        auth.addr(),
        "www.example.test",
        RecordType::AAAA,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&r), vec![ip("2001:db8::1")]);

    let r = query(
        auth.addr(),
        "short.example.test",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(ttls(&r), vec![2]);
}

#[tokio::test]
async fn auth_chases_cname_chains_in_zone_only() {
    let auth = AuthServer::start_test_zone();
    let opts = QueryOpts::default();
    let r = query(auth.addr(), "chain1.example.test", RecordType::A, &opts)
        .await
        .unwrap();
    assert_eq!(
        answer_types(&r),
        vec![RecordType::CNAME, RecordType::CNAME, RecordType::A]
    );
    assert_eq!(
        cname_targets(&r),
        vec!["chain2.example.test.", "www.example.test."]
    );
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.1")]);

    let r = query(auth.addr(), "alias.example.test", RecordType::A, &opts)
        .await
        .unwrap();
    assert_eq!(ttls(&r), vec![120, 300]);

    // Cloaked tracker: CNAME to outside the zone, no A.
    let r = query(auth.addr(), "metrics.example.test", RecordType::A, &opts)
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(cname_targets(&r), vec!["x.sc.omtrdc.net."]);
    assert!(answer_ips(&r).is_empty());

    // Explicit CNAME query is not chased.
    let r = query(auth.addr(), "alias.example.test", RecordType::CNAME, &opts)
        .await
        .unwrap();
    assert_eq!(answer_types(&r), vec![RecordType::CNAME]);
}

#[tokio::test]
async fn auth_nxdomain_and_nodata_carry_soa() {
    let auth = AuthServer::start_test_zone();
    let opts = QueryOpts::default();
    let r = query(auth.addr(), "nope.example.test", RecordType::A, &opts)
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(r.answers.is_empty());
    assert_eq!(
        soa_in_authority(&r),
        Some(("example.test.".to_owned(), 300, 3600))
    );

    let r = query(auth.addr(), "mail.example.test", RecordType::AAAA, &opts)
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert!(soa_in_authority(&r).is_some());

    // Empty non-terminal: NODATA, not NXDOMAIN.
    let r = query(auth.addr(), "sub.example.test", RecordType::A, &opts)
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);

    // Outside the zone.
    let r = query(auth.addr(), "www.other.test", RecordType::A, &opts)
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);

    let r = query(auth.addr(), "mx.example.test", RecordType::MX, &opts)
        .await
        .unwrap();
    assert_eq!(answer_types(&r), vec![RecordType::MX]);
    let r = query(auth.addr(), "txt.example.test", RecordType::TXT, &opts)
        .await
        .unwrap();
    assert_eq!(answer_types(&r), vec![RecordType::TXT]);
}

#[tokio::test]
async fn auth_big_needs_tcp() {
    let auth = AuthServer::start_test_zone();
    let udp = query(
        auth.addr(),
        "big.example.test",
        RecordType::TXT,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert!(
        udp.metadata.truncation,
        "UDP answer with payload 1232 must be TC"
    );
    assert!(udp.answers.len() < 10);

    let no_edns = QueryOpts {
        edns: None,
        ..QueryOpts::default()
    };
    let udp = query(auth.addr(), "big.example.test", RecordType::TXT, &no_edns)
        .await
        .unwrap();
    assert!(udp.metadata.truncation);

    let tcp = query(
        auth.addr(),
        "big.example.test",
        RecordType::TXT,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 10);
    assert!(tcp.to_vec().unwrap().len() > 1232);

    let seen = auth.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].proto, Proto::Udp);
    assert_eq!(seen[2].proto, Proto::Tcp);
}

#[tokio::test]
async fn auth_records_questions() {
    let auth = AuthServer::start_test_zone();
    let opts = QueryOpts {
        do_bit: true,
        cd: true,
        source: loopback(2),
        ..QueryOpts::default()
    };
    query(auth.addr(), "WwW.ExAmPlE.tEsT.", RecordType::A, &opts)
        .await
        .unwrap();
    let no_edns = QueryOpts {
        edns: None,
        rd: false,
        tcp: true,
        ..QueryOpts::default()
    };
    query(auth.addr(), "mail.example.test", RecordType::A, &no_edns)
        .await
        .unwrap();

    assert!(auth.wait_for_count(2, Duration::from_secs(1)).await);
    let seen = auth.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].name, "WwW.ExAmPlE.tEsT.", "case preserved");
    assert_eq!(seen[0].qtype, RecordType::A);
    assert!(seen[0].edns && seen[0].do_bit && seen[0].cd && seen[0].rd);
    assert_eq!(seen[0].edns_payload, Some(1232));
    assert_eq!(seen[0].proto, Proto::Udp);
    assert_eq!(seen[0].src.ip(), loopback(2));
    assert!(!seen[1].edns && !seen[1].do_bit && !seen[1].cd && !seen[1].rd);
    assert_eq!(seen[1].proto, Proto::Tcp);

    assert!(auth.saw_name("www.example.test"));
    assert!(auth.saw_name("WWW.EXAMPLE.TEST."));
    assert!(!auth.saw_name("example.test"), "exact names only");
    assert_eq!(auth.count_name("mail.example.test."), 1);
    auth.clear_seen();
    assert!(auth.seen().is_empty());
}

#[tokio::test]
async fn auth_ad_and_rrsig() {
    let auth = AuthServer::start_test_zone();
    let plain = QueryOpts::default();
    let with_do = QueryOpts {
        do_bit: true,
        ..QueryOpts::default()
    };
    let with_ad = QueryOpts {
        ad: true,
        ..QueryOpts::default()
    };

    // AD only for the secure names, only when asked by AD=1 or DO=1.
    let r = query(auth.addr(), "www.example.test", RecordType::A, &plain)
        .await
        .unwrap();
    assert!(!r.metadata.authentic_data);
    let r = query(auth.addr(), "www.example.test", RecordType::A, &with_ad)
        .await
        .unwrap();
    assert!(r.metadata.authentic_data);
    let r = query(auth.addr(), "www.example.test", RecordType::A, &with_do)
        .await
        .unwrap();
    assert!(r.metadata.authentic_data);
    assert!(client::reply_do_bit(&r), "DO echoed");
    let r = query(auth.addr(), "mail.example.test", RecordType::A, &with_do)
        .await
        .unwrap();
    assert!(!r.metadata.authentic_data);

    // RRSIG only with DO=1.
    let r = query(auth.addr(), "signed.example.test", RecordType::A, &plain)
        .await
        .unwrap();
    assert_eq!(answer_types(&r), vec![RecordType::A]);
    let r = query(auth.addr(), "signed.example.test", RecordType::A, &with_do)
        .await
        .unwrap();
    assert_eq!(answer_types(&r), vec![RecordType::A, RecordType::RRSIG]);
    assert!(r.metadata.authentic_data);
    let r = query(
        auth.addr(),
        "signed.example.test",
        RecordType::RRSIG,
        &plain,
    )
    .await
    .unwrap();
    assert_eq!(answer_types(&r), vec![RecordType::RRSIG]);
}

#[tokio::test]
async fn auth_edns_errors_and_opcodes() {
    let auth = AuthServer::start_test_zone();
    let v1 = QueryOpts {
        edns_version: 1,
        ..QueryOpts::default()
    };
    let r = query(auth.addr(), "www.example.test", RecordType::A, &v1)
        .await
        .unwrap();
    // BADVERS and BADSIG share code 16; hickory decodes it as BADSIG.
    assert_eq!(u16::from(r.metadata.response_code), 16, "BADVERS");
    assert!(r.edns.is_some(), "BADVERS carries an OPT");

    let notify = QueryOpts {
        opcode: OpCode::Notify,
        ..QueryOpts::default()
    };
    let r = query(auth.addr(), "www.example.test", RecordType::A, &notify)
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
}

#[tokio::test]
async fn auth_custom_zone_and_runtime_edits() {
    let zone = "$ORIGIN corp.test.\n$TTL 60\n@ IN SOA ns.corp.test. admin.corp.test. 1 60 60 600 30\n@ IN NS ns.corp.test.\nns IN A 192.0.2.100\n";
    let auth = AuthServer::start_on(loopback(10), "corp.test.", zone);
    assert_eq!(auth.addr().ip(), loopback(10));
    let r = query(
        auth.addr(),
        "ns.corp.test",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.100")]);

    auth.add_record(scripted::a_record("new.corp.test.", ip("192.0.2.101"), 5));
    let r = query(
        auth.addr(),
        "new.corp.test",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.101")]);
    auth.remove_records("new.corp.test.", RecordType::A);
    let r = query(
        auth.addr(),
        "new.corp.test",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn auth_server_stops_on_drop() {
    let auth = AuthServer::start_test_zone();
    let addr = auth.addr();
    drop(auth);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let opts = QueryOpts {
        timeout: Duration::from_millis(300),
        ..QueryOpts::default()
    };
    assert!(
        query(addr, "www.example.test", RecordType::A, &opts)
            .await
            .is_err()
    );
}

// ----------------------------------------------------------------------------------------
// ScriptedUpstream
// ----------------------------------------------------------------------------------------

fn short() -> QueryOpts {
    QueryOpts {
        timeout: Duration::from_millis(400),
        ..QueryOpts::default()
    }
}

#[tokio::test]
async fn scripted_answer_a_and_recording() {
    let up = ScriptedUpstream::start(scripted::answer_a(ip("192.0.2.7"), 42));
    let opts = QueryOpts {
        do_bit: true,
        cd: true,
        ..QueryOpts::default()
    };
    let r = query(up.addr(), "Foo.Example.", RecordType::A, &opts)
        .await
        .unwrap();
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.7")]);
    assert_eq!(ttls(&r), vec![42]);
    assert!(r.metadata.recursion_available);
    assert_eq!(r.answers[0].name.to_string(), "Foo.Example.");
    let r = query(
        up.addr(),
        "foo.example",
        RecordType::AAAA,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert!(r.answers.is_empty(), "NODATA for the other family");

    assert!(up.wait_for_count(2, Duration::from_secs(1)).await);
    assert!(!up.wait_for_count(3, Duration::from_millis(50)).await);
    let seen = up.seen();
    assert_eq!(seen[0].name().as_deref(), Some("Foo.Example."));
    assert!(seen[0].do_bit() && seen[0].cd() && seen[0].rd() && seen[0].has_edns());
    assert_eq!(seen[0].proto, Proto::Udp);
    assert_eq!(seen[1].proto, Proto::Tcp);
    assert_eq!(seen[1].qtype(), Some(RecordType::AAAA));
    assert!(up.saw_name("foo.example."));
    assert_eq!(up.count_proto(Proto::Tcp), 1);
}

#[tokio::test]
async fn scripted_tc_then_tcp() {
    let up = ScriptedUpstream::start(scripted::tc_over_udp_then_answer_over_tcp(ip("192.0.2.8")));
    let r = query(up.addr(), "t.example", RecordType::A, &QueryOpts::default())
        .await
        .unwrap();
    assert!(r.metadata.truncation && r.answers.is_empty());
    let r = query(up.addr(), "t.example", RecordType::A, &QueryOpts::tcp())
        .await
        .unwrap();
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.8")]);
}

#[tokio::test]
async fn scripted_formerr_to_edns() {
    let up = ScriptedUpstream::start(scripted::formerr_to_edns_else_answer(ip("192.0.2.9")));
    let r = query(up.addr(), "f.example", RecordType::A, &QueryOpts::default())
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert!(r.edns.is_none());
    let no_edns = QueryOpts {
        edns: None,
        ..QueryOpts::default()
    };
    let r = query(up.addr(), "f.example", RecordType::A, &no_edns)
        .await
        .unwrap();
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.9")]);
}

#[tokio::test]
async fn scripted_failures() {
    let up = ScriptedUpstream::start(scripted::garbage());
    match query(up.addr(), "g.example", RecordType::A, &short()).await {
        Err(client::ClientError::Decode(_, raw)) => assert!(raw.len() > 12),
        other => panic!("expected a decode error, got {other:?}"),
    }
    match query(up.addr(), "g.example", RecordType::A, &QueryOpts::tcp()).await {
        Err(client::ClientError::Decode(..)) => {}
        other => panic!("expected a decode error over TCP, got {other:?}"),
    }

    up.set_behaviour(scripted::zero_length());
    let q = client::build_query("z.example", RecordType::A, &QueryOpts::default()).unwrap();
    let raw = query_raw(up.addr(), &q.to_vec().unwrap(), false, loopback(1))
        .await
        .unwrap();
    assert_eq!(raw, Some(Vec::new()), "zero-length datagram");

    up.set_behaviour(scripted::silence());
    let started = Instant::now();
    assert!(matches!(
        query(up.addr(), "s.example", RecordType::A, &short()).await,
        Err(client::ClientError::Timeout)
    ));
    assert!(started.elapsed() >= Duration::from_millis(350));

    up.set_behaviour(scripted::refused());
    let r = query(up.addr(), "r.example", RecordType::A, &short())
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);

    up.set_behaviour(scripted::servfail_with_ede(22, "No Reachable Authority"));
    let r = query(up.addr(), "e.example", RecordType::A, &short())
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(ede(&r), vec![(22, "No Reachable Authority".to_owned())]);

    // Closing a TCP connection without reply.
    up.set_behaviour(|_| Reply::Close);
    let q = client::build_query("c.example", RecordType::A, &QueryOpts::default()).unwrap();
    let raw = query_raw(up.addr(), &q.to_vec().unwrap(), true, loopback(1))
        .await
        .unwrap();
    assert_eq!(raw, None);
    assert_eq!(up.count(), 7);
}

#[tokio::test]
async fn scripted_delay_and_unparsable_requests() {
    let up = ScriptedUpstream::start(scripted::delayed(
        Duration::from_millis(200),
        scripted::answer_a(ip("192.0.2.10"), 1),
    ));
    let started = Instant::now();
    let r = query(up.addr(), "d.example", RecordType::A, &QueryOpts::default())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.10")]);

    // A delay longer than the client's timeout is a timeout.
    let opts = QueryOpts {
        timeout: Duration::from_millis(100),
        ..QueryOpts::default()
    };
    assert!(
        query(up.addr(), "d.example", RecordType::A, &opts)
            .await
            .is_err()
    );

    // Malformed request: recorded with message None, custom closure sees the raw bytes.
    up.set_behaviour(|q| {
        if q.message.is_none() {
            Reply::Raw(q.raw.iter().rev().copied().collect())
        } else {
            Reply::Silence
        }
    });
    let got = query_raw_timeout(
        up.addr(),
        &[1, 2, 3],
        false,
        loopback(1),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(got, Some(vec![3, 2, 1]));
    let last = up.seen().pop().unwrap();
    assert!(last.message.is_none());
    assert_eq!(last.raw, vec![1, 2, 3]);
}

#[tokio::test]
async fn scripted_custom_closure_with_builders() {
    let up = ScriptedUpstream::start(|q| {
        let Some(m) = &q.message else {
            return Reply::Silence;
        };
        let reply = scripted::with_answers(
            scripted::reply_to(m),
            [
                scripted::cname_record("a.example.", "b.example.", 30),
                scripted::a_record("b.example.", "192.0.2.11".parse().unwrap(), 30),
            ],
        );
        Reply::Message(scripted::with_ede(reply, 3, "Stale Answer"))
    });
    let r = query(up.addr(), "a.example", RecordType::A, &QueryOpts::default())
        .await
        .unwrap();
    assert_eq!(cname_targets(&r), vec!["b.example."]);
    assert_eq!(answer_ips(&r), vec![ip("192.0.2.11")]);
    assert_eq!(ede(&r), vec![(3, "Stale Answer".to_owned())]);
}

// ----------------------------------------------------------------------------------------
// Client
// ----------------------------------------------------------------------------------------

#[tokio::test]
async fn client_from_other_loopback_sources() {
    let auth = AuthServer::start_test_zone();
    for n in [2u8, 3, 77] {
        for tcp in [false, true] {
            let opts = QueryOpts {
                source: loopback(n),
                tcp,
                ..QueryOpts::default()
            };
            let r = query(auth.addr(), "www.example.test", RecordType::A, &opts)
                .await
                .unwrap();
            assert_eq!(answer_ips(&r), vec![ip("192.0.2.1")]);
        }
    }
    let sources: Vec<IpAddr> = auth.seen().iter().map(|q| q.src.ip()).collect();
    assert_eq!(
        sources,
        vec![
            loopback(2),
            loopback(2),
            loopback(3),
            loopback(3),
            loopback(77),
            loopback(77)
        ]
    );
}

#[tokio::test]
async fn client_rejects_wrong_id() {
    let up = ScriptedUpstream::start(|q| {
        let mut m = scripted::reply_to(q.message.as_ref().unwrap());
        m.metadata.id = m.metadata.id.wrapping_add(1);
        Reply::Message(m)
    });
    assert!(matches!(
        query(up.addr(), "x.example", RecordType::A, &QueryOpts::default()).await,
        Err(client::ClientError::IdMismatch { .. })
    ));
}

#[tokio::test]
async fn client_raw_malformed_to_auth() {
    let auth = AuthServer::start_test_zone();
    // A header-only message claiming one question: hickory-server answers FORMERR (its header
    // is readable), and the raw client hands that reply back.
    let bytes = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    let reply = query_raw_timeout(
        auth.addr(),
        &bytes,
        false,
        loopback(1),
        Duration::from_secs(3),
    )
    .await
    .unwrap()
    .expect("hickory-server answers a readable header with FORMERR");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.id, 0x1234);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
}
