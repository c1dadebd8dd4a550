//! Policy-engine integration tests: per-zone modes and block responses, allow lists, CNAME
//! uncloaking on fresh and cached answers, bypass canaries, EDE, and that a blocked name never
//! reaches the upstream (asserted from the upstream's own record of questions).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, answer_ips, ede, query, soa_in_authority};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn from(n: u8) -> QueryOpts {
    QueryOpts::from_source(ip(&format!("127.0.0.{n}")))
}

const LISTS: &[(&str, &str)] = &[
    (
        "blocked.txt",
        "# local test list\nwww.example.test\nsub.example.test\nmx.example.test\n",
    ),
    ("allow.txt", "www.example.test\n"),
    (
        "rpz.zone",
        "$ORIGIN rpz.test.\n$TTL 60\n@ SOA ns. h. 1 1 1 1 1\n  NS ns.\nmail.example.test CNAME .\n*.example.test CNAME *.\nsigned.example.test CNAME rpz-passthru.\n",
    ),
];

fn config(upstream: std::net::SocketAddr) -> String {
    config_for(&[upstream])
}

fn config_for(upstreams: &[std::net::SocketAddr]) -> String {
    format!(
        r#"{}
[lists.trackers]
source = "builtin:trackers"
[lists.local]
source = "blocked.txt"
[lists.allow]
source = "allow.txt"
[lists.rpz]
source = "rpz.zone"

[zones.nx]
networks = ["127.0.0.2/32"]
block = ["trackers", "local"]
block_ttl = "10m"
[zones.null]
networks = ["127.0.0.3/32"]
block = ["trackers", "local"]
response = "null"
[zones.refused]
networks = ["127.0.0.4/32"]
block = ["trackers", "local"]
response = "refused"
[zones.nodata]
networks = ["127.0.0.5/32"]
block = ["trackers", "local"]
response = "nodata"
[zones.ips]
networks = ["127.0.0.6/32"]
block = ["trackers", "local"]
response = ["192.0.2.10", "2001:db8::10"]
[zones.log]
networks = ["127.0.0.7/32"]
block = ["trackers", "local"]
mode = "log"
[zones.allowed]
networks = ["127.0.0.8/32"]
block = ["local"]
allow = ["allow"]
[zones.strict]
networks = ["127.0.0.9/32"]
block = ["trackers"]
catalogue = "strict"
[zones.rpz]
networks = ["127.0.0.10/32"]
block = ["rpz"]
[zones.off]
networks = ["127.0.0.11/32"]
block = ["trackers", "local"]
mode = "off"
canaries = false
"#,
        base(upstreams)
    )
}

async fn setup() -> (AuthServer, pg::Pg) {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&config(auth.addr()), LISTS).await;
    (auth, pg)
}

#[tokio::test]
async fn enforce_answers_each_response_kind() {
    let (auth, pg) = setup().await;
    for qtype in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::HTTPS,
        RecordType::MX,
    ] {
        // nxdomain: NXDOMAIN + synthetic SOA (TTL = block_ttl) + EDE 15 naming list and vendor.
        let m = query(pg.addr, "connect.facebook.net.", qtype, &from(2))
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{qtype}");
        assert!(m.answers.is_empty());
        let (owner, minimum, ttl) = soa_in_authority(&m).expect("SOA");
        assert_eq!(
            (owner.as_str(), minimum, ttl),
            ("connect.facebook.net.", 600, 600)
        );
        assert_eq!(
            ede(&m),
            vec![(15, "pixelguard: trackers (meta/advertising)".to_owned())]
        );

        // null: 0.0.0.0 / :: for A / AAAA only; NODATA + SOA for other types.
        let m = query(pg.addr, "connect.facebook.net.", qtype, &from(3))
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        match qtype {
            RecordType::A => assert_eq!(answer_ips(&m), vec![ip("0.0.0.0")]),
            RecordType::AAAA => assert_eq!(answer_ips(&m), vec![ip("::")]),
            _ => {
                assert!(m.answers.is_empty(), "never an address for {qtype}");
                assert!(soa_in_authority(&m).is_some());
            }
        }
        assert_eq!(ede(&m).len(), 1);

        // refused.
        let m = query(pg.addr, "connect.facebook.net.", qtype, &from(4))
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert_eq!(ede(&m)[0].0, 15);

        // nodata.
        let m = query(pg.addr, "connect.facebook.net.", qtype, &from(5))
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert!(soa_in_authority(&m).is_some());

        // custom addresses, by family; NODATA for other types.
        let m = query(pg.addr, "connect.facebook.net.", qtype, &from(6))
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        match qtype {
            RecordType::A => assert_eq!(answer_ips(&m), vec![ip("192.0.2.10")]),
            RecordType::AAAA => assert_eq!(answer_ips(&m), vec![ip("2001:db8::10")]),
            _ => assert!(m.answers.is_empty()),
        }
    }
    // Subdomains of listed names are blocked; nothing blocked ever reached the upstream.
    let m = query(
        pg.addr,
        "deep.a.connect.facebook.net.",
        RecordType::A,
        &from(2),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = query(pg.addr, "host.sub.example.test.", RecordType::A, &from(2))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ede(&m), vec![(15, "pixelguard: local".to_owned())]);
    assert!(
        !auth
            .seen()
            .iter()
            .any(|q| q.name.to_ascii_lowercase().contains("facebook"))
    );
    assert!(!auth.saw_name("host.sub.example.test"));
    // A name not listed resolves; a "shared" catalogue host is never blocked.
    let m = query(pg.addr, "mail.example.test.", RecordType::A, &from(2))
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.25")]);
}

