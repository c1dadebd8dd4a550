//! DNSSEC validation in recursive mode against a signed hierarchy on loopback: a root, `test.`
//! and `example.test.` signed by Debian's `ldns-keygen` / `ldns-signzone` (ldnsutils), plus an
//! unsigned delegation `insecure.test.`, all served by one NSD (Debian's `nsd`) on 127.0.0.20
//! and reached by pixelguard's recursor through `recursion_ports`, with the root's key as
//! `trust_anchor`. A good name validates (AD to a DO client), a name whose signature was broken
//! after signing gets SERVFAIL with EDE 6, the unsigned delegation resolves without AD, and
//! `dnssec = "off"` passes the broken name as it does any other.
//!
//! Needs nsd and ldnsutils: run by `scripts/encrypted-check.sh` (which fails when one is missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use support::nsd::Nsd;
use support::{QueryOpts, answer_ips, ede, pg, query};

/// The one name-server address of the hierarchy.
const NS_IP: &str = "127.0.0.20";

fn root_zone() -> String {
    format!(
        "$ORIGIN .\n$TTL 300\n. IN SOA a.root-servers.test. hostmaster.test. 1 3600 600 86400 300\n\
         . IN NS a.root-servers.test.\na.root-servers.test. IN A {NS_IP}\n\
         test. IN NS ns.test.\nns.test. IN A {NS_IP}\n"
    )
}

fn test_zone() -> String {
    format!(
        "$ORIGIN test.\n$TTL 300\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n\
         @ IN NS ns\nns IN A {NS_IP}\na.root-servers IN A {NS_IP}\n\
         example IN NS ns.example\nns.example IN A {NS_IP}\n\
         insecure IN NS ns.insecure\nns.insecure IN A {NS_IP}\n"
    )
}

fn example_zone() -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n\
         @ IN NS ns\nns IN A {NS_IP}\nwww IN A 192.0.2.1\nbroken IN A 192.0.2.66\n"
    )
}

fn insecure_zone() -> String {
    format!(
        "$ORIGIN insecure.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n\
         @ IN NS ns\nns IN A {NS_IP}\nwww IN A 192.0.2.2\n"
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Makes a key for `zone` in `d` (base name returned), signs `file` with it into `file.signed`.
fn sign(d: &Path, zone: &str, file: &str) -> String {
    let base =
        run(Command::new("ldns-keygen")
            .current_dir(d)
            .args(["-a", "ECDSAP256SHA256", "-k", zone]));
    run(Command::new("ldns-signzone")
        .current_dir(d)
        .args([file, &base]));
    base
}

/// The DS record ldns-keygen wrote for a key.
fn ds(d: &Path, base: &str) -> String {
    std::fs::read_to_string(d.join(format!("{base}.ds"))).unwrap()
}

/// Builds and signs the hierarchy in `d`; returns the root's DNSKEY (the trust anchor) text.
fn build(d: &Path) -> String {
    std::fs::write(d.join("example.zone"), example_zone()).unwrap();
    let ex = sign(d, "example.test", "example.zone");
    // Break the signature of broken.example.test A after signing (flip its first base64 char).
    let signed = std::fs::read_to_string(d.join("example.zone.signed")).unwrap();
    let mut broke = false;
    let lines: Vec<String> = signed
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() == Some(&"broken.example.test.") && f.get(3) == Some(&"RRSIG") {
                let sig = *f.last().unwrap();
                let flipped = if sig.starts_with('A') { "B" } else { "A" };
                broke = true;
                return l.replacen(sig, &format!("{flipped}{}", &sig[1..]), 1);
            }
            l.to_owned()
        })
        .collect();
    assert!(broke, "found the RRSIG to break in:\n{signed}");
    std::fs::write(d.join("example.zone.signed"), lines.join("\n") + "\n").unwrap();
    std::fs::write(d.join("insecure.zone"), insecure_zone()).unwrap();
    std::fs::write(d.join("test.zone"), test_zone() + &ds(d, &ex)).unwrap();
    let t = sign(d, "test", "test.zone");
    std::fs::write(d.join("root.zone"), root_zone() + &ds(d, &t)).unwrap();
    let r = sign(d, ".", "root.zone");
    std::fs::read_to_string(d.join(format!("{r}.key"))).unwrap()
}

/// Starts NSD serving the hierarchy `build` wrote into `d`.
async fn start_nsd(d: &Path) -> Nsd {
    let zones = [
        (".", "root.zone.signed"),
        ("test", "test.zone.signed"),
        ("example.test", "example.zone.signed"),
        ("insecure.test", "insecure.zone"),
    ];
    Nsd::start(d, NS_IP.parse().unwrap(), &zones, "www.example.test.").await
}

fn config(nsd: SocketAddr, dnssec: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstream]\nmode = \"recursive\"\nroot_hints = \"root.hints\"\ntrust_anchor = \"root.key\"\nrecursion_ports = [\"{nsd}\"]\ndnssec = \"{dnssec}\"\ntimeout = \"1s\"\ndeadline = \"4s\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n"
    )
}

fn do_opts() -> QueryOpts {
    QueryOpts {
        do_bit: true,
        timeout: Duration::from_secs(6),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nsd and ldns-signzone (ldnsutils): run by scripts/encrypted-check.sh"]
async fn signed_hierarchy_validates_and_bogus_is_servfail_with_ede_6() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = build(dir.path());
    let ns = start_nsd(dir.path()).await;
    let nsd = ns.addr;
    let hints =
        format!(". 3600 IN NS a.root-servers.test.\na.root-servers.test. 3600 IN A {NS_IP}\n");
    let files = [
        ("root.hints", hints.as_str()),
        ("root.key", anchor.as_str()),
    ];
    let pg = pg::start(&config(nsd, "validate"), &files).await;

    // A signed name validates: AD to a DO client, and no AD to a client that asked for neither.
    let m = query(pg.addr, "www.example.test.", RecordType::A, &do_opts())
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(answer_ips(&m), vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
    assert!(
        m.metadata.authentic_data,
        "AD on a validated answer to a DO client: {m:?}"
    );
    let plain = QueryOpts {
        timeout: Duration::from_secs(6),
        ..Default::default()
    };
    let m = query(pg.addr, "www.example.test.", RecordType::A, &plain)
        .await
        .unwrap();
    assert_eq!(answer_ips(&m), vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
    assert!(!m.metadata.authentic_data);

    // A broken signature: SERVFAIL with EDE 6 (DNSSEC Bogus) and its reason.
    let m = query(pg.addr, "broken.example.test.", RecordType::A, &do_opts())
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m:?}");
    assert!(answer_ips(&m).is_empty());
    let e = ede(&m);
    assert!(
        e.iter()
            .any(|(code, text)| *code == 6 && text.contains("DNSSEC")),
        "{e:?}"
    );

    // An unsigned delegation resolves insecure: the answer, no AD.
    let m = query(pg.addr, "www.insecure.test.", RecordType::A, &do_opts())
        .await
        .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(answer_ips(&m), vec!["192.0.2.2".parse::<IpAddr>().unwrap()]);
    assert!(!m.metadata.authentic_data);

    // dnssec = "off": security-unaware, the broken name resolves like any other, no AD.
    let off = pg::start(&config(nsd, "off"), &files).await;
    let m = query(off.addr, "broken.example.test.", RecordType::A, &do_opts())
        .await
        .unwrap();
    assert_eq!(
        answer_ips(&m),
        vec!["192.0.2.66".parse::<IpAddr>().unwrap()]
    );
    assert!(!m.metadata.authentic_data);
}
