//! Locally served zones (issue 15, part 2), end to end: a real pixelguard on loopback in front
//! of a recording upstream. The reverse zones of private ranges (RFC 6303, RFC 7793), the
//! special-use names and single-label A/AAAA are answered by pixelguard itself (rcode, AA, the
//! zone's SOA, localhost's addresses) over UDP on both paths and over TCP, and the upstream sees
//! none of them; other types of single-label names, the root and public reverse names still
//! reach it; each `[local]` switch turned off sends its names upstream again; the answers are
//! counted as outcome `local`; and `explain` names the zone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use pixelguard::outcome::Outcome;
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, ede, loopback, query};

use RecordType::{A, AAAA, DS, MX, NS, PTR, SOA, TXT};

fn config(upstream: SocketAddr, udp_path: &str, local: &str) -> String {
    let head = base(&[upstream]).replace(
        "[upstream]",
        &format!("udp_path = \"{udp_path}\"\n\n[upstream]"),
    );
    format!(
        "{head}{local}\n[lists.plain]\nsource = \"blocked.txt\"\n\n\
         [zones.lab]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"plain\"]\nrate_limit = {{ qps = 0 }}\n"
    )
}

const FILES: [(&str, &str); 1] = [("blocked.txt", "tracker.local\n")];

/// The reverse name of an IPv6 address, nibble by nibble (`...ip6.arpa.`).
fn ip6_arpa(ip: &str) -> String {
    let ip: std::net::Ipv6Addr = ip.parse().unwrap();
    let mut s = String::new();
    for b in ip.octets().iter().rev() {
        s.push_str(&format!("{:x}.{:x}.", b & 0x0f, b >> 4));
    }
    s + "ip6.arpa."
}

/// What a local answer must look like.
struct Want {
    name: String,
    qtype: RecordType,
    rcode: ResponseCode,
    /// The zone apex: owner of the SOA (answer or authority).
    apex: &'static str,
    /// The answer section's types.
    answers: &'static [RecordType],
}

fn want(
    name: impl Into<String>,
    qtype: RecordType,
    rcode: ResponseCode,
    apex: &'static str,
    answers: &'static [RecordType],
) -> Want {
    Want {
        name: name.into(),
        qtype,
        rcode,
        apex,
        answers,
    }
}

fn local_cases() -> Vec<Want> {
    use ResponseCode::{NXDomain as NX, NoError as OK};
    vec![
        want("7.3.20.10.in-addr.arpa.", PTR, NX, "10.in-addr.arpa.", &[]),
        want(
            "9.1.20.172.in-addr.arpa.",
            PTR,
            NX,
            "20.172.in-addr.arpa.",
            &[],
        ),
        want(
            "5.1.168.192.in-addr.arpa.",
            PTR,
            NX,
            "168.192.in-addr.arpa.",
            &[],
        ),
        want(
            "9.0.64.100.in-addr.arpa.",
            PTR,
            NX,
            "64.100.in-addr.arpa.",
            &[],
        ),
        want("1.0.0.127.in-addr.arpa.", PTR, NX, "127.in-addr.arpa.", &[]),
        want(ip6_arpa("fd00::1"), PTR, NX, "d.f.ip6.arpa.", &[]),
        want(ip6_arpa("fe80::1"), PTR, NX, "8.e.f.ip6.arpa.", &[]),
        want(ip6_arpa("::1"), PTR, OK, "", &[]),
        want("10.in-addr.arpa.", SOA, OK, "10.in-addr.arpa.", &[SOA]),
        want("10.IN-ADDR.ARPA.", NS, OK, "10.IN-ADDR.ARPA.", &[NS]),
        want("10.in-addr.arpa.", TXT, OK, "10.in-addr.arpa.", &[]),
        want("printer.", A, NX, "printer.", &[]),
        want("wpad.", AAAA, NX, "wpad.", &[]),
        want("x.local.", A, NX, "local.", &[]),
        want("y.home.arpa.", A, NX, "home.arpa.", &[]),
        want("z.internal.", AAAA, NX, "internal.", &[]),
        want("q.invalid.", MX, NX, "invalid.", &[]),
        want("localhost.", A, OK, "localhost.", &[A]),
        want("localhost.", AAAA, OK, "localhost.", &[AAAA]),
        want("app.LocalHost.", A, OK, "localhost.", &[A]),
        want("localhost.", MX, OK, "localhost.", &[]),
    ]
}