/// A zone for the canary name itself, so an upstream can give a real answer for it.
const CANARY_ZONE: &str = "$ORIGIN use-application-dns.net.\n$TTL 300\n@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n@ 3600 IN NS ns1\nns1 IN A 192.0.2.53\n@ 120 IN A 192.0.2.99\n";

#[tokio::test]
async fn log_mode_resolves_and_off_mode_ignores_policy() {
    let auth = AuthServer::start_test_zone();
    // Second upstream: the test zone's server refuses use-application-dns.net (not its zone), and
    // pixelguard fails over to this one, which answers it.
    let canary_auth = AuthServer::start("use-application-dns.net.", CANARY_ZONE);
    let pg = pg::start(&config_for(&[auth.addr(), canary_auth.addr()]), LISTS).await;
    let m = query(pg.addr, "www.example.test.", RecordType::A, &from(7))
        .await
        .unwrap();
    assert_eq!(
        answer_ips(&m),
        vec![ip("192.0.2.1")],
        "log mode answers normally"
    );
    assert!(ede(&m).is_empty());
    assert!(auth.saw_name("www.example.test"));
    assert_eq!(
        pg.app
            .pipeline
            .recorder
            .count(pixelguard::outcome::Outcome::WouldBlock),
        1
    );
    let m = query(pg.addr, "www.example.test.", RecordType::A, &from(11))
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    // A zone with canaries on answers the canary itself: nothing reaches an upstream.
    let m = query(pg.addr, "use-application-dns.net.", RecordType::A, &from(7))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ede(&m).first().map(|e| e.0), Some(17), "{:?}", ede(&m));
    assert!(!auth.saw_name("use-application-dns.net"));
    assert!(!canary_auth.saw_name("use-application-dns.net"));
    // canaries = false in the off zone: forwarded, and the upstream's answer comes back.
    let m = query(
        pg.addr,
        "use-application-dns.net.",
        RecordType::A,
        &from(11),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.99")]);
    assert_eq!(m.answers[0].ttl, 120);
    assert!(ede(&m).is_empty(), "{:?}", ede(&m));
    assert!(
        canary_auth.saw_name("use-application-dns.net"),
        "the upstream was asked for the canary"
    );
}

#[tokio::test]
async fn allow_beats_block() {
    let (_auth, pg) = setup().await;
    let m = query(pg.addr, "www.example.test.", RecordType::A, &from(8))
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    let m = query(pg.addr, "mx.example.test.", RecordType::MX, &from(8))
        .await
        .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "still blocked: not on the allow list"
    );
}

#[tokio::test]
async fn strict_catalogue_adds_caution_hosts() {
    let (auth, pg) = setup().await;
    // googletagmanager.com is a `caution` host: blocked only where catalogue = "strict".
    let m = query(
        pg.addr,
        "www.googletagmanager.com.",
        RecordType::A,
        &from(9),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(ede(&m)[0].1.contains("google/tag_manager"), "{:?}", ede(&m));
    let _ = query(
        pg.addr,
        "www.googletagmanager.com.",
        RecordType::A,
        &from(2),
    )
    .await
    .unwrap();
    assert!(
        auth.saw_name("www.googletagmanager.com"),
        "non-strict zone forwards it"
    );
}

#[tokio::test]
async fn rpz_triggers() {
    let (auth, pg) = setup().await;
    let m = query(pg.addr, "mail.example.test.", RecordType::A, &from(10))
        .await
        .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "CNAME . = NXDOMAIN"
    );
    let m = query(pg.addr, "www.example.test.", RecordType::A, &from(10))
        .await
        .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "CNAME *. = NODATA"
    );
    assert!(m.answers.is_empty());
    let m = query(pg.addr, "signed.example.test.", RecordType::A, &from(10))
        .await
        .unwrap();
    assert_eq!(
        answer_ips(&m),
        vec![ip("192.0.2.77")],
        "rpz-passthru allows"
    );
    // The wildcard covers only subdomains: the apex itself is forwarded.
    let _ = query(pg.addr, "example.test.", RecordType::SOA, &from(10))
        .await
        .unwrap();
    assert!(auth.saw_name("example.test"));
    assert!(!auth.saw_name("mail.example.test"));
}

