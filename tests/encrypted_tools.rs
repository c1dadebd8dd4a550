//! Encrypted listeners asked by Debian's real clients: `kdig` (knot-dnsutils) over DoT (`+tls`)
//! and DoH (`+https`, POST and GET), and `curl --http2` / `--http1.1` (GET and POST), against
//! a real pixelguard on loopback with a certificate from a test CA (kdig `+tls-ca`, curl
//! `--cacert`). A blocked name gets the zone's blocked answer with its EDE; a wrong name and an
//! expired certificate are refused by the client; `kdig` reads the DDR SVCB answer.
//!
//! Needs kdig and curl: run by `scripts/encrypted-check.sh` (which fails when one is missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use tokio::process::Command;

use base64::Engine;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use support::pki::Pki;
use support::{AuthServer, QueryOpts, answer_ips, ede, pg};

const TLS_NAME: &str = "dns.pixelguard.test";

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:0"]
tls_listen = ["127.0.0.1:0"]
https_listen = ["127.0.0.1:0"]
tls_cert = "cert.pem"
tls_key = "key.pem"
tls_name = "{TLS_NAME}"

[upstream]
servers = ["{upstream}"]
timeout = "400ms"
deadline = "1500ms"

[admin]
listen = "127.0.0.1:0"

[lists.local]
source = "blocked.txt"

[zones.nx]
networks = ["127.0.0.2/32"]
block = ["local"]
[zones.null]
networks = ["127.0.0.3/32"]
block = ["local"]
response = "null"
"#
    )
}

async fn setup(pki: &Pki) -> (AuthServer, pg::Pg) {
    let auth = AuthServer::start_test_zone();
    let [c, k] = pki.files();
    let files = [
        c,
        k,
        ("ca.pem", &pki.ca_pem),
        ("blocked.txt", "www.example.test\n"),
    ];
    let pg = pg::start(&config(auth.addr()), &files).await;
    (auth, pg)
}

/// Runs a client command (bounded by `timeout`); (success, stdout + stderr).
async fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().await.expect("the client runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// kdig from `source` to `addr` with the given transport options.
async fn kdig(
    addr: SocketAddr,
    source: u8,
    ca: &Path,
    extra: &[&str],
    name: &str,
    t: &str,
) -> (bool, String) {
    let mut c = Command::new("timeout");
    c.args([
        "20",
        "kdig",
        "-b",
        &format!("127.0.0.{source}"),
        "-p",
        &addr.port().to_string(),
    ])
    .arg(format!("@{}", addr.ip()))
    .arg(format!("+tls-ca={}", ca.display()))
    .arg(format!("+tls-hostname={TLS_NAME}"))
    .args(["+time=3", "+retry=0", "+edns"])
    .args(extra)
    .args([name, t]);
    run(&mut c).await
}

#[tokio::test]
#[ignore = "needs kdig (knot-dnsutils): run by scripts/encrypted-check.sh"]
async fn kdig_over_dot_and_doh() {
    let pki = Pki::new("pixelguard test CA", TLS_NAME);
    let (_auth, pg) = setup(&pki).await;
    let ca = pg.path("ca.pem");
    let (dot, doh) = (pg.app.tls_addrs[0], pg.app.https_addrs[0]);
    for (addr, extra) in [
        (dot, vec!["+tls"]),
        (doh, vec!["+https"]),
        (doh, vec!["+https", "+https-get"]),
    ] {
        let (ok, out) = kdig(addr, 2, &ca, &extra, "mail.example.test", "A").await;
        assert!(
            ok && out.contains("NOERROR") && out.contains("192.0.2.25"),
            "{extra:?}:\n{out}"
        );
        // The blocked name: the zone of the source address decides; the EDE is shown.
        let (ok, out) = kdig(addr, 2, &ca, &extra, "www.example.test", "A").await;
        assert!(
            ok && out.contains("NXDOMAIN") && out.contains("EDE: 15"),
            "{extra:?}:\n{out}"
        );
        let (ok, out) = kdig(addr, 3, &ca, &extra, "www.example.test", "A").await;
        assert!(
            ok && out.contains("NOERROR") && out.contains("0.0.0.0") && out.contains("EDE"),
            "{extra:?}:\n{out}"
        );
        // A wrong name: kdig refuses the certificate and gets no answer.
        let mut wrong = extra.clone();
        wrong.push("+tls-hostname=other.pixelguard.test");
        let (ok, out) = kdig(addr, 2, &ca, &wrong, "mail.example.test", "A").await;
        assert!(
            !ok || !out.contains("192.0.2.25"),
            "{extra:?} with a wrong name:\n{out}"
        );
    }
    // DDR: kdig parses the SVCB answer.
    let (ok, out) = kdig(pg.addr, 2, &ca, &["+notls"], "_dns.resolver.arpa", "SVCB").await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("1 {TLS_NAME}. alpn=dot port={}", dot.port())),
        "{out}"
    );
    assert!(
        out.contains(&format!("2 {TLS_NAME}. alpn=h2 port={}", doh.port())),
        "{out}"
    );
}