/// Checks one local answer: rcode, AA, answer types and data, and the SOA of the zone.
fn check(w: &Want, m: &Message, how: &str) {
    let what = format!("{} {} over {how}", w.name, w.qtype);
    assert_eq!(m.metadata.response_code, w.rcode, "{what}");
    assert!(m.metadata.authoritative, "{what}: AA");
    assert!(ede(m).is_empty(), "{what}: no EDE");
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, w.answers, "{what}");
    for r in &m.answers {
        match &r.data {
            RData::A(a) => assert_eq!(a.0, std::net::Ipv4Addr::LOCALHOST, "{what}"),
            RData::AAAA(a) => assert_eq!(a.0, std::net::Ipv6Addr::LOCALHOST, "{what}"),
            RData::NS(ns) => assert_eq!(ns.0.to_ascii(), w.apex, "{what}: NS names the apex"),
            _ => {}
        }
    }
    let soa = m
        .answers
        .iter()
        .chain(&m.authorities)
        .find(|r| r.record_type() == SOA);
    if w.answers.is_empty() || w.answers == [SOA] {
        let apex = if w.apex.is_empty() { &w.name } else { w.apex };
        let soa = soa.unwrap_or_else(|| panic!("{what}: a SOA"));
        assert_eq!(soa.name.to_ascii(), *apex, "{what}: SOA owner");
        assert_eq!(soa.ttl, 10_800, "{what}");
        let RData::SOA(s) = &soa.data else {
            panic!("{what}: {soa:?}")
        };
        assert_eq!(s.mname.to_ascii(), *apex, "{what}: MNAME");
        assert_eq!(s.rname.to_ascii(), "nobody.invalid.", "{what}: RNAME");
        assert_eq!(
            (s.serial, s.refresh, s.retry, s.expire, s.minimum),
            (1, 3600, 1200, 604_800, 10_800),
            "{what}"
        );
    } else {
        assert!(m.authorities.is_empty(), "{what}");
    }
}

fn paths() -> [(&'static str, QueryOpts); 2] {
    [("udp", QueryOpts::default()), ("tcp", QueryOpts::tcp())]
}

/// Sum of `pixelguard_queries_total{outcome="..."}` over every zone, scraped over HTTP.
async fn scraped(pg: &pg::Pg, outcome: &str) -> f64 {
    let url = format!(
        "http://{}/metrics",
        pg.app.admin_addr.expect("admin server bound")
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap();
    let text = client.get(url).send().await.unwrap().text().await.unwrap();
    let label = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|l| l.starts_with(pixelguard::metrics::QUERIES_TOTAL) && l.contains(&label))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn local_zones_are_answered_here_and_never_forwarded() {
    let auth = AuthServer::start_test_zone();
    for udp_path in ["fast", "hickory"] {
        auth.clear_seen();
        let pg = pg::start(&config(auth.addr(), udp_path, ""), &FILES).await;
        let cases = local_cases();
        for (how, opts) in paths() {
            for w in &cases {
                let m = query(pg.addr, &w.name, w.qtype, &opts)
                    .await
                    .unwrap_or_else(|e| panic!("{} {}: {e}", w.name, w.qtype));
                check(w, &m, &format!("{how} ({udp_path} UDP path)"));
            }
        }
        assert_eq!(
            auth.seen(),
            Vec::new(),
            "{udp_path}: the upstream saw a locally served name"
        );
        // Counted as outcome local, once per answer, on the metric and in the recorder.
        let n = (2 * cases.len()) as f64;
        assert_eq!(scraped(&pg, Outcome::Local.as_str()).await, n, "{udp_path}");
        assert_eq!(pg.app.pipeline.recorder.count(Outcome::Local) as f64, n);
        // The name policy runs first: a listed name under local. keeps the block response.
        let m = query(pg.addr, "tracker.local.", A, &QueryOpts::default())
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(ede(&m)[0].0, 15, "blocked by the list, EDE 15");
        assert_eq!(pg.app.pipeline.recorder.count(Outcome::Blocked), 1);
        // The recording upstream is alive: a public name reaches it.
        let m = query(pg.addr, "www.example.test.", A, &QueryOpts::default())
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(auth.saw_name("www.example.test."));
    }
}

/// Names that look local but are not: they must reach the upstream.
fn forwarded_cases() -> Vec<(String, RecordType)> {
    vec![
        ("com.".into(), NS),
        ("com.".into(), DS),
        ("printer.".into(), TXT),
        ("printer.".into(), SOA),
        (".".into(), NS),
        ("8.8.8.8.in-addr.arpa.".into(), PTR),
        ("1.0.32.172.in-addr.arpa.".into(), PTR),
        ("1.0.128.100.in-addr.arpa.".into(), PTR),
        (ip6_arpa("fc00::1"), PTR),
        ("x.test.".into(), A),
    ]
}

#[tokio::test]
async fn other_names_and_types_still_reach_the_upstream() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&config(auth.addr(), "fast", ""), &FILES).await;
    for (how, opts) in paths() {
        for (name, qtype) in forwarded_cases() {
            auth.clear_seen();
            // The test upstream refuses names outside its zone: the client gets SERVFAIL, but
            // the question reached it.
            query(pg.addr, &name, qtype, &opts).await.unwrap();
            assert!(
                auth.seen()
                    .iter()
                    .any(|s| s.name_is(&name) && s.qtype == qtype),
                "{name} {qtype} over {how} was not forwarded: {:?}",
                auth.seen()
            );
        }
    }
    assert_eq!(pg.app.pipeline.recorder.count(Outcome::Local), 0);
}

