//! Recursive mode against a fake DNS hierarchy on loopback: a root (127.0.0.10), a `test.` TLD
//! (127.0.0.11) and the leaf zones `example.test.` (127.0.0.12) and `other.test.` (127.0.0.13),
//! each an in-process authoritative server recording every question. The servers listen on
//! random ports; `[upstream] recursion_ports` tells pixelguard's recursor which (port 53 is
//! implied for name servers otherwise). The test servers give referrals without glue, so the
//! name servers have out-of-bailiwick names (`*.servers.`) that the root answers itself.
//! The hierarchy is unsigned, so these configs set `dnssec = "off"` (with the built-in IANA
//! anchor an unsigned root is bogus); validation is tested in tests/dnssec_nsd.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use support::{
    AuthServer, QueryOpts, TEST_ZONE, answer_ips, loopback, pg, query, soa_in_authority,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const ROOT_ZONE: &str = r#"$ORIGIN .
$TTL 300
@              3600 IN SOA root.servers. hostmaster.root.servers. 1 7200 900 1209600 300
@              IN NS root.servers.
root.servers.  IN A 127.0.0.10
tld.servers.   IN A 127.0.0.11
leaf.servers.  IN A 127.0.0.12
other.servers. IN A 127.0.0.13
test.          IN NS tld.servers.
"#;

const TLD_ZONE: &str = r#"$ORIGIN test.
$TTL 300
@        3600 IN SOA tld.servers. hostmaster.test. 1 7200 900 1209600 300
@        IN NS tld.servers.
example  IN NS leaf.servers.
other    IN NS other.servers.
tracker  IN NS other.servers.
"#;

const OTHER_ZONE: &str = r#"$ORIGIN other.test.
$TTL 300
@        3600 IN SOA other.servers. hostmaster.other.test. 1 7200 900 1209600 300
@        IN NS other.servers.
host     IN A 192.0.2.80
host     IN AAAA 2001:db8::80
"#;

/// The fake hierarchy.
struct Hierarchy {
    root: AuthServer,
    tld: AuthServer,
    leaf: AuthServer,
    other: AuthServer,
    tracker: AuthServer,
}

impl Hierarchy {
    fn start() -> Hierarchy {
        let leaf_zone = format!("{TEST_ZONE}cross 300 IN CNAME host.other.test.\n");
        let tracker_zone = "$ORIGIN tracker.test.\n$TTL 300\n@ 3600 IN SOA other.servers. h.tracker.test. 1 7200 900 1209600 300\n@ IN NS other.servers.\nx IN A 192.0.2.66\n";
        Hierarchy {
            root: AuthServer::start_on(loopback(10), ".", ROOT_ZONE),
            tld: AuthServer::start_on(loopback(11), "test.", TLD_ZONE),
            leaf: AuthServer::start_on(loopback(12), "example.test.", &leaf_zone),
            other: AuthServer::start_on(loopback(13), "other.test.", OTHER_ZONE),
            // `tracker.test.` would be served on 127.0.0.14 but the TLD points at
            // other.servers: whatever happens, nothing under tracker.test may be asked anywhere.
            tracker: AuthServer::start_on(loopback(14), "tracker.test.", tracker_zone),
        }
    }

    fn all(&self) -> [&AuthServer; 5] {
        [
            &self.root,
            &self.tld,
            &self.leaf,
            &self.other,
            &self.tracker,
        ]
    }

    fn total(&self) -> usize {
        self.all().iter().map(|s| s.count()).sum()
    }

    /// The `[upstream]` section for recursion over this hierarchy.
    fn upstream(&self, extra: &str) -> String {
        let ports: Vec<String> = self
            .all()
            .iter()
            .map(|s| format!("\"{}\"", s.addr()))
            .collect();
        format!(
            "[upstream]\nmode = \"recursive\"\nroot_hints = \"root.hints\"\ndnssec = \"off\"\nrecursion_ports = [{}]\ntimeout = \"1s\"\ndeadline = \"4s\"\n{extra}\n",
            ports.join(", ")
        )
    }
}

const HINTS: &str = ".  3600000 IN NS root.servers.\nroot.servers. 3600000 IN A 127.0.0.10\n";

const LISTS: &str = "[lists.blocked]\nsource = \"blocked.txt\"\nformat = \"domains\"\n\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"blocked\"]\n";

