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
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
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

/// A running NSD; killed (and its temp dir removed) when dropped.
struct Nsd {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nsd {
    /// Starts NSD on a free loopback port and waits until it answers for corp.example.test.
    async fn start() -> Nsd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("corp.example.test.zone"), CORP_ZONE).unwrap();
        std::fs::write(d.join("10.in-addr.arpa.zone"), REVERSE_ZONE).unwrap();
        // A port free for UDP and TCP now; NSD binds it a moment later (loopback only).
        let port = {
            let (udp, _tcp) = support::bind_udp_tcp(support::loopback(1));
            udp.local_addr().unwrap().port()
        };
        let conf = nsd_conf(d, port);
        std::fs::write(d.join("nsd.conf"), conf).unwrap();
        // Its own process group: NSD forks server and xfrd processes, and killing only the main
        // one leaves them answering for a while.
        let child = Command::new("nsd")
            .process_group(0)
            .arg("-d")
            .arg("-c")
            .arg(d.join("nsd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsd is installed (Debian: apt-get install nsd)");
        let nsd = Nsd {
            child,
            addr: SocketAddr::new(support::loopback(1), port),
            _dir: dir,
        };
        let addr = nsd.addr;
        support::poll_until(Duration::from_secs(15), "nsd answers", || async move {
            let o = QueryOpts {
                timeout: Duration::from_millis(200),
                ..Default::default()
            };
            query(addr, "dc1.corp.example.test.", RecordType::A, &o)
                .await
                .is_ok_and(|m| !answer_ips(&m).is_empty())
        })
        .await;
        nsd
    }

    /// Kills NSD and every process it forked (the whole group).
    fn kill(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills NSD, then waits until nothing answers on its port any more.
    async fn stop(&mut self) {
        self.kill();
        let addr = self.addr;
        support::poll_until(Duration::from_secs(15), "nsd silent", || async move {
            let o = QueryOpts {
                timeout: Duration::from_millis(200),
                ..Default::default()
            };
            query(addr, "dc1.corp.example.test.", RecordType::A, &o)
                .await
                .is_err()
        })
        .await;
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn nsd_conf(d: &Path, port: u16) -> String {
    let d = d.display();
    format!(
        "server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  server-count: 1
  username: \"\"
  chroot: \"\"
  zonesdir: \"{d}\"
  database: \"\"
  zonelistfile: \"{d}/nsd-zone.list\"
  xfrdfile: \"{d}/nsd-xfrd.state\"
  xfrdir: \"{d}\"
  pidfile: \"{d}/nsd.pid\"
  logfile: \"{d}/nsd.log\"
  verbosity: 1
  hide-version: yes
remote-control:
  control-enable: no
zone:
  name: corp.example.test
  zonefile: corp.example.test.zone
zone:
  name: 10.in-addr.arpa
  zonefile: 10.in-addr.arpa.zone
"
    )
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
    let nsd = Nsd::start().await;
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
    let mut nsd = Nsd::start().await;
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
    nsd.stop().await;
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
