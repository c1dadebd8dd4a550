//! The cache's memory, measured: a counting global allocator (this test binary only) reads what
//! the cache really allocates for N entries, checks that the charge the cache accounts for every
//! entry ([`CachedAnswer::charge`]) is not below it, so `cache.max_size` bounds real memory,
//! and prints bytes per entry. Then a cache with `max_size` takes many more entries than fit
//! and must stay within the size.
//!
//! One `#[test]` only: the counters are process-wide, and tests of one binary run in parallel.

// The crate denies unsafe code; a global allocator cannot be written without it. This one only
// counts and forwards to `System`, and lives in this measuring binary only.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use pixelguard::cache::{Cache, CacheKey, CachedAnswer};
use pixelguard::config::CacheConfig;

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout, passed through.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("test name")
}

fn config(max_entries: usize, max_size: usize) -> CacheConfig {
    CacheConfig {
        max_entries,
        max_size,
        min_ttl: Duration::ZERO,
        max_ttl: Duration::from_secs(86_400),
        negative_max_ttl: Duration::from_secs(3_600),
        servfail_ttl: Duration::from_secs(5),
        serve_stale: Duration::ZERO,
    }
}

/// The upstream's answer for `host`: every third a CNAME to an address (what uncloaking reads),
/// every third an address, every third NXDOMAIN with a SOA.
fn answer(i: usize, host: &str) -> Message {
    let q = name(host);
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(q.clone(), RecordType::A));
    match i % 3 {
        0 => {
            let target = name(&format!("e{i}.cdn.test."));
            m.add_answer(Record::from_rdata(
                q,
                300,
                RData::CNAME(CNAME(target.clone())),
            ));
            m.add_answer(Record::from_rdata(
                target,
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        1 => {
            m.add_answer(Record::from_rdata(q, 300, RData::A(A::new(192, 0, 2, 2))));
        }
        _ => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(Record::from_rdata(
                name("example.test."),
                900,
                RData::SOA(SOA::new(
                    name("ns1.example.test."),
                    name("hostmaster.example.test."),
                    1,
                    7200,
                    3600,
                    1_209_600,
                    300,
                )),
            ));
        }
    }
    m.set_edns(Edns::new());
    m
}

/// Inserts `n` distinct entries, built from upstream messages as the miss path builds them,
/// and returns the heap bytes that stay allocated (the messages are freed) and the wire bytes
/// the entries hold.
fn fill(cache: &Cache, n: usize) -> (usize, usize) {
    let now = Instant::now();
    let cfg = cache.config();
    let before = live();
    let mut wire = 0;
    for i in 0..n {
        let host = format!("host{i}.example.test");
        let m = answer(i, &format!("{host}."));
        let e = CachedAnswer::new(&m, false, RecordType::A, now, &cfg).expect("encodable");
        drop(m);
        wire += e.wire.bytes().len();
        assert!(
            cache.put(CacheKey::new(&host, 1, 1, false, false), e),
            "cacheable"
        );
    }
    let held = usize::try_from(live() - before).unwrap_or(0);
    (held, wire)
}

#[test]
fn entries_cost_what_they_are_charged_and_max_size_bounds_them() {
    const N: usize = 30_000;
    let cache = Cache::new(&config(10 * N, 0));
    let (heap, wire) = fill(&cache, N);
    assert_eq!(cache.len(), N);
    let charged = cache.bytes();
    let per_entry = heap / N;
    println!(
        "{N} entries: {per_entry} heap bytes per entry (wire form {} bytes on average), charged {} per entry",
        wire / N,
        charged / N
    );
    assert!(
        heap <= charged,
        "the charge must bound real memory: allocated {heap}, charged {charged}"
    );
    // The answer is held once: what an entry takes beyond its wire form is bounded.
    assert!(
        per_entry <= wire / N + 300,
        "{per_entry} bytes per entry for {} bytes of wire form",
        wire / N
    );
    drop(cache);

    const SIZE: usize = 1 << 20;
    let bounded = Cache::new(&config(100_000_000, SIZE));
    let (held, _) = fill(&bounded, 4 * N);
    assert!(bounded.len() < 4 * N, "entries were evicted");
    assert!(
        bounded.bytes() <= SIZE,
        "charged {} > {SIZE}",
        bounded.bytes()
    );
    // The hash tables keep the capacity of their fullest moment: a table slot per entry held.
    let slack = bounded.len() * 32 + 64 * 1024;
    assert!(
        held <= SIZE + slack,
        "the cache holds {held} bytes, max_size {SIZE}"
    );
    println!(
        "max_size {SIZE}: {} entries kept, {held} bytes on the heap",
        bounded.len()
    );
}
