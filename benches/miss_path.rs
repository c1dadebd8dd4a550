//! Criterion benchmark of the cache-miss path without the network: an upstream's reply in wire
//! bytes → the checked upstream message → the cache entry (wire form, TTL offsets, alias
//! targets) → stored in the cache → the answer encoded for the client. The same functions the
//! server runs (`upstream::encode_query` / `read_reply`, `CachedAnswer::new`, `Cache::put`,
//! `respond::encode`), so a regression in any of them shows up here without the side-by-side
//! harness. Two replies: a NOERROR with a CNAME chain (what uncloaking reads) and an NXDOMAIN
//! with its SOA (what `miss-path.sh` sends). A counting global allocator prints the
//! allocations and bytes one miss costs, a figure that is stable on a busy machine.

// The crate denies unsafe code; a global allocator cannot be written without it. This one only
// counts and forwards to `System`, and lives in this measuring binary only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use pixelguard::cache::{Cache, CacheKey, CachedAnswer};
use pixelguard::config::CacheConfig;
use pixelguard::upstream::{self, Question};
use pixelguard::{respond, wire};

/// Counts every allocation (number and bytes) on top of the system allocator.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        // SAFETY: same layout, passed through.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new as u64, Ordering::Relaxed);
        // SAFETY: `p` came from `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap_or_else(|_| Name::root())
}

/// The upstream's reply to `id` for `q`: a CNAME chain to an address, or NXDOMAIN with a SOA.
fn reply(id: u16, q: &Query, nxdomain: bool) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.add_query(q.clone());
    if nxdomain {
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_authority(Record::from_rdata(
            name("example."),
            900,
            RData::SOA(SOA::new(
                name("ns1.example."),
                name("hostmaster.example."),
                2026120401,
                7200,
                3600,
                1_209_600,
                300,
            )),
        ));
    } else {
        m.add_answer(Record::from_rdata(
            q.name().clone(),
            300,
            RData::CNAME(CNAME(name("www.example.cdn.test."))),
        ));
        m.add_answer(Record::from_rdata(
            name("www.example.cdn.test."),
            60,
            RData::CNAME(CNAME(name("edge7.cdn.test."))),
        ));
        m.add_answer(Record::from_rdata(
            name("edge7.cdn.test."),
            20,
            RData::A(A::new(192, 0, 2, 7)),
        ));
    }
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap_or_default()
}

fn client_query(q: &Query) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(q.clone());
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap_or_default()
}

fn config() -> CacheConfig {
    CacheConfig {
        max_entries: 1024,
        max_size: 0,
        min_ttl: Duration::ZERO,
        max_ttl: Duration::from_secs(86_400),
        negative_max_ttl: Duration::from_secs(3_600),
        servfail_ttl: Duration::from_secs(5),
        serve_stale: Duration::ZERO,
    }
}

/// One miss: the query encoded for the upstream, its reply read and checked, the entry built
/// and stored, the client's answer encoded. Returns the answer's length.
fn miss(
    cache: &Cache,
    question: &Question,
    reply: &[u8],
    client: &wire::Query<'_>,
    out: &mut Vec<u8>,
) -> usize {
    let Ok((_id, sent)) = upstream::encode_query(question, true) else {
        return 0;
    };
    black_box(&sent);
    let id = u16::from_be_bytes([reply[0], reply[1]]);
    let Ok(Some(m)) = upstream::read_reply(reply, id, &question.query) else {
        return 0;
    };
    let now = Instant::now();
    let Some(entry) = CachedAnswer::new(&m, false, RecordType::A, now, &cache.config()) else {
        return 0;
    };
    let key = CacheKey::new(client.name, client.qtype, client.qclass, false, false);
    cache.put(key, entry.clone());
    let answer = respond::Answer::Upstream {
        entry,
        age: 0,
        max_ttl: 86_400,
    };
    respond::encode(out, client, &answer, 1232);
    out.len()
}

fn benches(c: &mut Criterion) {
    let q = Query::query(name("www.Example.test."), RecordType::A);
    let question = Question {
        query: q.clone(),
        dnssec_ok: false,
        checking_disabled: false,
    };
    let raw_client = client_query(&q);
    let Some(parsed) = wire::parse_query(&raw_client) else {
        return;
    };
    let client = parsed.view();
    let cache = Cache::new(&config());
    let mut out = Vec::with_capacity(1500);
    for (label, nx) in [("cname_chain", false), ("nxdomain", true)] {
        let bytes = reply(0x5151, &q, nx);
        assert!(
            miss(&cache, &question, &bytes, &client, &mut out) > 0,
            "{label}: the miss path answers"
        );
        let (a0, b0) = (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        const N: u64 = 1000;
        for _ in 0..N {
            black_box(miss(&cache, &question, &bytes, &client, &mut out));
        }
        let (a1, b1) = (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        println!(
            "miss_path/{label}: {} allocations, {} bytes allocated per miss",
            (a1 - a0) / N,
            (b1 - b0) / N
        );
        c.bench_function(&format!("miss_path/{label}"), |b| {
            b.iter(|| miss(&cache, &question, black_box(&bytes), &client, &mut out))
        });
    }
}

criterion_group! {
    name = miss_path;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(miss_path);
