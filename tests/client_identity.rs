//! The real client behind a proxy or a forwarder, end to end on loopback: PROXY protocol v2
//! headers from a trusted peer (127.0.0.1) naming the kiosk (127.0.0.2) and staff (127.0.0.3)
//! clients over UDP and TCP; headers from an untrusted peer, missing headers and a table of
//! malformed ones, dropped and counted while the server goes on answering; EDNS Client Subnet
//! from a trusted forwarder (127.0.0.5) picking the zone, from anyone else changing nothing,
//! echoed with scope 0 and never sent to the recording upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use ppp::v2::{Addresses, Builder, Command, Protocol, Type, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

use support::scripted::answer_for;
use support::{Reply, ScriptedUpstream, loopback, pg, poll_until};

const TRACKER: &str = "tracker.example.test.";
const ANSWER: [u8; 4] = [192, 0, 2, 1];
const IO_CAP: Duration = Duration::from_secs(5);

/// An upstream that answers every A question with 192.0.2.1 and records every request.
fn upstream() -> ScriptedUpstream {
    ScriptedUpstream::start(|q| match &q.message {
        Some(m) => Reply::Message(answer_for(m, std::net::IpAddr::from(ANSWER), 60)),
        None => Reply::Silence,
    })
}

fn config(upstream: SocketAddr, udp_path: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:0"]
udp_path = "{udp_path}"
proxy_protocol = ["127.0.0.1/32"]
client_subnet_from = ["127.0.0.5"]

[upstream]
servers = ["{upstream}"]
timeout = "400ms"
deadline = "1500ms"

[admin]
listen = "127.0.0.1:0"

[query_log]
path = "queries.jsonl"
key = "client-identity-test-key-01"

[lists.b]
source = "b.txt"

[zones.kiosk]
networks = ["127.0.0.2/32", "10.2.0.0/16"]
block = ["b"]
query_log = "all"
query_log_client = "full"

[zones.staff]
networks = ["127.0.0.3/32", "127.0.0.4/32", "127.0.0.5/32"]
query_log = "all"
query_log_client = "full"

[zones.branch]
networks = ["10.9.0.0/16"]
rate_limit = {{ qps = 0.01, burst = 2, action = "refused" }}
"#
    )
}

async fn start(udp_path: &str) -> (ScriptedUpstream, pg::Pg) {
    let up = upstream();
    let pg = pg::start(
        &config(up.addr(), udp_path),
        &[("b.txt", "tracker.example.test\n")],
    )
    .await;
    (up, pg)
}

/// A PROXY v2 header (PROXY command) naming `client` as the source.
fn header(client: IpAddr, protocol: Protocol) -> Vec<u8> {
    let src = SocketAddr::new(client, 40_000);
    let dst: SocketAddr = "127.0.0.1:53".parse().unwrap();
    Builder::with_addresses(Version::Two | Command::Proxy, protocol, (src, dst))
        .build()
        .unwrap()
}

/// A LOCAL header (what dnsdist's health checks send).
fn local_header() -> Vec<u8> {
    Builder::with_addresses(
        Version::Two | Command::Local,
        Protocol::Unspecified,
        Addresses::Unspecified,
    )
    .build()
    .unwrap()
}

/// A query (EDNS, optionally with a Client Subnet) and its id.
fn query(name: &str, ecs: Option<ClientSubnet>) -> (u16, Vec<u8>) {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if let Some(s) = ecs {
        e.options_mut().insert(EdnsOption::Subnet(s));
    }
    m.set_edns(e);
    (m.metadata.id, m.to_vec().unwrap())
}

fn subnet(net: &str) -> ClientSubnet {
    net.parse().unwrap()
}

/// A UDP socket on `from`, connected to pixelguard.
async fn udp_from(pg: &pg::Pg, from: IpAddr) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::new(from, 0)).await.unwrap();
    s.connect(pg.addr).await.unwrap();
    s
}

/// Sends `prefix` + the query over `sock`; the first reply (which must carry the query's id).
async fn udp_ask(
    sock: &UdpSocket,
    prefix: &[u8],
    name: &str,
    ecs: Option<ClientSubnet>,
) -> Message {
    let (id, q) = query(name, ecs);
    sock.send(&[prefix, &q].concat()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(IO_CAP, sock.recv(&mut buf))
        .await
        .expect("a reply")
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, id, "the reply answers the last query");
    m
}

