//! Measures the domain-suffix matcher on synthetic tracker-like names: load time, resident memory
//! added by one loaded matcher, its own heap accounting, and the average cost of a lookup
//! (`QueryName::new` + `Matcher::find`) over 1M queries, about half of which hit.
//!
//! Usage: `cargo run --release --example matcher_mem [N]` (N names, default 1,000,000).

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Instant;

use pixelguard::matcher::{Matcher, MatcherBuilder, QueryName};

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const LOOKUPS: usize = 1_000_000;

#[path = "../benches/support/names.rs"]
mod names;
use names::XorShift;

/// A `kB` field of /proc/self/status, in bytes (0 where unavailable).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn first_hit(m: &Matcher, name: &str) -> Option<u32> {
    let q = QueryName::new(name.as_bytes());
    m.find(&q, |h| ControlFlow::Break(h.payload))
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);

    // Cost of generating the names alone, to subtract from the load time below.
    let t = Instant::now();
    let mut rng = XorShift(SEED);
    let mut buf = String::with_capacity(64);
    let mut total_len = 0usize;
    for _ in 0..n {
        rng.name(&mut buf);
        total_len += buf.len();
    }
    let gen_time = t.elapsed();

    let rss_before = status_bytes("VmRSS:");
    let t = Instant::now();
    let mut rng = XorShift(SEED);
    let mut b = MatcherBuilder::with_capacity(n);
    for i in 0..n {
        rng.name(&mut buf);
        b.insert(&buf, i as u32, |old, _| old);
    }
    let m = b.build();
    let load = t.elapsed();
    let rss_after = status_bytes("VmRSS:");
    let peak = status_bytes("VmHWM:");

    println!("names generated:      {n}");
    println!("distinct names:       {}", m.len());
    println!(
        "average name length:  {:.1} bytes",
        total_len as f64 / n.max(1) as f64
    );
    println!(
        "load (insert+build):  {:.3} s  ({:.3} s with name generation)",
        load.saturating_sub(gen_time).as_secs_f64(),
        load.as_secs_f64()
    );
    println!(
        "RSS before/after:     {:.1} MiB -> {:.1} MiB",
        mib(rss_before),
        mib(rss_after)
    );
    println!(
        "RSS delta after build: {:.1} MiB",
        mib(rss_after.saturating_sub(rss_before))
    );
    println!(
        "peak RSS delta (VmHWM): {:.1} MiB",
        mib(peak.saturating_sub(rss_before))
    );
    println!(
        "heap_bytes:           {} ({:.1} MiB, {:.1} B/name)",
        m.heap_bytes(),
        mib(m.heap_bytes() as u64),
        m.heap_bytes() as f64 / m.len().max(1) as f64
    );

    // Query mix: 25% listed names, 25% subdomains of listed names, 50% unlisted names.
    let mut listed = Vec::with_capacity(n);
    let mut rng = XorShift(SEED);
    for _ in 0..n {
        rng.name(&mut buf);
        listed.push(buf.clone().into_boxed_str());
    }
    let mut rng = XorShift(SEED ^ 0x5555_5555_5555_5555);
    let mut kinds: [Vec<String>; 3] = Default::default();
    for i in 0..LOOKUPS {
        let Some(pick) = listed.get(rng.below(n.max(1) as u64) as usize) else {
            break;
        };
        match i % 4 {
            0 => kinds[0].push(pick.to_string()),
            1 => {
                let mut s = String::new();
                rng.label(&mut s, 1, 6);
                s.push('.');
                s.push_str(pick);
                kinds[1].push(s);
            }
            _ => {
                rng.name(&mut buf);
                kinds[2].push(buf.clone());
            }
        }
    }
    drop(listed);

    // One untimed pass first, so the timings below do not include first-touch costs.
    let mut warm = 0usize;
    for q in kinds.iter().flatten() {
        warm += usize::from(first_hit(&m, q).is_some());
    }
    black_box(warm);

    let mut total_ns = 0.0;
    let mut total_hits = 0;
    for (label, queries) in ["listed", "subdomain", "unlisted"].iter().zip(&kinds) {
        let t = Instant::now();
        let mut hits = 0usize;
        for q in queries {
            if black_box(first_hit(&m, black_box(q))).is_some() {
                hits += 1;
            }
        }
        let ns = t.elapsed().as_nanos() as f64;
        println!(
            "lookup {label:<10} {:>7.1} ns/query  ({hits}/{} hit)",
            ns / queries.len() as f64,
            queries.len()
        );
        total_ns += ns;
        total_hits += hits;
    }
    println!(
        "lookup average:       {:.1} ns/query over {LOOKUPS} queries ({:.1}% hit)",
        total_ns / LOOKUPS as f64,
        100.0 * total_hits as f64 / LOOKUPS as f64
    );

    // Same mix, interleaved as generated (no per-kind batching).
    let mut next = [0usize; 3];
    let mixed: Vec<&str> = (0..LOOKUPS)
        .map(|i| {
            let k = [0, 1, 2, 2][i % 4];
            next[k] += 1;
            kinds[k][next[k] - 1].as_str()
        })
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for q in &mixed {
        if black_box(first_hit(&m, black_box(q))).is_some() {
            hits += 1;
        }
    }
    println!(
        "lookup interleaved:   {:.1} ns/query ({:.1}% hit)",
        t.elapsed().as_nanos() as f64 / LOOKUPS as f64,
        100.0 * hits as f64 / LOOKUPS as f64
    );
}