#[tokio::test]
#[ignore = "needs kdig (knot-dnsutils): run by scripts/encrypted-check.sh"]
async fn kdig_refuses_an_expired_certificate() {
    let pki = Pki::expired("pixelguard test CA", TLS_NAME);
    let (_auth, pg) = setup(&pki).await;
    let ca = pg.path("ca.pem");
    for (addr, extra) in [
        (pg.app.tls_addrs[0], "+tls"),
        (pg.app.https_addrs[0], "+https"),
    ] {
        let (ok, out) = kdig(addr, 2, &ca, &[extra], "mail.example.test", "A").await;
        assert!(
            !ok || !out.contains("192.0.2.25"),
            "{extra}: an expired certificate:\n{out}"
        );
    }
    // The same client and CA work against a valid certificate (the check can fail).
    let good = Pki::new("pixelguard test CA", TLS_NAME);
    let (_auth2, pg2) = setup(&good).await;
    let (ok, out) = kdig(
        pg2.app.tls_addrs[0],
        2,
        &pg2.path("ca.pem"),
        &["+tls"],
        "mail.example.test",
        "A",
    )
    .await;
    assert!(ok && out.contains("192.0.2.25"), "{out}");
}

/// curl against DoH from `source`; (success, HTTP version and status, body file).
async fn curl(
    pg: &pg::Pg,
    source: u8,
    http: &str,
    post: Option<&[u8]>,
    query: &str,
) -> (bool, String, Vec<u8>) {
    let port = pg.app.https_addrs[0].port();
    let body = pg.path("answer.bin");
    let _ = std::fs::remove_file(&body);
    let mut c = Command::new("timeout");
    c.args(["20", "curl", "-sS", http, "--max-time", "10"])
        .arg("--cacert")
        .arg(pg.path("ca.pem"))
        .args(["--resolve", &format!("{TLS_NAME}:{port}:127.0.0.1")])
        .args(["--interface", &format!("127.0.0.{source}")])
        .args([
            "-H",
            "accept: application/dns-message",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("-o")
        .arg(&body);
    if let Some(q) = post {
        let qf = pg.path("query.bin");
        std::fs::write(&qf, q).unwrap();
        c.args([
            "-H",
            "content-type: application/dns-message",
            "--data-binary",
        ])
        .arg(format!("@{}", qf.display()));
    }
    c.arg(format!("https://{TLS_NAME}:{port}/dns-query{query}"));
    let (ok, out) = run(&mut c).await;
    (ok, out, std::fs::read(&body).unwrap_or_default())
}

fn wire(name: &str) -> Vec<u8> {
    let mut m = support::client::build_query(name, RecordType::A, &QueryOpts::default()).unwrap();
    m.metadata.id = 0;
    m.to_vec().unwrap()
}

#[tokio::test]
#[ignore = "needs curl: run by scripts/encrypted-check.sh"]
async fn curl_get_and_post_over_http2_and_http1() {
    let pki = Pki::new("pixelguard test CA", TLS_NAME);
    let (_auth, pg) = setup(&pki).await;
    let b64 = |q: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(q);
    for (http, version) in [("--http2", "2 200"), ("--http1.1", "1.1 200")] {
        let q = wire("mail.example.test.");
        let (ok, out, body) = curl(&pg, 2, http, Some(&q), "").await;
        assert!(ok && out.trim() == version, "{http} POST: {out}");
        assert_eq!(
            answer_ips(&Message::from_vec(&body).unwrap()),
            vec!["192.0.2.25".parse::<std::net::IpAddr>().unwrap()]
        );
        let (ok, out, body) = curl(&pg, 2, http, None, &format!("?dns={}", b64(&q))).await;
        assert!(ok && out.trim() == version, "{http} GET: {out}");
        assert_eq!(
            answer_ips(&Message::from_vec(&body).unwrap()),
            vec!["192.0.2.25".parse::<std::net::IpAddr>().unwrap()]
        );
        // Blocked, per zone, with EDE.
        let b = wire("www.example.test.");
        let (_, _, body) = curl(&pg, 2, http, None, &format!("?dns={}", b64(&b))).await;
        let m = Message::from_vec(&body).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(ede(&m).iter().any(|(code, _)| *code == 15), "{:?}", ede(&m));
        let (_, _, body) = curl(&pg, 3, http, Some(&b), "").await;
        let m = Message::from_vec(&body).unwrap();
        assert_eq!(
            answer_ips(&m),
            vec!["0.0.0.0".parse::<std::net::IpAddr>().unwrap()]
        );
    }
    // curl refuses a name the certificate is not for.
    let port = pg.app.https_addrs[0].port();
    let (ok, out) = run(Command::new("timeout")
        .args(["20", "curl", "-sS", "--http2", "--max-time", "10"])
        .arg("--cacert")
        .arg(pg.path("ca.pem"))
        .args([
            "--resolve",
            &format!("other.pixelguard.test:{port}:127.0.0.1"),
        ])
        .arg(format!(
            "https://other.pixelguard.test:{port}/dns-query?dns={}",
            b64(&wire("mail.example.test."))
        )))
    .await;
    assert!(!ok && out.contains("certificate"), "{out}");
}
