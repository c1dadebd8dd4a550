//! Raw request bytes through a real pipeline: the strict wire parser (`wire::parse_query` and its
//! `Query` view), the UDP fast path (`Pipeline::fast_udp`) and the full path's decode with the
//! synchronous stages after it, for one client in each zone (enforce with lists and canaries,
//! log, an address response, a null response, a strict rate limit, and no zone). The cache holds a
//! few upstream answers (a plain A, a CNAME into a tracker, a TXT too large for 512 bytes), so
//! cache hits, uncloaking and truncation are reached too.
//!
//! Beyond "never panics", every answer must be a DNS response a client can read: hickory parses
//! it, it carries the request's id and QR, and it fits the size limit it was encoded for. Where
//! the fast path and the full path both answer the same bytes for the same client, their headers
//! (id, flags, rcode, counts) agree.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use libfuzzer_sys::fuzz_target;
use pixelguard::fuzzing::Harness;
use pixelguard::wire;

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["127.0.0.1:9"]
timeout = "400ms"

[admin]
listen = ""

[lists.blocks]
source = "blocks.txt"
format = "domains"
[lists.hosts]
source = "hosts.txt"
format = "hosts"
[lists.ads]
source = "ads.txt"
format = "adblock"
[lists.rpz]
source = "policy.rpz"
format = "rpz"
[lists.allow]
source = "allow.txt"
[lists.trackers]
source = "builtin:trackers"

[zones.enforce]
networks = ["127.0.0.2/32"]
block = ["blocks", "hosts", "ads", "rpz", "trackers"]
allow = ["allow"]
rate_limit = { qps = 0 }

[zones.log]
networks = ["127.0.0.3/32"]
block = ["blocks", "trackers"]
mode = "log"
rate_limit = { qps = 0 }

[zones.address]
networks = ["127.0.0.4/32"]
block = ["blocks", "ads", "trackers"]
response = ["192.0.2.10", "2001:db8::10"]
catalogue = "strict"
rate_limit = { qps = 0 }

[zones.null]
networks = ["::1/128"]
block = ["blocks", "rpz"]
response = "null"
canaries = false
uncloak = false
rate_limit = { qps = 0 }

[zones.limited]
networks = ["127.0.0.5/32"]
block = ["blocks"]
response = "refused"
rate_limit = { qps = 1, burst = 2, action = "drop" }
"#;

const LISTS: [(&str, &str); 5] = [
    ("blocks.txt", "tracker.test\nmetrics.example.net\n"),
    ("hosts.txt", "0.0.0.0 pixel.test\n127.0.0.1 beacon.test\n"),
    ("ads.txt", "||ads.test^\n@@||ok.ads.test^\n"),
    (
        "policy.rpz",
        "$TTL 300\n@ SOA localhost. root.localhost. 1 3600 600 86400 300\nrpz.test CNAME .\n*.rpz.test CNAME *.\n",
    ),
    ("allow.txt", "ok.tracker.test\n"),
];

/// The clients: one per zone, then one in no zone.
const CLIENTS: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
];
/// The client whose zone has a rate limit: its answers depend on earlier inputs.
const LIMITED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap_or_else(|_| Name::root())
}

fn answer(q: &str, qtype: RecordType, records: Vec<Record>) -> Message {
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.add_query(Query::query(name(q), qtype));
    for r in records {
        m.add_answer(r);
    }
    m
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("pixelguard-fuzz-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the list folder");
    for (file, text) in LISTS {
        std::fs::write(dir.join(file), text).expect("write a list");
    }
    let h = Harness::new(CONFIG, &dir).expect("the harness config is valid");
    let www = name("www.example.com.");
    let cloaked = name("cloaked.example.com.");
    let target = name("metrics.example.net.");
    let big = name("big.example.com.");
    let seeds = [
        answer(
            "www.example.com.",
            RecordType::A,
            vec![Record::from_rdata(www, 300, RData::A(A::new(192, 0, 2, 1)))],
        ),
        answer(
            "cloaked.example.com.",
            RecordType::A,
            vec![
                Record::from_rdata(cloaked, 300, RData::CNAME(CNAME(target.clone()))),
                Record::from_rdata(target, 300, RData::A(A::new(192, 0, 2, 2))),
            ],
        ),
        answer(
            "big.example.com.",
            RecordType::TXT,
            (0..8)
                .map(|i| {
                    let text = format!("{i}{}", "x".repeat(200));
                    Record::from_rdata(big.clone(), 300, RData::TXT(TXT::new(vec![text])))
                })
                .collect(),
        ),
    ];
    for m in &seeds {
        assert!(h.seed_cache(m), "a seed answer was not cached");
    }
    h
});

/// An answer a client can read: hickory parses it, and it carries the request's id and QR and
/// fits `limit`.
fn check_answer(path: &str, raw: &[u8], out: &[u8], limit: usize) {
    if out.is_empty() {
        return;
    }
    assert!(
        out.len() <= limit,
        "{path}: {} bytes over a limit of {limit}",
        out.len()
    );
    if let Err(e) = Message::from_vec(out) {
        panic!("{path}: the answer does not parse: {e}\n{out:02x?}");
    }
    assert!(out.len() >= 12, "{path}: a short answer");
    assert_eq!(out.get(..2), raw.get(..2), "{path}: the id differs");
    assert_ne!(out[2] & 0x80, 0, "{path}: QR is clear");
}

fuzz_target!(|data: &[u8]| {
    let h = &*HARNESS;
    if let Some(p) = wire::parse_query(data) {
        let q = p.view();
        assert_eq!(q.name, p.name());
        assert!(q.name.len() <= 254, "a name longer than DNS allows");
        assert_eq!(q.name, q.name.to_ascii_lowercase());
        let _ = (q.udp_limit(), q.dnssec_ok());
    }
    let fast_limit = wire::parse_query(data).map(|p| p.view().udp_limit());
    let mut fast = Vec::with_capacity(1500);
    let mut full = Vec::with_capacity(1500);
    for client in CLIENTS {
        let answered = h.fast_udp(data, client, &mut fast);
        if answered {
            let limit = fast_limit.expect("the fast path answered a query it did not parse");
            check_answer("fast path", data, &fast, limit);
        }
        let src = SocketAddr::new(client, 5353);
        if let Some(limit) = h.full_path(data, src, false, &mut full) {
            check_answer("full path (udp)", data, &full, limit);
            if answered && client != LIMITED && !fast.is_empty() && !full.is_empty() {
                assert_eq!(
                    fast[..12],
                    full[..12],
                    "the fast and the full path disagree on the header for {client}"
                );
            }
        }
    }
    if let Some(limit) = h.full_path(data, SocketAddr::new(CLIENTS[0], 5353), true, &mut full) {
        check_answer("full path (tcp)", data, &full, limit);
    }
});
