//! The one request chain, seen from outside:
//!
//! * `explain` agrees with the server: for 30+ questions (blocked, allowed, cached, canary, ANY,
//!   log mode, CNAME-cloaked, null response, rate-limited, truncated, client in no zone),
//!   `/api/explain?resolve=1` on the running server predicts the rcode, TTL and EDE of the answer
//!   the same client then gets from a real query.
//! * The one encoder: a cached and an uncached answer to the same question are byte-identical
//!   apart from the id and the TTLs, over UDP and TCP, names compressed against the question.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::Value;
use support::client::build_query;
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, ede, loopback, query, query_raw};

const LISTS: &str = "sub.example.test\nmail.example.test\n";
const ALLOW: &str = "host.sub.example.test\n";

fn config(upstream: std::net::SocketAddr) -> String {
    format!(
        "{}[lists.trackers]\nsource = \"builtin:trackers\"\n[lists.local]\nsource = \"blocked.txt\"\n\
         [lists.allowed]\nsource = \"allow.txt\"\n\
         [zones.enforce]\nnetworks = [\"127.0.0.1/32\"]\nblock = [\"trackers\", \"local\"]\nallow = [\"allowed\"]\n\
         [zones.log]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\", \"local\"]\nmode = \"log\"\n\
         [zones.limited]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\"]\n\
         rate_limit = {{ qps = 0.001, burst = 3, action = \"refused\" }}\n\
         [zones.nullz]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"trackers\", \"local\"]\nresponse = \"null\"\n",
        base(&[upstream])
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

fn rcode_name(r: ResponseCode) -> String {
    match r {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

fn min_ttl(m: &Message) -> Option<u32> {
    m.answers
        .iter()
        .chain(m.authorities.iter())
        .map(|r| r.ttl)
        .min()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_predicts_every_answer_the_server_gives() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(
        &config(auth.addr()),
        &[("blocked.txt", LISTS), ("allow.txt", ALLOW)],
    )
    .await;
    let admin = format!("http://{}", pg.app.admin_addr.unwrap());
    use RecordType::*;
    let cases: Vec<(u8, &str, RecordType, &str)> = vec![
        (1, "connect.facebook.net", A, "blocked"),
        (1, "www.google-analytics.com", AAAA, "blocked"),
        (1, "Connect.Facebook.NET", HTTPS, "blocked"),
        (1, "sub.example.test", A, "blocked"),
        (1, "x.sub.example.test", A, "blocked"),
        (1, "host.sub.example.test", A, "forwarded"),
        (1, "host.sub.example.test", A, "cached"),
        (1, "mail.example.test", MX, "blocked"),
        (1, "www.example.test", A, "forwarded"),
        (1, "www.example.test", A, "cached"),
        (1, "www.example.test", AAAA, "forwarded"),
        (1, "alias.example.test", A, "forwarded"),
        (1, "chain1.example.test", A, "forwarded"),
        (1, "nope.example.test", A, "forwarded"),
        (1, "nope.example.test", A, "cached"),
        (1, "mx.example.test", MX, "forwarded"),
        (1, "txt.example.test", TXT, "forwarded"),
        (1, "big.example.test", TXT, "forwarded"),
        (1, "metrics.example.test", A, "blocked"),
        (1, "metrics.example.test", A, "blocked"),
        (1, "use-application-dns.net", A, "local"),
        (1, "mask.icloud.com", AAAA, "local"),
        (1, "_dns.resolver.arpa", SVCB, "local"),
        (1, "www.example.test", ANY, "local"),
        (1, "connect.facebook.net", ANY, "blocked"),
        (2, "connect.facebook.net", A, "would_block"),
        (2, "metrics.example.test", A, "would_block"),
        (2, "sub.example.test", A, "would_block"),
        (2, "www.example.test", A, "cached"),
        (4, "sub.example.test", A, "blocked"),
        (4, "sub.example.test", AAAA, "blocked"),
        (4, "sub.example.test", MX, "blocked"),
        (3, "www.example.test", A, "cached"),
        (3, "www.example.test", A, "cached"),
        (3, "www.example.test", A, "cached"),
        (3, "www.example.test", A, "rate_limited"),
        (9, "www.example.test", A, "refused"),
    ];
    assert!(cases.len() >= 30);
    for (client, name, qtype, outcome) in cases {
        let url = format!(
            "{admin}/api/explain?client=127.0.0.{client}&name={name}&type={qtype}&resolve=1"
        );
        let r = http().get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let e: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        let m = query(
            pg.addr,
            name,
            qtype,
            &QueryOpts::from_source(loopback(client)),
        )
        .await
        .unwrap();
        let what = format!("{name} {qtype} from .{client}: {}", e["text"]);
        let p = &e["prediction"];
        assert_eq!(e["outcome"], outcome, "{what}");
        if name == "host.sub.example.test" {
            assert_eq!(e["decision"]["kind"], "allowed", "{what}");
        }
        assert_eq!(p["rcode"], rcode_name(m.metadata.response_code), "{what}");
        let ede_got: Vec<Value> = ede(&m)
            .into_iter()
            .map(|(c, t)| serde_json::json!({ "code": c, "text": t }))
            .collect();
        assert_eq!(p["ede"], Value::Array(ede_got), "{what}");
        match (p["ttl"].as_u64(), min_ttl(&m)) {
            // The clock may tick between the explanation and the query: one second at most.
            (Some(want), Some(got)) => {
                assert!(
                    want >= u64::from(got) && want - u64::from(got) <= 1,
                    "{what}"
                )
            }
            (want, got) => assert_eq!(want, got.map(u64::from), "{what}"),
        }
        assert_eq!(
            p["answers"].as_u64(),
            Some(m.answers.len() as u64),
            "{what}"
        );
        assert!(
            e["text"]
                .as_str()
                .unwrap()
                .lines()
                .last()
                .unwrap()
                .starts_with("answer"),
            "{what}"
        );
    }
    // Explaining took no rate-limit token and recorded nothing: .3 was refused on its 4th query,
    // exactly as its bucket (burst 3) allows.
    pg.app.shutdown().await;
}

/// The TTL fields of a wire message (records, not OPT), to mask them.
fn ttl_offsets(b: &[u8]) -> Vec<usize> {
    support::wire::records(b)
        .iter()
        .filter(|r| r.rtype != 41)
        .map(|r| r.fixed + 4)
        .collect()
}

fn masked(mut b: Vec<u8>) -> Vec<u8> {
    b[0] = 0;
    b[1] = 0;
    for at in ttl_offsets(&b) {
        b[at..at + 4].fill(0);
    }
    b
}

#[tokio::test]
async fn cached_and_uncached_answers_are_the_same_bytes() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(
        &config(auth.addr()),
        &[("blocked.txt", LISTS), ("allow.txt", ALLOW)],
    )
    .await;
    let from = loopback(1);
    for (name, qtype) in [
        ("www.example.test.", RecordType::A),
        ("WwW.Example.Test.", RecordType::AAAA),
        ("chain1.example.test.", RecordType::A),
        ("nope.example.test.", RecordType::A),
        ("mx.example.test.", RecordType::MX),
        ("big.example.test.", RecordType::TXT),
    ] {
        for tcp in [false, true] {
            let opts = QueryOpts {
                tcp,
                ..QueryOpts::from_source(from)
            };
            // A different case per transport, so the TCP round starts with a cache miss too.
            let asked = if tcp {
                name.to_ascii_uppercase()
            } else {
                name.to_owned()
            };
            let msg = build_query(&asked, qtype, &opts).unwrap().to_vec().unwrap();
            let miss = query_raw(pg.addr, &msg, tcp, from).await.unwrap().unwrap();
            let hit = query_raw(pg.addr, &msg, tcp, from).await.unwrap().unwrap();
            assert_eq!(
                masked(miss.clone()),
                masked(hit.clone()),
                "{name} {qtype} tcp={tcp}"
            );
            let m = Message::from_vec(&hit).unwrap();
            if !m.answers.is_empty() {
                // The first answer's owner is the question's name, as a pointer to it.
                assert_eq!(
                    &hit[msg.len() - 11..][..2],
                    &[0xc0, 0x0c],
                    "{asked} {qtype}"
                );
                assert_eq!(m.answers[0].name.to_ascii(), asked, "the asker's spelling");
            }
        }
    }
    // A one-record answer: as small as the wire allows, from the upstream and the cache alike
    // (`www.example.test A` is 61 bytes).
    let opts = QueryOpts::from_source(from);
    let msg = build_query("short.example.test.", RecordType::A, &opts)
        .unwrap()
        .to_vec()
        .unwrap();
    let miss = query_raw(pg.addr, &msg, false, from)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Message::from_vec(&miss).unwrap().answers.len(), 1);
    // Header, the question as asked, one A record whose owner is a 2-byte pointer, OPT.
    let question = msg.len() - 12 - 11;
    assert_eq!(miss.len(), 12 + question + 16 + 11);
    let hit = query_raw(pg.addr, &msg, false, from)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(masked(miss), masked(hit));
    pg.app.shutdown().await;
}
