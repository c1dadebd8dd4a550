//! Debian's NSD as a real authoritative server on loopback, for the tests that need one
//! (forward rules to a "domain controller", DNSSEC validation against a signed hierarchy): the
//! config, the start on a free port, the wait until it answers, and the kill of its whole
//! process group (NSD forks server and xfrd processes; killing only the main one leaves them
//! answering for a while).

use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use super::{QueryOpts, answer_ips, query};

/// A running NSD; it and every process it forked are killed when dropped.
pub struct Nsd {
    child: Child,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
}

impl Nsd {
    /// Starts NSD on `ip` and a free port, serving `zones` (name, file in `dir`), and waits until
    /// it answers `probe` (an A name of one of them) with an address.
    pub async fn start(dir: &Path, ip: IpAddr, zones: &[(&str, &str)], probe: &str) -> Nsd {
        // A port free for UDP and TCP now; NSD binds it a moment later (loopback only).
        let port = {
            let (udp, _tcp) = super::bind_udp_tcp(ip);
            udp.local_addr().unwrap().port()
        };
        std::fs::write(dir.join("nsd.conf"), conf(dir, ip, port, zones)).unwrap();
        let child = Command::new("nsd")
            .process_group(0)
            .arg("-d")
            .arg("-c")
            .arg(dir.join("nsd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsd is installed (Debian: apt-get install nsd)");
        let nsd = Nsd {
            child,
            addr: SocketAddr::new(ip, port),
        };
        let (addr, probe) = (nsd.addr, probe.to_owned());
        super::poll_until(Duration::from_secs(15), "nsd answers", || {
            let probe = probe.clone();
            async move {
                query(addr, &probe, RecordType::A, &short())
                    .await
                    .is_ok_and(|m| !answer_ips(&m).is_empty())
            }
        })
        .await;
        nsd
    }

    /// Kills NSD and every process it forked (the whole group).
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills NSD, then waits until nothing answers `probe` on its port any more.
    pub async fn stop(&mut self, probe: &str) {
        self.kill();
        let (addr, probe) = (self.addr, probe.to_owned());
        super::poll_until(Duration::from_secs(15), "nsd silent", || {
            let probe = probe.clone();
            async move { query(addr, &probe, RecordType::A, &short()).await.is_err() }
        })
        .await;
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn short() -> QueryOpts {
    QueryOpts {
        timeout: Duration::from_millis(200),
        ..Default::default()
    }
}

/// nsd.conf: one server process on `ip@port`, everything it writes kept in `dir`.
fn conf(dir: &Path, ip: IpAddr, port: u16, zones: &[(&str, &str)]) -> String {
    let d = dir.display();
    let mut text = format!(
        "server:\n  ip-address: {ip}@{port}\n  port: {port}\n  server-count: 1\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n  zonelistfile: \"{d}/nsd-zone.list\"\n  xfrdfile: \"{d}/nsd-xfrd.state\"\n  xfrdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 1\n  hide-version: yes\nremote-control:\n  control-enable: no\n"
    );
    for (name, file) in zones {
        text.push_str(&format!("zone:\n  name: \"{name}\"\n  zonefile: {file}\n"));
    }
    text
}
