//! The UDP fast path (wire-level answers for cache hits, blocked names and refused clients) and
//! the full hickory-based path must give the same answers. Two pixelguards with the same config,
//! one per path, are asked the same questions (twice, so the second round is served from the
//! cache), and the decoded answers are compared field by field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, query};

fn config(upstream: std::net::SocketAddr, path: &str) -> String {
    format!(
        "{}udp_path_marker = 0\n[lists.trackers]\nsource = \"builtin:trackers\"\n[lists.local]\nsource = \"blocked.txt\"\n\
         [zones.nx]\nnetworks = [\"127.0.0.1/32\"]\nblock = [\"trackers\", \"local\"]\n\
         [zones.null]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\", \"local\"]\nresponse = \"null\"\n\
         [zones.ips]\nnetworks = [\"127.0.0.6/32\"]\nblock = [\"trackers\"]\nresponse = [\"192.0.2.10\", \"2001:db8::10\"]\n\
         [zones.refused]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"trackers\"]\nresponse = \"refused\"\n\
         [zones.log]\nnetworks = [\"127.0.0.7/32\"]\nblock = [\"trackers\", \"local\"]\nmode = \"log\"\n",
        base(&[upstream]).replace("[upstream]", &format!("udp_path = \"{path}\"\n\n[upstream]"))
    )
    .replace("udp_path_marker = 0\n", "")
}

/// The parts of a message a client can see, without the id.
fn view(m: &Message) -> String {
    let mut h = m.metadata;
    h.id = 0;
    let edns = m.edns.as_ref().map(|e| {
        (
            e.max_payload(),
            e.flags().dnssec_ok,
            e.version(),
            format!("{:?}", e.options()),
        )
    });
    format!(
        "{h:?}\nQ {:?}\nAN {:?}\nNS {:?}\nAR {:?}\nEDNS {edns:?}",
        m.queries, m.answers, m.authorities, m.additionals
    )
}

#[tokio::test]
async fn fast_and_full_paths_answer_alike() {
    let auth = AuthServer::start_test_zone();
    let files = [("blocked.txt", "sub.example.test\n")];
    let fast = pg::start(&config(auth.addr(), "fast"), &files).await;
    let full = pg::start(&config(auth.addr(), "hickory"), &files).await;
    let names = [
        ("www.example.test.", RecordType::A),
        ("WwW.Example.Test.", RecordType::AAAA),
        ("chain1.example.test.", RecordType::A),
        ("nope.example.test.", RecordType::A),
        ("mail.example.test.", RecordType::AAAA),
        ("mx.example.test.", RecordType::MX),
        ("metrics.example.test.", RecordType::A),
        ("signed.example.test.", RecordType::A),
        ("connect.facebook.net.", RecordType::A),
        ("Pixel.Facebook.com.", RecordType::AAAA),
        ("a.b.sub.example.test.", RecordType::HTTPS),
        ("google-analytics.com.", RecordType::MX),
    ];
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let sources = [
        "127.0.0.1",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.6",
        "127.0.0.7",
        "127.0.0.9",
    ];
    let mut compared = 0;
    for round in 0..2 {
        for src in sources {
            for (name, qtype) in names {
                for (edns, do_bit) in [
                    (None, false),
                    (Some(1232), false),
                    (Some(4096), true),
                    (Some(600), false),
                ] {
                    let o = QueryOpts {
                        source: ip(src),
                        edns,
                        do_bit,
                        ..Default::default()
                    };
                    let a = query(fast.addr, name, qtype, &o).await.unwrap();
                    let b = query(full.addr, name, qtype, &o).await.unwrap();
                    assert_eq!(
                        view(&a),
                        view(&b),
                        "round {round}, from {src}: {name} {qtype} edns {edns:?} do {do_bit}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 2 * 6 * 12 * 4);
    // The fast pipeline really answered from the cache on the second round.
    let cached = fast
        .app
        .pipeline
        .recorder
        .count(pixelguard::outcome::Outcome::Cached);
    assert!(cached > 100, "cache hits on the fast path: {cached}");
}
