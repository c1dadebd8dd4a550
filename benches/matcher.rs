//! Criterion benchmarks of the domain-suffix matcher on 1M synthetic tracker-like names:
//! build time (builder inserts + build), and per-query lookup cost (`QueryName::new` +
//! `Matcher::find`, stopping at the most specific hit) for listed names, subdomains of listed
//! names and unlisted names; plus `QueryName::new` alone.
//!
//! Run: `cargo bench --bench matcher`.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use pixelguard::matcher::{Matcher, MatcherBuilder, QueryName};

const NAMES: usize = 1_000_000;
/// Distinct queries per lookup benchmark, cycled; large enough that lookups are not all cached.
const QUERIES: usize = 1 << 16;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

#[path = "support/names.rs"]
mod names;
use names::XorShift;

fn names() -> Vec<String> {
    let mut rng = XorShift(SEED);
    (0..NAMES)
        .map(|_| {
            let mut n = String::with_capacity(32);
            rng.name(&mut n);
            n
        })
        .collect()
}

fn build(names: &[String]) -> Matcher {
    let mut b = MatcherBuilder::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        b.insert(n, i as u32, |old, _| old);
    }
    b.build()
}

fn bench_build(c: &mut Criterion, names: &[String]) {
    let mut g = c.benchmark_group("matcher_build");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(names.len() as u64));
    g.bench_function("1m_names", |b| {
        b.iter_batched(|| (), |()| build(black_box(names)), BatchSize::PerIteration)
    });
    g.finish();
}

fn bench_lookup(c: &mut Criterion, names: &[String]) {
    let m = build(names);
    let mut rng = XorShift(SEED ^ 0x5555_5555_5555_5555);
    let mut listed = || names[rng.below(names.len() as u64) as usize].clone();
    let hit: Vec<String> = (0..QUERIES).map(|_| listed()).collect();
    let sub: Vec<String> = (0..QUERIES)
        .map(|i| format!("x{}.{}", i % 100, listed()))
        .collect();
    let mut rng = XorShift(SEED ^ 0xaaaa_aaaa_aaaa_aaaa);
    let miss: Vec<String> = (0..QUERIES)
        .map(|_| {
            let mut n = String::with_capacity(32);
            rng.name(&mut n);
            n
        })
        .collect();

    let mut g = c.benchmark_group("matcher_lookup_1m");
    g.throughput(Throughput::Elements(1));
    for (label, queries) in [
        ("hit", &hit),
        ("miss", &miss),
        ("subdomain_of_listed", &sub),
    ] {
        g.bench_function(label, |b| {
            let mut i = 0;
            b.iter(|| {
                let q = QueryName::new(queries[i % QUERIES].as_bytes());
                i += 1;
                m.find(&q, |h| ControlFlow::Break(h.payload))
            })
        });
    }
    g.bench_function("query_name_new", |b| {
        let mut i = 0;
        b.iter(|| {
            let q = QueryName::new(sub[i % QUERIES].as_bytes());
            i += 1;
            black_box(q.label_count())
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let names = names();
    bench_build(c, &names);
    bench_lookup(c, &names);
}

criterion_group!(matcher_benches, benches);
criterion_main!(matcher_benches);
