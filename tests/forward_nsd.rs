//! Forward rules against a real NSD (Debian's `nsd`) standing in for an organisation's domain
//! controllers: NSD is authoritative for `corp.example.test` and `10.in-addr.arpa` on a loopback
//! port (zone files and nsd.conf in a temp dir, run in the foreground with its own pid, db and
//! xfrd paths, killed at the end); an in-process recording authoritative server is the public
//! upstream. Internal names and private PTRs are answered by NSD and never reach the public
//! upstream; public names never reach NSD; a blocked name reaches neither; with NSD killed the
//! internal names get SERVFAIL, never the public upstream's answer.
//!
//! Needs `nsd`: run by `scripts/org-network-check.sh` (which fails when nsd is missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use support::nsd::Nsd;
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, answer_ips, ede, query};

const CORP_ZONE: &str = "$ORIGIN corp.example.test.
$TTL 300
@     3600 IN SOA dc1.corp.example.test. hostmaster.corp.example.test. 1 7200 900 1209600 300
@     3600 IN NS dc1
dc1        IN A 10.1.0.10
files      IN A 10.1.0.20
_ldap._tcp.dc._msdcs 600 IN SRV 0 100 389 dc1.corp.example.test.
";

const REVERSE_ZONE: &str = "$ORIGIN 10.in-addr.arpa.
$TTL 300
@     3600 IN SOA dc1.corp.example.test. hostmaster.corp.example.test. 1 7200 900 1209600 300
@     3600 IN NS dc1.corp.example.test.
10.0.1     IN PTR dc1.corp.example.test.
20.0.1     IN PTR files.corp.example.test.
";

/// A name NSD answers with an address once it serves the zones.
const PROBE: &str = "dc1.corp.example.test.";

/// Starts NSD serving corp.example.test and 10.in-addr.arpa from a folder of its own (removed
/// when the returned dir is dropped).
async fn start_corp() -> (Nsd, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("corp.example.test.zone"), CORP_ZONE).unwrap();
    std::fs::write(d.join("10.in-addr.arpa.zone"), REVERSE_ZONE).unwrap();
    let zones = [
        ("corp.example.test", "corp.example.test.zone"),
        ("10.in-addr.arpa", "10.in-addr.arpa.zone"),
    ];
    let nsd = Nsd::start(d, support::loopback(1), &zones, PROBE).await;
    (nsd, dir)
}

fn config(nsd: SocketAddr, public: SocketAddr) -> String {
    format!(
        "{}[forward.corp]\ndomains = [\"corp.example.test\", \"10.in-addr.arpa\"]\nservers = [\"{nsd}\"]\ntimeout = \"300ms\"\ndeadline = \"1s\"\n\n[lists.bl]\nsource = \"bl.txt\"\nformat = \"domains\"\n\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"bl\"]\n",
        base(&[public])
    )
}

const BLOCKED: &str = "ads.corp.example.test\ntracker.example.test\n";

/// In or under corp.example.test, or a reverse name.
fn internal(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "corp.example.test." || n.ends_with(".corp.example.test.") || n.ends_with("in-addr.arpa.")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Tries pixelguard made at NSD (the `corp` group), whatever their result.
fn nsd_tries(pg: &pg::Pg, nsd: SocketAddr) -> u64 {
    pixelguard::metrics::UPSTREAM_RESULTS
        .iter()
        .map(|r| {
            pg.app
                .pipeline
                .recorder
                .metrics()
                .upstream_queries
                .with_label_values(&["corp", &nsd.to_string(), r])
                .get()
        })
        .sum()
}

#[tokio::test]
#[ignore = "needs nsd: run by scripts/org-network-check.sh"]
async fn nsd_answers_internal_names_and_private_ptrs_and_nothing_leaks() {
    let (nsd, _dir) = start_corp().await;
    let public = AuthServer::start_test_zone();
    let pg = pg::start(&config(nsd.addr, public.addr()), &[("bl.txt", BLOCKED)]).await;
    let o = QueryOpts::default();

    let m = query(pg.addr, "files.corp.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.20")]);
    let m = query(
        pg.addr,
        "_ldap._tcp.dc._msdcs.corp.example.test.",
        RecordType::SRV,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert_eq!(m.answers.len(), 1, "{m:?}");
    for (ptr, target) in [
        ("10.0.1.10.in-addr.arpa.", "dc1.corp.example.test."),
        ("20.0.1.10.in-addr.arpa.", "files.corp.example.test."),
    ] {
        let m = query(pg.addr, ptr, RecordType::PTR, &o).await.unwrap();
        let got: Vec<String> = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.to_ascii()),
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![target.to_owned()], "{ptr}");
    }
    let m = query(pg.addr, "nothing.corp.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "NSD's NXDOMAIN"
    );
    let asked = nsd_tries(&pg, nsd.addr);
    assert!(asked >= 5, "NSD answered the internal names: {asked} tries");

    // Public names go to the public upstream, never to NSD; blocked names to neither.
    let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
    for name in ["ads.corp.example.test.", "tracker.example.test."] {
        let m = query(pg.addr, name, RecordType::A, &o).await.unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(!ede(&m).is_empty(), "{name} blocked");
        assert!(!public.saw_name(name), "{name} reached the public upstream");
    }
    assert_eq!(nsd_tries(&pg, nsd.addr), asked, "nothing else reached NSD");
    assert!(public.saw_name("www.example.test."));
    assert!(
        public.seen().iter().all(|q| !internal(&q.name)),
        "internal names at the public upstream: {:?}",
        public.seen()
    );
}

#[tokio::test]
#[ignore = "needs nsd: run by scripts/org-network-check.sh"]
async fn with_nsd_killed_internal_names_get_servfail_never_the_public_upstream() {
    let (mut nsd, _dir) = start_corp().await;
    let public = AuthServer::start_test_zone();
    let pg = pg::start(&config(nsd.addr, public.addr()), &[("bl.txt", BLOCKED)]).await;
    let o = QueryOpts {
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let m = query(pg.addr, "dc1.corp.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("10.1.0.10")]);
    nsd.stop(PROBE).await;
    for name in ["files.corp.example.test.", "20.0.1.10.in-addr.arpa."] {
        let t = if name.ends_with("arpa.") {
            RecordType::PTR
        } else {
            RecordType::A
        };
        let m = query(pg.addr, name, t, &o).await.unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{name}");
    }
    assert!(
        public.seen().iter().all(|q| !internal(&q.name)),
        "internal names at the public upstream: {:?}",
        public.seen()
    );
    // The public names still resolve.
    let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.1")]);
}