/// Opens a TCP connection from `from`, writes `prefix` raw, then the framed query; the reply, or
/// `None` when the server closes the connection without one.
async fn tcp_ask(
    pg: &pg::Pg,
    from: IpAddr,
    prefix: &[u8],
    name: &str,
    ecs: Option<ClientSubnet>,
) -> Option<Message> {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = s.connect(pg.addr).await.unwrap();
    let (_, q) = query(name, ecs);
    let mut out = prefix.to_vec();
    out.extend_from_slice(&(q.len() as u16).to_be_bytes());
    out.extend_from_slice(&q);
    // The server may close before reading everything: a failed write is a closed connection.
    if stream.write_all(&out).await.is_err() {
        return None;
    }
    let mut len = [0u8; 2];
    match tokio::time::timeout(IO_CAP, stream.read_exact(&mut len)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return None,
        Err(_) => panic!("neither a reply nor a close within {IO_CAP:?}"),
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.unwrap();
    Some(Message::from_vec(&buf).unwrap())
}

/// Opens a TCP connection from `from`, writes `bytes` and closes its sending side: whether the
/// server then closed the connection without writing anything.
async fn tcp_closed_after(pg: &pg::Pg, from: IpAddr, bytes: &[u8]) -> bool {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = s.connect(pg.addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(IO_CAP, stream.read_to_end(&mut buf))
        .await
        .expect("the server closes the connection");
    read.is_err() || buf.is_empty()
}

fn blocked(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NXDomain && m.answers.is_empty()
}

fn resolved(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NoError
        && m.answers
            .iter()
            .any(|r| matches!(r.data, RData::A(a) if a.0.octets() == ANSWER))
}

/// The Client Subnet options of a message.
fn ecs_of(m: &Message) -> Vec<ClientSubnet> {
    m.edns
        .as_ref()
        .map(|e| {
            e.options()
                .as_ref()
                .iter()
                .filter_map(|(_, o)| match o {
                    EdnsOption::Subnet(s) => Some(*s),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn dropped(pg: &pg::Pg, reason: &str) -> u64 {
    let url = format!("http://{}/metrics", pg.app.admin_addr.unwrap());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let series = format!("pixelguard_proxy_dropped_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

async fn wait_dropped(pg: &pg::Pg, reason: &str, want: u64) {
    poll_until(IO_CAP, &format!("{reason} drops reach {want}"), || async {
        dropped(pg, reason).await == want
    })
    .await;
}

fn log_lines(pg: &pg::Pg) -> Vec<serde_json::Value> {
    std::fs::read_to_string(pg.path("queries.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_trusted_proxys_header_names_the_client_over_udp_and_tcp() {
    for path in ["fast", "hickory"] {
        let (_up, pg) = start(path).await;
        let proxy = udp_from(&pg, loopback(1)).await;
        let kiosk = header(loopback(2), Protocol::Datagram);
        let staff = header(loopback(3), Protocol::Datagram);
        for _ in 0..2 {
            // Twice: the second answer of staff comes from the cache.
            let m = udp_ask(&proxy, &kiosk, TRACKER, None).await;
            assert!(blocked(&m), "{path}: kiosk via the proxy is blocked: {m:?}");
            let m = udp_ask(&proxy, &staff, TRACKER, None).await;
            assert!(resolved(&m), "{path}: staff via the proxy resolves: {m:?}");
        }
        // TCP: the header once, at the start of the connection.
        let kiosk = header(loopback(2), Protocol::Stream);
        let staff = header(loopback(3), Protocol::Stream);
        let m = tcp_ask(&pg, loopback(1), &kiosk, TRACKER, None)
            .await
            .unwrap();
        assert!(blocked(&m), "{path}: kiosk over TCP: {m:?}");
        let m = tcp_ask(&pg, loopback(1), &staff, TRACKER, None)
            .await
            .unwrap();
        assert!(resolved(&m), "{path}: staff over TCP: {m:?}");
        // LOCAL (health checks): the proxy itself, which is in no zone: REFUSED, not dropped.
        let m = udp_ask(&proxy, &local_header(), TRACKER, None).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        let m = tcp_ask(&pg, loopback(1), &local_header(), TRACKER, None)
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        // The query log sees the real clients, never the proxy.
        assert!(pg.app.flush_query_log(IO_CAP).await);
        let lines = log_lines(&pg);
        let seen: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l["zone"].as_str().unwrap(), l["client"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                ("kiosk", "127.0.0.2"),
                ("staff", "127.0.0.3"),
                ("kiosk", "127.0.0.2"),
                ("staff", "127.0.0.3"),
                ("kiosk", "127.0.0.2"),
                ("staff", "127.0.0.3"),
            ],
            "{path}"
        );
        for r in ["untrusted", "missing", "malformed", "unsupported"] {
            assert_eq!(dropped(&pg, r).await, 0, "{path}: nothing dropped ({r})");
        }
    }
}

#[tokio::test]
async fn headers_from_untrusted_peers_and_trusted_peers_without_one_are_dropped() {
    let (_up, pg) = start("fast").await;
    // 127.0.0.4 is a staff client, not a proxy: its header naming the kiosk is dropped.
    let other = udp_from(&pg, loopback(4)).await;
    let (_, q) = query(TRACKER, None);
    let kiosk = header(loopback(2), Protocol::Datagram);
    other.send(&[&kiosk[..], &q].concat()).await.unwrap();
    wait_dropped(&pg, "untrusted", 1).await;
    // The next plain query on the same socket gets the first reply: none came for the header.
    let m = udp_ask(&other, &[], TRACKER, None).await;
    assert!(resolved(&m), "127.0.0.4 is still served as staff");
    let kiosk = header(loopback(2), Protocol::Stream);
    assert!(
        tcp_ask(&pg, loopback(4), &kiosk, TRACKER, None)
            .await
            .is_none()
    );
    wait_dropped(&pg, "untrusted", 2).await;
    assert!(
        tcp_ask(&pg, loopback(4), &[], TRACKER, None)
            .await
            .is_some()
    );
    // A version 1 text header from an untrusted peer is not DNS either.
    let v1 = b"PROXY TCP4 127.0.0.2 127.0.0.1 4000 53\r\n";
    assert!(tcp_ask(&pg, loopback(4), v1, TRACKER, None).await.is_none());
    wait_dropped(&pg, "untrusted", 3).await;

    // The trusted proxy without a header: dropped.
    let proxy = udp_from(&pg, loopback(1)).await;
    proxy.send(&q).await.unwrap();
    wait_dropped(&pg, "missing", 1).await;
    assert!(
        tcp_ask(&pg, loopback(1), &[], TRACKER, None)
            .await
            .is_none()
    );
    wait_dropped(&pg, "missing", 2).await;
    let m = udp_ask(
        &proxy,
        &header(loopback(3), Protocol::Datagram),
        TRACKER,
        None,
    )
    .await;
    assert!(
        resolved(&m),
        "the proxy's next datagram, with its header, is served"
    );
}

#[tokio::test]
async fn malformed_headers_are_dropped_and_counted_and_the_server_keeps_answering() {
    let (_up, pg) = start("fast").await;
    let good = header(loopback(2), Protocol::Datagram);
    let with_tlv = Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Datagram,
        (
            SocketAddr::new(loopback(2), 1),
            "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
        ),
    )
    .write_tlv(Type::NoOp, &[0; 3])
    .unwrap()
    .build()
    .unwrap();
    let patch = |mut h: Vec<u8>, at: usize, v: u8| {
        h[at] = v;
        h
    };
    let tlv_at = with_tlv.len() - 6;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated signature", good[..7].to_vec()),
        ("truncated fixed part", good[..14].to_vec()),
        (
            "version 1 in a binary header",
            patch(good.clone(), 12, 0x11),
        ),
        ("version 3", patch(good.clone(), 12, 0x31)),
        ("command 2", patch(good.clone(), 12, 0x22)),
        ("family 5", patch(good.clone(), 13, 0x52)),
        ("transport 3", patch(good.clone(), 13, 0x13)),
        ("length under the addresses", patch(good.clone(), 15, 4)),
        ("length past the end", patch(good.clone(), 15, 200)),
        (
            "TLV past the end",
            patch(with_tlv.clone(), tlv_at + 2, 0x40),
        ),
    ];
    let proxy = udp_from(&pg, loopback(1)).await;
    for (i, (what, bad)) in cases.iter().enumerate() {
        // UDP: the bad header with no query after it (a short datagram is all header).
        proxy.send(bad).await.unwrap();
        wait_dropped(&pg, "malformed", 2 * i as u64 + 1).await;
        let m = udp_ask(&proxy, &good, TRACKER, None).await;
        assert!(blocked(&m), "{what}: the next good datagram is answered");
        // TCP: the connection is closed, nothing written.
        assert!(
            tcp_closed_after(&pg, loopback(1), bad).await,
            "{what}: TCP connection closed"
        );
        wait_dropped(&pg, "malformed", 2 * i as u64 + 2).await;
    }
    // A UNIX-socket header is valid but carries no usable client.
    let unix = Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        ppp::v2::Unix::new([1; 108], [2; 108]),
    )
    .build()
    .unwrap();
    assert!(
        tcp_ask(&pg, loopback(1), &unix, TRACKER, None)
            .await
            .is_none()
    );
    wait_dropped(&pg, "unsupported", 1).await;
    let m = tcp_ask(
        &pg,
        loopback(1),
        &header(loopback(3), Protocol::Stream),
        TRACKER,
        None,
    )
    .await
    .unwrap();
    assert!(resolved(&m), "still answering over TCP");
}

#[tokio::test]
async fn ecs_from_a_trusted_forwarder_picks_the_zone_and_is_echoed_with_scope_zero() {
    let (up, pg) = start("fast").await;
    let fwd = udp_from(&pg, loopback(5)).await;
    // Without ECS the forwarder is a staff client; with it, its client's zone.
    let m = udp_ask(&fwd, &[], TRACKER, None).await;
    assert!(resolved(&m), "the forwarder itself is staff");
    assert!(ecs_of(&m).is_empty(), "no ECS asked, none echoed");
    for net in ["127.0.0.2/32", "10.2.3.0/24"] {
        let m = udp_ask(&fwd, &[], TRACKER, Some(subnet(net))).await;
        assert!(blocked(&m), "ECS {net} is a kiosk client: {m:?}");
        let echoed = ecs_of(&m);
        assert_eq!(echoed.len(), 1, "{net}: echoed once");
        assert_eq!(echoed[0].scope_prefix(), 0, "{net}: scope 0");
        assert_eq!(echoed[0], subnet(net), "{net}: as sent");
    }
    // The full path (TCP) reads ECS as the fast parser does.
    let m = tcp_ask(&pg, loopback(5), &[], TRACKER, Some(subnet("127.0.0.2/32")))
        .await
        .unwrap();
    assert!(blocked(&m), "ECS over TCP picks the kiosk");
    assert_eq!(ecs_of(&m), [subnet("127.0.0.2/32")]);
    // A staff client behind the forwarder: answered (fresh, then cached), ECS echoed each time.
    for _ in 0..2 {
        let m = udp_ask(&fwd, &[], "www.example.test.", Some(subnet("127.0.0.3/32"))).await;
        assert!(resolved(&m));
        assert_eq!(ecs_of(&m)[0].scope_prefix(), 0);
    }
    // A PROXY header naming the forwarder: its ECS is trusted (the header's source counts).
    let proxy = udp_from(&pg, loopback(1)).await;
    let via = header(loopback(5), Protocol::Datagram);
    let m = udp_ask(&proxy, &via, TRACKER, Some(subnet("127.0.0.2/32"))).await;
    assert!(blocked(&m), "proxy → forwarder → kiosk client");
    // The query log names the client the ECS named.
    assert!(pg.app.flush_query_log(IO_CAP).await);
    let lines = log_lines(&pg);
    assert_eq!(lines[1]["client"], "127.0.0.2", "{lines:#?}");
    assert_eq!(lines[2]["client"], "10.2.3.0", "{lines:#?}");
    // Nothing the upstream saw carried ECS.
    assert!(up.saw_name("www.example.test."));
    assert_no_ecs_upstream(&up);
}

#[tokio::test]
async fn a_trusted_forwarders_clients_each_have_their_own_rate_limit_bucket() {
    let (_up, pg) = start("fast").await;
    let fwd = udp_from(&pg, loopback(5)).await;
    let one = Some(subnet("10.9.0.1/32"));
    for i in 0..2 {
        let m = udp_ask(&fwd, &[], "www.example.test.", one).await;
        assert!(resolved(&m), "query {i} of 10.9.0.1 is within its burst");
    }
    let m = udp_ask(&fwd, &[], "www.example.test.", one).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "10.9.0.1 is over"
    );
    // Another client behind the same forwarder has its own bucket; so does the forwarder.
    let m = udp_ask(&fwd, &[], "www.example.test.", Some(subnet("10.9.0.2/32"))).await;
    assert!(resolved(&m), "10.9.0.2 is not charged for 10.9.0.1");
    let m = udp_ask(&fwd, &[], "www.example.test.", None).await;
    assert!(resolved(&m), "the forwarder itself (staff, no limit)");
}

/// A TCP connection from the trusted proxy that sent `header` and one query; kept open.
async fn proxied_connection(
    pg: &pg::Pg,
    client: IpAddr,
) -> (tokio::net::TcpStream, Option<Message>) {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(loopback(1), 0)).unwrap();
    let mut stream = s.connect(pg.addr).await.unwrap();
    let (_, q) = query(TRACKER, None);
    let mut out = header(client, Protocol::Stream);
    out.extend_from_slice(&(q.len() as u16).to_be_bytes());
    out.extend_from_slice(&q);
    let _ = stream.write_all(&out).await;
    let mut len = [0u8; 2];
    let reply = match tokio::time::timeout(IO_CAP, stream.read_exact(&mut len)).await {
        Ok(Ok(_)) => {
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await.unwrap();
            Some(Message::from_vec(&buf).unwrap())
        }
        Ok(Err(_)) => None,
        Err(_) => panic!("neither a reply nor a close within {IO_CAP:?}"),
    };
    (stream, reply)
}

#[tokio::test]
async fn the_per_client_tcp_cap_applies_to_the_client_a_header_names_not_the_proxy() {
    let up = upstream();
    let cfg = config(up.addr(), "fast").replace(
        "udp_path = \"fast\"",
        "udp_path = \"fast\"\ntcp_max_connections_per_client = 1",
    );
    let pg = pg::start(&cfg, &[("b.txt", "tracker.example.test\n")]).await;
    // Two open connections from the one proxy, for two clients: both served.
    let (_a, r) = proxied_connection(&pg, loopback(2)).await;
    assert!(r.is_some_and(|m| blocked(&m)), "kiosk's connection");
    let (_b, r) = proxied_connection(&pg, loopback(3)).await;
    assert!(
        r.is_some_and(|m| resolved(&m)),
        "staff's connection, same proxy"
    );
    // A second open connection for the kiosk client: over its cap, closed.
    let (_c, r) = proxied_connection(&pg, loopback(2)).await;
    assert!(
        r.is_none(),
        "the kiosk client's second connection is closed"
    );
}

fn assert_no_ecs_upstream(up: &ScriptedUpstream) {
    let seen = up.seen();
    assert!(!seen.is_empty());
    for q in seen {
        let m = q.message.as_ref().unwrap();
        assert!(ecs_of(m).is_empty(), "ECS sent upstream: {m:?}");
        let codes: Vec<EdnsCode> = m
            .edns
            .as_ref()
            .map(|e| e.options().as_ref().iter().map(|(c, _)| *c).collect())
            .unwrap_or_default();
        assert!(!codes.contains(&EdnsCode::Subnet), "{codes:?}");
    }
}

#[tokio::test]
async fn ecs_from_anyone_else_changes_nothing_and_never_reaches_the_upstream() {
    let (up, pg) = start("fast").await;
    // 127.0.0.4 (staff) claims to speak for a kiosk client: ignored for policy.
    let other = udp_from(&pg, loopback(4)).await;
    let m = udp_ask(&other, &[], TRACKER, Some(subnet("127.0.0.2/32"))).await;
    assert!(resolved(&m), "untrusted ECS changes nothing: {m:?}");
    assert_eq!(
        ecs_of(&m),
        [subnet("127.0.0.2/32")],
        "still echoed, scope 0"
    );
    let m = udp_ask(
        &other,
        &[],
        "fresh.example.test.",
        Some(subnet("10.2.0.0/16")),
    )
    .await;
    assert!(resolved(&m));
    assert!(
        up.saw_name("fresh.example.test."),
        "the query went upstream"
    );
    assert_no_ecs_upstream(&up);
    // A malformed ECS (scope set in a query) is FORMERR, from anyone.
    for from in [4, 5] {
        let sock = udp_from(&pg, loopback(from)).await;
        let bad = ClientSubnet::new(loopback(2), 32, 24);
        let m = udp_ask(&sock, &[], TRACKER, Some(bad)).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::FormErr,
            "from .{from}"
        );
    }
}