#[tokio::test]
async fn cname_cloaking_is_uncovered_on_fresh_and_cached_answers() {
    let (auth, pg) = setup().await;
    for round in 0..2 {
        let m = query(pg.addr, "metrics.example.test.", RecordType::A, &from(2))
            .await
            .unwrap();
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NXDomain,
            "round {round}"
        );
        let e = ede(&m);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].1
                .contains("(adobe_experience_cloud/cname_cloak) via x.sc.omtrdc.net"),
            "{e:?}"
        );
    }
    assert_eq!(
        auth.seen()
            .iter()
            .filter(|q| q.name_is("metrics.example.test"))
            .count(),
        1,
        "second answer came from the cache"
    );
    // Log mode: resolved normally, counted as would-block.
    let m = query(pg.addr, "metrics.example.test.", RecordType::A, &from(7))
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.answers.is_empty());
}

#[tokio::test]
async fn canaries_are_answered_locally() {
    let (auth, pg) = setup().await;
    for (name, rcode) in [
        ("use-application-dns.net.", ResponseCode::NXDomain),
        ("mask.icloud.com.", ResponseCode::NXDomain),
        ("mask-h2.icloud.com.", ResponseCode::NXDomain),
        ("_dns.resolver.arpa.", ResponseCode::NoError),
    ] {
        for qtype in [RecordType::A, RecordType::HTTPS, RecordType::SVCB] {
            let m = query(pg.addr, name, qtype, &from(2)).await.unwrap();
            assert_eq!(m.metadata.response_code, rcode, "{name} {qtype}");
            assert!(m.answers.is_empty());
            assert!(soa_in_authority(&m).is_some());
        }
    }
    assert!(
        auth.seen()
            .iter()
            .all(|q| !q.name.contains("icloud") && !q.name.contains("use-application"))
    );
}

#[test]
fn explain_on_the_reference_config() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixelguard"))
        .args([
            "explain",
            "--config",
            "config/pixelguard.toml",
            "--client",
            "10.20.3.7",
            "connect.facebook.net",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("zone      kiosk (network 10.20.0.0/16"),
        "{text}"
    );
    assert!(
        text.contains("match     block list trackers: rule connect.facebook.net (exact"),
        "{text}"
    );
    assert!(text.contains("blocklists/trackers.toml:"), "{text}");
    assert!(text.contains("vendor meta/advertising (block)"), "{text}");
    assert!(text.contains("answer    NXDOMAIN"), "{text}");
    assert!(
        text.contains("EDE 15 \"pixelguard: trackers (meta/advertising)\""),
        "{text}"
    );
    // The recruitment zone is inside staff and in log mode.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixelguard"))
        .args([
            "explain",
            "-c",
            "config/pixelguard.toml",
            "--client",
            "10.10.50.9",
            "www.google-analytics.com",
            "AAAA",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("zone      recruitment (network 10.10.50.0/24"),
        "{text}"
    );
    assert!(
        text.contains("log mode: resolved normally; recorded as would-block"),
        "{text}"
    );
    // A client in no zone.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixelguard"))
        .args([
            "explain",
            "-c",
            "config/pixelguard.toml",
            "--client",
            "192.0.2.1",
            "example.org",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("REFUSED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_resolve_follows_cnames_through_the_upstream() {
    let auth = AuthServer::start_test_zone();
    let dir = pg::folder(
        &format!(
            "{}[lists.trackers]\nsource = \"builtin:trackers\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"trackers\"]\n",
            base(&[auth.addr()])
        ),
        &[],
    );
    let cfg = dir.path().join("pixelguard.toml");
    let run = move |name: &'static str| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixelguard"))
                .args(["explain", "--resolve", "--client", "127.0.0.1", name])
                .arg("--config")
                .arg(&cfg)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        })
    };
    let text = run("metrics.example.test").await.unwrap();
    assert!(text.contains("metrics.example.test. CNAME -> x.sc.omtrdc.net: blocked by list trackers rule sc.omtrdc.net"), "{text}");
    assert!(
        text.contains("decision  blocked (the zone's block response"),
        "{text}"
    );
    let text = run("connect.facebook.net").await.unwrap();
    assert!(
        text.contains("resolve   not sent: the name is blocked"),
        "{text}"
    );
    assert!(!auth.seen().iter().any(|q| q.name.contains("facebook")));
}