async fn start(h: &Hierarchy, upstream_extra: &str) -> pg::Pg {
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n{}\n{LISTS}",
        h.upstream(upstream_extra)
    );
    pg::start(
        &cfg,
        &[
            ("root.hints", HINTS),
            ("blocked.txt", "tracker.test\nads.example.test\n"),
        ],
    )
    .await
}

#[tokio::test]
async fn resolves_from_the_root() {
    let h = Hierarchy::start();
    let p = start(&h, "").await;
    let snap = p.app.pipeline.snapshot.load();
    let lines = pixelguard::app::summary(&snap, &p.app.addrs);
    assert!(
        lines.iter().any(
            |l| l.starts_with("upstream  recursive from 1 root server addresses (")
                && l.contains("root.hints), qname minimisation strict")
        ),
        "{lines:?}"
    );
    drop(snap);
    let o = QueryOpts::default();

    // A, with the client's question; RA set, AA not.
    let m = query(p.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(m.metadata.recursion_available && !m.metadata.authoritative);
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    // QNAME minimisation: the root saw only the TLD (and name-server addresses), the TLD only
    // example.test, never the full name.
    assert!(h.root.saw_name("test."));
    assert!(
        h.root
            .seen()
            .iter()
            .chain(h.tld.seen().iter())
            .all(|q| !q.name.to_ascii_lowercase().contains("www.")),
        "root {:?} tld {:?}",
        h.root.seen(),
        h.tld.seen()
    );
    assert!(h.leaf.saw_name("www.example.test."));

    // AAAA.
    let m = query(p.addr, "www.example.test.", RecordType::AAAA, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("2001:db8::1")]);

    // A CNAME chain inside the zone, and one that crosses into another zone.
    let m = query(p.addr, "chain1.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        vec![RecordType::CNAME, RecordType::CNAME, RecordType::A],
        "{m:?}"
    );
    let m = query(p.addr, "cross.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(matches!(&m.answers[0].data, RData::CNAME(c) if c.0.to_ascii() == "host.other.test."));
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.80")], "{m:?}");
    assert!(h.other.saw_name("host.other.test."));

    // NXDOMAIN and NODATA with the zone's SOA.
    let m = query(p.addr, "nope.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
    let (soa_owner, minimum, _) = soa_in_authority(&m).expect("SOA with NXDOMAIN");
    assert_eq!((soa_owner.as_str(), minimum), ("example.test.", 300));
    let m = query(p.addr, "nosuch.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
    assert_eq!(soa_in_authority(&m).map(|s| s.0), Some("test.".to_owned()));
    let m = query(p.addr, "mail.example.test.", RecordType::AAAA, &o)
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(m.answers.is_empty());
    assert_eq!(
        soa_in_authority(&m).map(|s| s.0),
        Some("example.test.".to_owned())
    );

    // A 2.1 kB answer: truncated over UDP by the leaf, fetched over TCP by the recursor.
    let m = query(
        p.addr,
        "big.example.test.",
        RecordType::TXT,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert_eq!(m.answers.len(), 10, "{m:?}");
    assert!(
        h.leaf
            .seen()
            .iter()
            .any(|q| q.name_is("big.example.test") && q.proto == support::Proto::Tcp)
    );

    // Behind pixelguard's cache: asking again reaches no server.
    let before = h.total();
    let m = query(p.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    assert_eq!(h.total(), before, "answered from the cache");
    // The recursor reports to the upstream metrics as upstream="recursive".
    let ok = p
        .app
        .pipeline
        .recorder
        .metrics()
        .upstream_queries
        .with_label_values(&["default", pixelguard::metrics::UPSTREAM_RECURSIVE, "ok"])
        .get();
    assert!(ok >= 8, "recursions counted: {ok}");
}

#[tokio::test]
async fn blocked_names_never_reach_any_server() {
    let h = Hierarchy::start();
    let p = start(&h, "").await;
    let o = QueryOpts::default();
    // The hierarchy works (and the recursor has the TLD's servers cached).
    let m = query(p.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    let before = h.total();
    assert!(before > 0);
    for (name, t) in [
        ("tracker.test.", RecordType::A),
        ("x.tracker.test.", RecordType::A),
        ("deep.x.tracker.test.", RecordType::AAAA),
        ("ads.example.test.", RecordType::A),
        ("pixel.ads.example.test.", RecordType::A),
        ("PIXEL.Ads.Example.Test.", RecordType::HTTPS),
    ] {
        let m = query(p.addr, name, t, &o).await.unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(m.answers.is_empty());
    }
    // Give any stray query time to arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for s in h.all() {
        for q in s.seen() {
            let n = q.name.to_ascii_lowercase();
            assert!(
                !n.ends_with("tracker.test.") && !n.ends_with("ads.example.test."),
                "{} asked {:?} at {}",
                q.name,
                q.qtype,
                s.addr()
            );
        }
    }
    assert_eq!(h.total(), before, "no query at all for blocked names");
    assert_eq!(h.tracker.count(), 0);
}

#[tokio::test]
async fn relaxed_qname_minimization_and_unreachable_root() {
    // qname_minimization = false still resolves.
    let h = Hierarchy::start();
    let p = start(&h, "qname_minimization = false\n").await;
    let snap = p.app.pipeline.snapshot.load();
    let lines = pixelguard::app::summary(&snap, &p.app.addrs);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("qname minimisation relaxed")),
        "{lines:?}"
    );
    drop(snap);
    let m = query(
        p.addr,
        "host.other.test.",
        RecordType::AAAA,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("2001:db8::80")]);

    // A root that does not answer: SERVFAIL within the deadline, not a hang.
    let dead = support::ScriptedUpstream::start_on(loopback(15), support::scripted::silence());
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstream]\nmode = \"recursive\"\nroot_hints = \"root.hints\"\ndnssec = \"off\"\nrecursion_ports = [\"{}\"]\ntimeout = \"300ms\"\ndeadline = \"1s\"\n\n{LISTS}",
        dead.addr()
    );
    let p = pg::start(
        &cfg,
        &[
            (
                "root.hints",
                ".  3600000 IN NS root.servers.\nroot.servers. 3600000 IN A 127.0.0.15\n",
            ),
            ("blocked.txt", "tracker.test\n"),
        ],
    )
    .await;
    let t = std::time::Instant::now();
    let m = query(
        p.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts::default(),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn config_keys_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.hints"), HINTS).unwrap();
    std::fs::write(dir.path().join("junk.hints"), "this is not a zone\n").unwrap();
    let load = |upstream: &str| {
        pixelguard::config::Config::from_str(
            &format!("[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\n{upstream}"),
            "t.toml",
            dir.path(),
            &pixelguard::config::Overrides::default(),
        )
    };
    let c = load("mode = \"recursive\"\n").unwrap();
    assert_eq!(c.upstream.mode, pixelguard::config::UpstreamMode::Recursive);
    assert_eq!(c.upstream.roots.len(), 26, "built-in IANA hints, v4 and v6");
    assert!(c.upstream.qname_minimization);
    assert!(c.upstream.servers.is_empty());
    assert!(c.upstream.dnssec, "DNSSEC validation is on by default");
    assert!(!load("dnssec = \"off\"\n").unwrap().upstream.dnssec);
    let e = load("dnssec = \"maybe\"\n").unwrap_err().to_string();
    assert!(
        e.contains("t.toml:4:10: upstream.dnssec: unknown value"),
        "{e}"
    );
    let e = load("trust_anchor = \"junk.hints\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:4:16: upstream.trust_anchor:"), "{e}");
    let c = load("mode = \"recursive\"\nroot_hints = \"root.hints\"\n").unwrap();
    assert_eq!(c.upstream.roots, vec![ip("127.0.0.10")]);
    let e = load("mode = \"recursive\"\nroot_hints = \"junk.hints\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:5:14: upstream.root_hints:"), "{e}");
    let e = load("mode = \"recursive\"\nservers = [\"9.9.9.9\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.toml:5:12: upstream.servers: not used when mode = \"recursive\""),
        "{e}"
    );
    let e = load("mode = \"iterative\"\n").unwrap_err().to_string();
    assert!(e.contains("t.toml:4:8: upstream.mode: unknown mode"), "{e}");
    let e = load("recursion_ports = [\"127.0.0.1\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("upstream.recursion_ports: invalid entry"), "{e}");
}
