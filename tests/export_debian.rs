//! dnstap and syslog export into Debian's own receivers (issue 21): `fstrm_capture`
//! (fstrm-bin) receives the dnstap stream on a Unix socket and `dnstap-ldns` decodes the
//! capture; `rsyslogd` (rsyslog, with rsyslog-gnutls) receives syslog over UDP and over TLS
//! with a test CA and writes it to a file. Ignored in plain `cargo test` (the tools are Debian
//! packages): run by scripts/export-check.sh, which fails when a tool is missing. Set
//! `PIXELGUARD_EXPORT_KEEP=DIR` to keep the capture, the decoder's output and the rsyslog file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/export.rs"]
mod common;
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::ask;
use hickory_proto::op::ResponseCode;
use pixelguard::export::dnstap::{Dnstap, MessageKind};
use pixelguard::export::framestream::{
    CONTROL_START, CONTROL_STOP, DNSTAP_CONTENT_TYPE, Frame, MAX_DATA_LEN, read_frame,
};
use prost::Message as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use support::{AuthServer, loopback, pg, poll_until};

const KEY: &str = "export-debian-key-0001";

/// A child process killed (SIGTERM, by its id) when dropped.
struct Proc(Child);

impl Proc {
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

fn config(upstream: SocketAddr, sections: &str) -> String {
    format!(
        "{}[query_log]\npath = \"queries.jsonl\"\nkey = \"{KEY}\"\n\n{sections}\n\
         [lists.b]\nsource = \"b.txt\"\n\
         [zones.office]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"b\"]\n\
         [zones.lab]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"b\"]\nmode = \"log\"\nquery_log = \"all\"\n",
        pg::base(&[upstream])
    )
}

const LISTS: &[(&str, &str)] = &[("b.txt", "ads.example.test\n")];

fn keep(dir: &Path, names: &[&str]) {
    if let Ok(to) = std::env::var("PIXELGUARD_EXPORT_KEEP") {
        std::fs::create_dir_all(&to).unwrap();
        for n in names {
            let _ = std::fs::copy(dir.join(n), Path::new(&to).join(n));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs fstrm_capture and dnstap-ldns: run by scripts/export-check.sh"]
async fn dnstap_into_fstrm_capture_decoded_by_dnstap_ldns() {
    let auth = AuthServer::start_test_zone();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dnstap.sock");
    let capture = dir.path().join("capture.fstrm");
    let mut fstrm = Proc(
        Command::new("fstrm_capture")
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(&sock)
            .arg("-w")
            .arg(&capture)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fstrm_capture (Debian fstrm-bin)"),
    );
    poll_until(
        Duration::from_secs(10),
        "fstrm_capture's socket",
        || async { sock.exists() },
    )
    .await;
    let sections = format!(
        "[dnstap]\nsocket = \"{}\"\nidentity = \"dns-test\"\nforwarder = true\n",
        sock.display()
    );
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    // office: blocked (CQ, CR). lab (all): would-block and a clean name, both fetched upstream
    // (CQ, FQ, FR, CR each).
    assert_eq!(
        ask(&pg, 2, "ads.example.test.").await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 2, "www.example.test.").await,
        ResponseCode::NoError
    );
    assert_eq!(
        ask(&pg, 4, "ads.example.test.").await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(&pg, 4, "mail.example.test.").await,
        ResponseCode::NoError
    );
    // Shutdown ends the stream with STOP / FINISH; fstrm_capture then closes the file.
    let counted = "pixelguard_export_sent_total{sink=\"dnstap\"}";
    let admin = pg.app.admin_addr.unwrap();
    poll_until(Duration::from_secs(10), "3 events sent", || async {
        let t = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        t.lines().any(|l| l == format!("{counted} 3"))
    })
    .await;
    pg.app.shutdown().await;
    fstrm.terminate();

    // The capture as Debian's decoder reads it.
    let out = Command::new("dnstap-ldns")
        .arg("-q")
        .arg("-r")
        .arg(&capture)
        .output()
        .expect("dnstap-ldns (Debian dnstap-ldns)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let yaml = Command::new("dnstap-ldns")
        .arg("-y")
        .arg("-r")
        .arg(&capture)
        .output()
        .unwrap();
    let yaml = String::from_utf8(yaml.stdout).unwrap();
    std::fs::write(dir.path().join("dnstap-ldns.txt"), &text).unwrap();
    std::fs::write(dir.path().join("dnstap-ldns.yaml"), &yaml).unwrap();
    keep(
        dir.path(),
        &["capture.fstrm", "dnstap-ldns.txt", "dnstap-ldns.yaml"],
    );
    let lines: Vec<&str> = text.lines().collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        ["CQ", "CR", "CQ", "FQ", "FR", "CR", "CQ", "FQ", "FR", "CR"],
        "{text}"
    );
    for (i, name) in [
        (0, "ads.example.test."),
        (2, "ads.example.test."),
        (6, "mail.example.test."),
    ] {
        assert!(lines[i].contains(name), "{}", lines[i]);
    }
    assert!(yaml.contains("rcode: NXDOMAIN"), "{yaml}");
    assert!(yaml.contains("identity: \"dns-test\""), "{yaml}");
    assert_eq!(
        yaml.matches("rcode: NXDOMAIN").count(),
        3,
        "CR office, FR and CR lab: {yaml}"
    );

    // The same file with the project's own types: the `extra` policy fields (which the
    // decoder does not print), and no client address anywhere (client = "hash").
    let bytes = std::fs::read(&capture).unwrap();
    for ip in [[127, 0, 0, 2], [127, 0, 0, 4]] {
        assert!(
            !bytes.windows(4).any(|w| w == ip),
            "client address {ip:?} in the capture"
        );
    }
    assert!(
        !text.contains("127.0.0.2") && !yaml.contains("127.0.0.2") && !yaml.contains("127.0.0.4")
    );
    let mut r = &bytes[..];
    assert_eq!(
        read_frame(&mut r, MAX_DATA_LEN).unwrap(),
        Frame::Control(CONTROL_START, vec![DNSTAP_CONTENT_TYPE.to_vec()])
    );
    let mut msgs = Vec::new();
    loop {
        match read_frame(&mut r, MAX_DATA_LEN).unwrap() {
            Frame::Data(d) => msgs.push(Dnstap::decode(&d[..]).unwrap()),
            Frame::Control(k, _) => {
                assert_eq!(k, CONTROL_STOP);
                break;
            }
        }
    }
    assert_eq!(msgs.len(), 10);
    let x: serde_json::Value = serde_json::from_slice(msgs[1].extra.as_ref().unwrap()).unwrap();
    assert_eq!(
        msgs[1].message.as_ref().unwrap().r#type,
        MessageKind::ClientResponse as i32
    );
    assert_eq!(x["zone"], "office");
    assert_eq!(x["outcome"], "blocked");
    assert_eq!(x["list"], "b");
    assert_eq!(x["rule"], "ads.example.test");
    let key = pixelguard::querylog::Pseudonymizer::from_secret(KEY);
    assert_eq!(x["client"], key.pseudonym(loopback(2)));
    let x: serde_json::Value = serde_json::from_slice(msgs[5].extra.as_ref().unwrap()).unwrap();
    assert_eq!(
        (x["zone"].as_str(), x["outcome"].as_str()),
        (Some("lab"), Some("would_block"))
    );
}

/// A test CA and a certificate it issued for `siem.test`, as PEM files in `dir`.
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "pixelguard test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["siem.test".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "siem.test");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// rsyslogd listening on UDP and TLS (imtcp with the gtls driver) on loopback, writing every
/// message in RFC 5424 form (RSYSLOG_SyslogProtocol23Format) to `out.log`.
fn rsyslog(dir: &Path, udp: u16, tls: u16) -> Proc {
    let (ca, cert, key) = pki(dir);
    let conf = format!(
        r#"global(workDirectory="{d}" defaultNetstreamDriverCAFile="{ca}" defaultNetstreamDriverCertFile="{cert}" defaultNetstreamDriverKeyFile="{key}" maxMessageSize="8k")
module(load="imudp")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tls}")
*.* action(type="omfile" file="{d}/out.log" template="RSYSLOG_SyslogProtocol23Format")
"#,
        d = dir.display(),
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
    let out = Command::new("rsyslogd")
        .arg("-N1")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .output()
        .expect("rsyslogd (Debian rsyslog)");
    assert!(
        out.status.success(),
        "rsyslog.conf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Proc(
        Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn out_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("out.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rsyslogd with gtls: run by scripts/export-check.sh"]
async fn syslog_into_rsyslog_over_tls_and_udp() {
    let auth = AuthServer::start_test_zone();
    let dir = tempfile::tempdir().unwrap();
    let (udp, tls) = (free_port(), free_port());
    let mut rsyslog = rsyslog(dir.path(), udp, tls);
    // rsyslogd is ready when it takes a TCP connection on the TLS port.
    poll_until(Duration::from_secs(20), "rsyslogd listening", || async {
        std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok()
    })
    .await;

    // TLS, certificate checked against the test CA for the name siem.test.
    let sections = format!(
        "[syslog]\nserver = \"tls://127.0.0.1:{tls}#siem.test\"\nca_file = \"{}\"\nhostname = \"dns-tls\"\n",
        dir.path().join("ca.pem").display()
    );
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    assert_eq!(
        ask(&pg, 2, "ads.example.test.").await,
        ResponseCode::NXDomain
    );
    ask(&pg, 2, "www.example.test.").await; // no event
    ask(&pg, 4, "ads.example.test.").await; // would-block
    ask(&pg, 2, "use-application-dns.net.").await; // bypass
    poll_until(Duration::from_secs(20), "3 messages over TLS", || async {
        out_lines(dir.path())
            .iter()
            .filter(|l| l.contains("dns-tls"))
            .count()
            >= 3
    })
    .await;
    pg.app.shutdown().await;

    // UDP.
    let sections =
        format!("[syslog]\nserver = \"udp://127.0.0.1:{udp}\"\nhostname = \"dns-udp\"\n");
    let pg = pg::start(&config(auth.addr(), &sections), LISTS).await;
    ask(&pg, 2, "ads.example.test.").await;
    poll_until(Duration::from_secs(20), "1 message over UDP", || async {
        out_lines(dir.path()).iter().any(|l| l.contains("dns-udp"))
    })
    .await;
    pg.app.shutdown().await;
    // pixelguard has sent everything; rsyslogd writes all it received before it exits on SIGTERM,
    // so the file is then complete and a duplicate would be in it.
    rsyslog.terminate();
    keep(dir.path(), &["out.log"]);

    let lines = out_lines(dir.path());
    let tls_lines: Vec<&String> = lines.iter().filter(|l| l.contains(" dns-tls ")).collect();
    let ids: Vec<&str> = tls_lines
        .iter()
        .map(|l| l.split(' ').nth(5).unwrap())
        .collect();
    assert_eq!(ids, ["blocked", "would_block", "bypass"], "{lines:#?}");
    let key = pixelguard::querylog::Pseudonymizer::from_secret(KEY);
    let b = tls_lines[0];
    // RFC 5424 as rsyslog re-writes it: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG.
    assert!(b.starts_with("<173>1 "), "{b}");
    assert!(b.contains(" dns-tls pixelguard "), "{b}");
    for p in [
        "zone=\"office\"".to_owned(),
        "outcome=\"blocked\"".to_owned(),
        "list=\"b\"".to_owned(),
        "rule=\"ads.example.test\"".to_owned(),
        format!("client=\"{}\"", key.pseudonym(loopback(2))),
    ] {
        assert!(b.contains(&p), "{p} in {b}");
    }
    assert!(b.contains("[pixelguard@32473 "), "{b}");
    assert!(
        !lines.iter().any(|l| l.contains("127.0.0.2")),
        "client address in {lines:#?}"
    );
    let u: Vec<&String> = lines.iter().filter(|l| l.contains(" dns-udp ")).collect();
    assert_eq!(u.len(), 1, "{lines:#?}");
    assert!(
        u[0].contains(" blocked [pixelguard@32473 zone=\"office\""),
        "{}",
        u[0]
    );
}
