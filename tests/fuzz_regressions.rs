//! Regressions found by the cargo-fuzz targets (fuzz/, README "Fuzzing"), one test per fix, each
//! replaying the committed input from fuzz/regressions/<target>/ through the same entry a
//! user's bytes take: a real pixelguard on loopback for wire inputs, the config loader the CLI
//! uses for config text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use pixelguard::config::{Config, Overrides};
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, query, query_raw};

/// fuzz/regressions/wire/ecs-prefix-40: a query for www.example.com with an EDNS Client Subnet
/// option whose IPv4 source prefix is 40 (longer than an address). hickory's decoder rejects
/// it, so the full path answers FORMERR; the fast path did not read the options and answered
/// the same bytes from the cache (NOERROR with the address) once the name was cached.
const ECS_PREFIX_40: &[u8] = include_bytes!("../fuzz/regressions/wire/ecs-prefix-40");

/// The committed input with its name changed to `www.example.test` (same length), so the test
/// upstream answers it.
fn ecs_query_for_test_zone() -> Vec<u8> {
    let raw = ECS_PREFIX_40.to_vec();
    let from: &[u8] = b"\x03www\x07example\x03com\x00";
    let to: &[u8] = b"\x03www\x07example\x04test\x00";
    assert_eq!(
        &raw[12..12 + from.len()],
        from,
        "the committed input changed"
    );
    let mut out = raw[..12].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&raw[12 + from.len()..]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_client_subnet_option_is_formerr_on_a_cache_hit_too() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nrate_limit = {{ qps = 0 }}\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    let bad = ecs_query_for_test_zone();
    assert!(
        Message::from_vec(&bad).is_err(),
        "hickory rejects the input"
    );

    // Cold cache: the full path answers.
    let cold = query_raw(pg.addr, &bad, false, "127.0.0.1".parse().unwrap())
        .await
        .unwrap()
        .expect("an answer to the bad ECS query");
    // Cache the name with a well-formed query, then send the same bad bytes again.
    let good = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(good.metadata.response_code, ResponseCode::NoError);
    assert!(!good.answers.is_empty());
    let warm = query_raw(pg.addr, &bad, false, "127.0.0.1".parse().unwrap())
        .await
        .unwrap()
        .expect("an answer to the bad ECS query");

    for (when, reply) in [("cache cold", &cold), ("cache warm", &warm)] {
        assert_eq!(reply[..2], bad[..2], "{when}: id");
        assert_eq!(
            reply[3] & 0x0f,
            ResponseCode::FormErr.low(),
            "{when}: rcode of {reply:02x?}"
        );
        assert_eq!(reply[6..8], [0, 0], "{when}: no answer records");
    }
    assert_eq!(cold, warm, "the same bytes get the same answer");
}

/// fuzz/regressions/config/nul-in-comment: the embedded default config with NUL bytes inside a
/// comment. The toml crate reports that error with an empty message, and the loader printed
/// "file:24:53: " and nothing else.
#[test]
fn a_control_character_in_the_config_is_named() {
    let text = include_str!("../fuzz/regressions/config/nul-in-comment");
    let errors = Config::from_str(
        text,
        "pixelguard.toml",
        Path::new("."),
        &Overrides::default(),
    )
    .expect_err("a NUL is not TOML");
    let e = &errors.0[0];
    assert_eq!((e.file.as_str(), e.line), ("pixelguard.toml", 24));
    assert!(
        e.message.contains("control character (U+0000)"),
        "{}",
        errors
    );
    let short = "[server]\n# tab\tis fine, \u{7}is not\n";
    let errors = Config::from_str(short, "p.toml", Path::new("."), &Overrides::default())
        .expect_err("BEL is not TOML");
    assert_eq!(errors.0[0].line, 2);
    assert!(errors.0[0].message.contains("U+0007"), "{}", errors);
}

/// fuzz/regressions/wire/formerr-compressed-questions: a request with 32 questions whose names
/// hold compression pointers. It is answered FORMERR (not exactly one question); the reply
/// echoed the client's question bytes, pointers and all, and did not parse. An error reply now
/// echoes a question only when there is exactly one, re-encoded without compression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formerr_to_many_compressed_questions_parses() {
    let raw: &[u8] = include_bytes!("../fuzz/regressions/wire/formerr-compressed-questions");
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nrate_limit = {{ qps = 0 }}\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    for tcp in [false, true] {
        let reply = query_raw(pg.addr, raw, tcp, "127.0.0.1".parse().unwrap())
            .await
            .unwrap()
            .expect("a FORMERR reply");
        let m = Message::from_vec(&reply)
            .unwrap_or_else(|e| panic!("tcp={tcp}: the reply does not parse: {e}: {reply:02x?}"));
        assert_eq!(m.metadata.id, u16::from_be_bytes([raw[0], raw[1]]));
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "tcp={tcp}");
        assert!(m.queries.is_empty(), "tcp={tcp}: no question echoed");
    }
    assert_eq!(auth.count(), 0, "nothing was forwarded");
}
