//! Criterion benchmarks of the request path's hot pieces: the wire parser, a cache hit encoded
//! for a client, a blocked answer synthesized, the policy decision against a 1M-name list, and
//! the forward-rule lookup with 100 rules.
//! The side-by-side server benchmark is `scripts/bench.sh`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use pixelguard::config::{BlockResponse, CatalogueMode, ListConfig, ListFormat, ListSource, Mode};
use pixelguard::lists;
use pixelguard::matcher::QueryName;
use pixelguard::policy::{self, RuleAction, ZonePolicy};
use pixelguard::{respond, wire};

fn query_bytes(name: &str) -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).unwrap_or_else(|_| Name::root()),
        RecordType::A,
    ));
    let mut e = hickory_proto::op::Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    let q = query_bytes("www.bench.example.");
    c.bench_function("wire/parse_query", |b| {
        b.iter(|| wire::parse_query(black_box(&q)).map(|p| p.qtype))
    });

    let mut answer = Message::new(0, MessageType::Response, OpCode::Query);
    answer.metadata.response_code = ResponseCode::NoError;
    let name = Name::from_ascii("www.bench.example.").unwrap_or_else(|_| Name::root());
    answer.add_query(Query::query(name.clone(), RecordType::A));
    answer.add_answer(Record::from_rdata(
        name,
        300,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    let entry = pixelguard::cache::CachedAnswer::new(
        &answer,
        false,
        RecordType::A,
        std::time::Instant::now(),
        &pixelguard::config::CacheConfig {
            max_entries: 1,
            max_size: 0,
            min_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(86_400),
            negative_max_ttl: Duration::from_secs(3_600),
            servfail_ttl: Duration::from_secs(5),
            serve_stale: Duration::ZERO,
        },
    );
    let parsed = wire::parse_query(&q);
    let mut out = Vec::with_capacity(1500);
    if let (Some(entry), Some(p)) = (entry, parsed.as_ref()) {
        let v = p.view();
        let hit = respond::Answer::Upstream {
            entry,
            age: 7,
            max_ttl: 86_400,
        };
        c.bench_function("wire/encode_cached_hit", |b| {
            b.iter(|| respond::encode(&mut out, black_box(&v), &hit, 1232))
        });
        let response = BlockResponse::Nxdomain;
        let blocked = respond::Answer::Blocked(respond::Blocked {
            response: &response,
            action: RuleAction::Block,
            ttl: 300,
            soa_labels: Some(2),
            ede: "pixelguard: bench".into(),
        });
        c.bench_function("wire/encode_blocked_nxdomain", |b| {
            b.iter(|| respond::encode(&mut out, black_box(&v), &blocked, 1232))
        });
    }

    // A 1M-name list, as the side-by-side benchmark loads it.
    let dir = std::env::temp_dir().join(format!("pixelguard-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("list.txt");
    let mut text = String::with_capacity(25_000_000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..1_000_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!(
            "t{:x}{i}.tracker{}.example\n",
            x & 0xffff,
            x % 5000
        ));
    }
    let _ = std::fs::write(&path, &text);
    let lc = ListConfig {
        name: "bench".into(),
        source: ListSource::File(path.clone()),
        format: Some(ListFormat::Domains),
        fetch: Default::default(),
    };
    let list = Arc::new(lists::load(&lc));
    let zone = ZonePolicy {
        name: "bench".into(),
        allow: vec![],
        block: vec![0],
        mode: Mode::Enforce,
        response: BlockResponse::Nxdomain,
        block_ttl: Duration::from_secs(300),
        catalogue: CatalogueMode::Block,
        canaries: true,
        uncloak: true,
        rate_limit: Default::default(),
        trial: vec![],
        watch: vec![],
        vendor_list: None,
        block_vendors: vec![],
        allow_vendors: vec![],
        exceptions: vec![],
    };
    let all = vec![list];
    let listed = text.lines().nth(500_000).unwrap_or("a.example").to_owned();
    let sub = format!("cdn.{listed}");
    c.bench_function("policy/decide_miss_1M", |b| {
        b.iter(|| {
            policy::decide(
                &all,
                &zone,
                &QueryName::new(black_box(b"www.unlisted.example.org")),
            )
        })
    });
    c.bench_function("policy/decide_subdomain_hit_1M", |b| {
        b.iter(|| policy::decide(&all, &zone, &QueryName::new(black_box(sub.as_bytes()))))
    });
    let _ = std::fs::remove_dir_all(&dir);
    route(c);
}

/// The forward-rule lookup a cache miss pays: 100 rules of two domains each (an AD forest's
/// forward and reverse zones), a name under one of them (hit) and a public name (miss); and the
/// cost with no rule at all.
fn route(c: &mut Criterion) {
    use pixelguard::config::{ForwardRule, Strategy, UpstreamConfig, UpstreamServer};
    use pixelguard::upstream::route::Forwards;
    let base = UpstreamConfig::default();
    let rules: Vec<ForwardRule> = (0..100u32)
        .map(|i| ForwardRule {
            name: format!("site{i}"),
            domains: vec![
                format!("site{i}.corp.force.example"),
                format!("{i}.10.in-addr.arpa"),
            ],
            servers: vec![UpstreamServer::plain(std::net::SocketAddr::from((
                [10, 1, (i / 250) as u8, (i % 250) as u8 + 1],
                53,
            )))],
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            strategy: Strategy::Ordered,
        })
        .collect();
    let f = Forwards::build(&rules, &base, None);
    let none = Forwards::build(&[], &base, None);
    c.bench_function("route/hit_100_rules", |b| {
        b.iter(|| f.covers(black_box("_ldap._tcp.dc._msdcs.site57.corp.force.example")))
    });
    c.bench_function("route/miss_100_rules", |b| {
        b.iter(|| f.covers(black_box("www.bench.example.org")))
    });
    c.bench_function("route/no_rules", |b| {
        b.iter(|| none.covers(black_box("www.bench.example.org")))
    });
}

criterion_group! {
    name = hot;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(hot);
