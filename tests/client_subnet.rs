//! The real client behind a forwarder, end to end on loopback: EDNS Client Subnet from a trusted
//! forwarder (127.0.0.5) picking the zone and the rate-limit bucket, from anyone else changing
//! nothing, echoed with scope 0 and never sent to the recording upstream. PROXY v2 is in
//! tests/client_identity.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/identity.rs"]
mod common;
mod support;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode};
use ppp::v2::Protocol;

use common::*;
use support::{ScriptedUpstream, loopback};

#[tokio::test]
async fn ecs_from_a_trusted_forwarder_picks_the_zone_and_is_echoed_with_scope_zero() {
    let (up, pg) = start("fast").await;
    let fwd = udp_from(&pg, loopback(5)).await;
    // Without ECS the forwarder is a staff client; with it, its client's zone.
    let m = udp_ask(&fwd, &[], TRACKER, None).await;
    assert!(resolved(&m), "the forwarder itself is staff");
    assert!(ecs_of(&m).is_empty(), "no ECS asked, none echoed");
    for net in ["127.0.0.2/32", "10.2.3.0/24"] {
        let m = udp_ask(&fwd, &[], TRACKER, Some(subnet(net))).await;
        assert!(blocked(&m), "ECS {net} is a kiosk client: {m:?}");
        let echoed = ecs_of(&m);
        assert_eq!(echoed.len(), 1, "{net}: echoed once");
        assert_eq!(echoed[0].scope_prefix(), 0, "{net}: scope 0");
        assert_eq!(echoed[0], subnet(net), "{net}: as sent");
    }
    // The full path (TCP) reads ECS as the fast parser does.
    let m = tcp_ask(&pg, loopback(5), &[], TRACKER, Some(subnet("127.0.0.2/32")))
        .await
        .unwrap();
    assert!(blocked(&m), "ECS over TCP picks the kiosk");
    assert_eq!(ecs_of(&m), [subnet("127.0.0.2/32")]);
    // A staff client behind the forwarder: answered (fresh, then cached), ECS echoed each time.
    for _ in 0..2 {
        let m = udp_ask(&fwd, &[], "www.example.test.", Some(subnet("127.0.0.3/32"))).await;
        assert!(resolved(&m));
        assert_eq!(ecs_of(&m)[0].scope_prefix(), 0);
    }
    // A PROXY header naming the forwarder: its ECS is trusted (the header's source counts).
    let proxy = udp_from(&pg, loopback(1)).await;
    let via = header(loopback(5), Protocol::Datagram);
    let m = udp_ask(&proxy, &via, TRACKER, Some(subnet("127.0.0.2/32"))).await;
    assert!(blocked(&m), "proxy → forwarder → kiosk client");
    // The query log names the client the ECS named.
    assert!(pg.app.flush_query_log(IO_CAP).await);
    let lines = log_lines(&pg);
    assert_eq!(lines[1]["client"], "127.0.0.2", "{lines:#?}");
    assert_eq!(lines[2]["client"], "10.2.3.0", "{lines:#?}");
    // Nothing the upstream saw carried ECS.
    assert!(up.saw_name("www.example.test."));
    assert_no_ecs_upstream(&up);
}

#[tokio::test]
async fn a_trusted_forwarders_clients_each_have_their_own_rate_limit_bucket() {
    let (_up, pg) = start("fast").await;
    let fwd = udp_from(&pg, loopback(5)).await;
    let one = Some(subnet("10.9.0.1/32"));
    for i in 0..2 {
        let m = udp_ask(&fwd, &[], "www.example.test.", one).await;
        assert!(resolved(&m), "query {i} of 10.9.0.1 is within its burst");
    }
    let m = udp_ask(&fwd, &[], "www.example.test.", one).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "10.9.0.1 is over"
    );
    // Another client behind the same forwarder has its own bucket; so does the forwarder.
    let m = udp_ask(&fwd, &[], "www.example.test.", Some(subnet("10.9.0.2/32"))).await;
    assert!(resolved(&m), "10.9.0.2 is not charged for 10.9.0.1");
    let m = udp_ask(&fwd, &[], "www.example.test.", None).await;
    assert!(resolved(&m), "the forwarder itself (staff, no limit)");
}

fn assert_no_ecs_upstream(up: &ScriptedUpstream) {
    let seen = up.seen();
    assert!(!seen.is_empty());
    for q in seen {
        let m = q.message.as_ref().unwrap();
        assert!(ecs_of(m).is_empty(), "ECS sent upstream: {m:?}");
        let codes: Vec<EdnsCode> = m
            .edns
            .as_ref()
            .map(|e| e.options().as_ref().iter().map(|(c, _)| *c).collect())
            .unwrap_or_default();
        assert!(!codes.contains(&EdnsCode::Subnet), "{codes:?}");
    }
}

#[tokio::test]
async fn ecs_from_anyone_else_changes_nothing_and_never_reaches_the_upstream() {
    let (up, pg) = start("fast").await;
    // 127.0.0.4 (staff) claims to speak for a kiosk client: ignored for policy.
    let other = udp_from(&pg, loopback(4)).await;
    let m = udp_ask(&other, &[], TRACKER, Some(subnet("127.0.0.2/32"))).await;
    assert!(resolved(&m), "untrusted ECS changes nothing: {m:?}");
    assert_eq!(
        ecs_of(&m),
        [subnet("127.0.0.2/32")],
        "still echoed, scope 0"
    );
    let m = udp_ask(
        &other,
        &[],
        "fresh.example.test.",
        Some(subnet("10.2.0.0/16")),
    )
    .await;
    assert!(resolved(&m));
    assert!(
        up.saw_name("fresh.example.test."),
        "the query went upstream"
    );
    assert_no_ecs_upstream(&up);
    // A malformed ECS (scope set in a query) is FORMERR, from anyone.
    for from in [4, 5] {
        let sock = udp_from(&pg, loopback(from)).await;
        let bad = ClientSubnet::new(loopback(2), 32, 24);
        let m = udp_ask(&sock, &[], TRACKER, Some(bad)).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::FormErr,
            "from .{from}"
        );
    }
}