#[tokio::test]
async fn each_switch_sends_its_names_upstream_again() {
    let auth = AuthServer::start_test_zone();
    let reverse = ("7.3.20.10.in-addr.arpa.", PTR);
    let specials = [
        ("printer.", A),
        ("x.local.", A),
        ("y.home.arpa.", A),
        ("z.internal.", A),
        ("localhost.", A),
    ];
    let forwarded = |name: &str, qtype| {
        auth.seen()
            .iter()
            .any(|s| s.name_is(name) && s.qtype == qtype)
    };
    // private_reverse off: the reverse zone goes upstream, the special names stay here.
    let pg = pg::start(
        &config(auth.addr(), "fast", "[local]\nprivate_reverse = false\n"),
        &FILES,
    )
    .await;
    auth.clear_seen();
    query(pg.addr, reverse.0, reverse.1, &QueryOpts::default())
        .await
        .unwrap();
    assert!(forwarded(reverse.0, reverse.1), "private_reverse = false");
    for (name, qtype) in specials {
        let m = query(pg.addr, name, qtype, &QueryOpts::default())
            .await
            .unwrap();
        assert!(m.metadata.authoritative, "{name}");
        assert!(!forwarded(name, qtype), "{name} stays local");
    }
    // special_names off: the other way round.
    let pg = pg::start(
        &config(auth.addr(), "hickory", "[local]\nspecial_names = false\n"),
        &FILES,
    )
    .await;
    auth.clear_seen();
    for (name, qtype) in specials {
        query(pg.addr, name, qtype, &QueryOpts::tcp())
            .await
            .unwrap();
        assert!(forwarded(name, qtype), "special_names = false: {name}");
    }
    let m = query(pg.addr, reverse.0, reverse.1, &QueryOpts::default())
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(!forwarded(reverse.0, reverse.1));
    // Both off: nothing is local.
    let both = "[local]\nprivate_reverse = false\nspecial_names = false\n";
    let pg = pg::start(&config(auth.addr(), "fast", both), &FILES).await;
    auth.clear_seen();
    for (name, qtype) in specials.into_iter().chain([reverse]) {
        query(pg.addr, name, qtype, &QueryOpts::default())
            .await
            .unwrap();
        assert!(forwarded(name, qtype), "both off: {name}");
    }
    assert_eq!(pg.app.pipeline.recorder.count(Outcome::Local), 0);
}

#[tokio::test]
async fn explain_names_the_locally_served_zone() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&config(auth.addr(), "fast", ""), &FILES).await;
    let client: IpAddr = loopback(1);
    let ex = pixelguard::explain::explain_on(
        &pg.app.pipeline,
        client,
        "7.3.20.10.in-addr.arpa",
        PTR,
        true,
    )
    .await;
    assert!(
        ex.text
            .contains("locally served zone 10.in-addr.arpa (RFC 6303), never forwarded"),
        "{}",
        ex.text
    );
    assert!(
        !ex.text.contains("resolved through the upstream"),
        "{}",
        ex.text
    );
    assert_eq!(ex.json["outcome"], "local");
    assert_eq!(ex.json["decision"]["kind"], "local");
    assert_eq!(ex.json["local"]["zone"], "10.in-addr.arpa");
    assert!(
        ex.json["answer"].as_str().unwrap().starts_with("NXDOMAIN"),
        "{}",
        ex.json
    );
    let ex = pixelguard::explain::explain_on(&pg.app.pipeline, client, "printer", A, true).await;
    assert!(ex.text.contains("single-label name printer"), "{}", ex.text);
    assert_eq!(ex.json["local"]["kind"], "single_label");
    let ex =
        pixelguard::explain::explain_on(&pg.app.pipeline, client, "x.home.arpa", A, true).await;
    assert!(
        ex.text
            .contains("locally served zone home.arpa (RFC 8375), never forwarded"),
        "{}",
        ex.text
    );
    // explain --resolve asked nothing upstream.
    assert_eq!(auth.count(), 0);
}
