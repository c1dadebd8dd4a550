//! The encoder against hickory's decoder: every answer it writes decodes, names compressed
//! against the question, TTLs aged, UDP limits kept.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proptest::prelude::*;

use super::*;
use crate::cache::CachedAnswer;
use crate::cache::test_config as cfg;
use crate::config::BlockResponse;
use crate::wire::parse_query;

fn request(name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    crate::wire::query::test_request(name, qtype, edns)
}

fn upstream_answer(name: &str, records: usize, ttl: u32) -> Arc<CachedAnswer> {
    let n = Name::from_ascii(name).unwrap();
    let mut m = Message::new(1, MessageType::Response, OpCode::Query);
    m.add_query(HQuery::query(n.clone(), RecordType::A));
    for i in 0..records {
        m.add_answer(Record::from_rdata(
            n.clone(),
            ttl,
            RData::A(A::new(192, 0, 2, (i % 250) as u8)),
        ));
    }
    CachedAnswer::new(&m, false, RecordType::A, Instant::now(), &cfg(4)).unwrap()
}

fn blocked(response: &BlockResponse, labels: Option<usize>) -> Answer<'_> {
    Answer::Blocked(Blocked {
        response,
        action: RuleAction::Block,
        ttl: 300,
        soa_labels: labels,
        ede: "pixelguard: t".into(),
    })
}

#[test]
fn upstream_answers_age_compress_and_take_the_clients_case() {
    let raw = request("WwW.Example.TEST.", 1, Some((4096, false)));
    let p = parse_query(&raw).unwrap();
    let q = p.view();
    let entry = upstream_answer("www.example.test.", 1, 300);
    let mut out = Vec::new();
    let a = Answer::Upstream {
        entry,
        age: 7,
        max_ttl: 86_400,
    };
    encode(&mut out, &q, &a, q.udp_limit());
    // 12 header + 22 question + 16 answer + 11 OPT: the owner is a pointer to the question.
    assert_eq!(out.len(), 61);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.id, 7);
    assert_eq!(m.answers[0].ttl, 293);
    assert_eq!(m.answers[0].name.to_ascii(), "WwW.Example.TEST.");
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
}

#[test]
fn too_large_for_udp_is_truncated_with_the_question_and_opt() {
    let raw = request("big.example.test.", 1, None);
    let p = parse_query(&raw).unwrap();
    let q = p.view();
    let a = Answer::Upstream {
        entry: upstream_answer("big.example.test.", 60, 60),
        age: 0,
        max_ttl: 86_400,
    };
    let mut out = Vec::new();
    encode(&mut out, &q, &a, q.udp_limit());
    let m = Message::from_vec(&out).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    assert_eq!(m.queries.len(), 1);
    encode(&mut out, &q, &a, usize::from(u16::MAX));
    let m = Message::from_vec(&out).unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 60);
}

#[test]
fn blocked_answers_put_the_soa_at_the_rule_and_stale_ones_say_so() {
    let raw = request("a.b.Tracker.example.", 28, Some((1232, true)));
    let p = parse_query(&raw).unwrap();
    let q = p.view();
    let mut out = Vec::new();
    encode(
        &mut out,
        &q,
        &blocked(&BlockResponse::Nxdomain, Some(2)),
        1232,
    );
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].name.to_ascii(), "Tracker.example.");
    assert_eq!(read_ede(&m), vec![(EDE_BLOCKED, "pixelguard: t".into())]);
    assert!(m.edns.as_ref().unwrap().flags().dnssec_ok, "DO echoed");
    // Null: :: for AAAA, never an A record.
    encode(&mut out, &q, &blocked(&BlockResponse::Null, None), 1232);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::AAAA);
    // Stale: TTL at most 30, EDE 3.
    let stale = Answer::Stale(upstream_answer("a.b.tracker.example.", 1, 300));
    encode(&mut out, &q, &stale, 1232);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.answers[0].ttl, STALE_TTL);
    assert_eq!(read_ede(&m)[0].0, EDE_STALE);
}

fn local(rcode: ResponseCode, apex_labels: usize, records: LocalRecords) -> Answer<'static> {
    Answer::Local(Local {
        rcode,
        apex_labels,
        records,
    })
}

#[test]
fn local_answers_carry_the_zones_soa_at_its_apex() {
    let raw = request("7.3.20.10.IN-ADDR.arpa.", 12, Some((1232, false)));
    let p = parse_query(&raw).unwrap();
    let q = p.view();
    let mut out = Vec::new();
    let nx = local(ResponseCode::NXDomain, 3, LocalRecords::default());
    encode(&mut out, &q, &nx, 1232);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    let soa = &m.authorities[0];
    assert_eq!(soa.name.to_ascii(), "10.IN-ADDR.arpa.");
    assert_eq!(soa.ttl, LOCAL_TTL);
    let RData::SOA(s) = &soa.data else {
        panic!("{soa:?}")
    };
    assert_eq!(s.mname.to_ascii(), "10.IN-ADDR.arpa.");
    assert_eq!(s.rname.to_ascii(), "nobody.invalid.");
    assert_eq!(
        (s.serial, s.refresh, s.retry, s.expire, s.minimum),
        (1, 3600, 1200, 604_800, 10_800)
    );
    // Every record kind at once (as for ANY at the apex of localhost.), names as the client
    // spelt them.
    let raw = request("LocalHost.", 1, None);
    let p = parse_query(&raw).unwrap();
    let all = LocalRecords {
        soa: true,
        ns: true,
        a: true,
        aaaa: true,
    };
    encode(
        &mut out,
        &p.view(),
        &local(ResponseCode::NoError, 1, all),
        512,
    );
    let m = Message::from_vec(&out).unwrap();
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        [
            RecordType::SOA,
            RecordType::NS,
            RecordType::A,
            RecordType::AAAA
        ]
    );
    assert!(m.answers.iter().all(|r| r.name.to_ascii() == "LocalHost."));
    assert!(m.authorities.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Arbitrary bytes never panic the parser or the encoder, and every answer decodes with the
    /// client's question.
    #[test]
    fn every_answer_decodes(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Some(p) = parse_query(&raw) {
            let q = p.view();
            let r = BlockResponse::Addresses(vec!["192.0.2.1".parse().unwrap()]);
            for a in [
                Answer::Code(ResponseCode::Refused),
                blocked(&BlockResponse::Null, Some(1)),
                blocked(&r, None),
                Answer::Canary { nxdomain: true },
                Answer::Any,
                local(ResponseCode::NXDomain, 1, LocalRecords::default()),
                local(ResponseCode::NoError, 9, LocalRecords { soa: true, ns: true, a: true, aaaa: true }),
            ] {
                let mut out = Vec::new();
                encode(&mut out, &q, &a, q.udp_limit());
                let m = Message::from_vec(&out);
                prop_assert!(m.is_ok(), "{a:?}");
            }
        }
    }

    /// The blocked answer of any well-formed name decodes with the client's question.
    #[test]
    fn blocked_answers_keep_the_question(
        labels in proptest::collection::vec("[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,18}[a-zA-Z0-9_])?", 1..5),
        edns in proptest::option::of((0u16..5000, any::<bool>())),
    ) {
        let name = format!("{}.", labels.join("."));
        let raw = request(&name, 1, edns);
        let p = parse_query(&raw).unwrap();
        let mut out = Vec::new();
        encode(&mut out, &p.view(), &blocked(&BlockResponse::Nxdomain, Some(1)), 512);
        let r = Message::from_vec(&out).unwrap();
        prop_assert_eq!(r.queries[0].name().to_ascii(), name);
        prop_assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }
}
