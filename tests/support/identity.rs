//! What the client-identity tests share (tests/client_identity.rs: PROXY v2;
//! tests/client_subnet.rs: ECS): a pixelguard with kiosk and staff zones, a trusted proxy and a
//! trusted forwarder, in front of a recording upstream; PROXY v2 headers and queries with or
//! without ECS built with ppp and hickory; UDP and TCP askers from a chosen loopback source; the
//! drop counters and the query log. Included by `#[path]`, so only those two binaries compile it; each uses part of it.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use ppp::v2::{Addresses, Builder, Command, Protocol, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

use super::support::scripted::answer_for;
use super::support::{Reply, ScriptedUpstream, pg, poll_until};

pub const TRACKER: &str = "tracker.example.test.";
pub const ANSWER: [u8; 4] = [192, 0, 2, 1];
pub const IO_CAP: Duration = Duration::from_secs(5);

/// An upstream that answers every A question with 192.0.2.1 and records every request.
pub fn upstream() -> ScriptedUpstream {
    ScriptedUpstream::start(|q| match &q.message {
        Some(m) => Reply::Message(answer_for(m, std::net::IpAddr::from(ANSWER), 60)),
        None => Reply::Silence,
    })
}

pub fn config(upstream: SocketAddr, udp_path: &str) -> String {
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

pub async fn start(udp_path: &str) -> (ScriptedUpstream, pg::Pg) {
    let up = upstream();
    let pg = pg::start(
        &config(up.addr(), udp_path),
        &[("b.txt", "tracker.example.test\n")],
    )
    .await;
    (up, pg)
}

/// A PROXY v2 header (PROXY command) naming `client` as the source.
pub fn header(client: IpAddr, protocol: Protocol) -> Vec<u8> {
    let src = SocketAddr::new(client, 40_000);
    let dst: SocketAddr = "127.0.0.1:53".parse().unwrap();
    Builder::with_addresses(Version::Two | Command::Proxy, protocol, (src, dst))
        .build()
        .unwrap()
}

/// A LOCAL header (what dnsdist's health checks send).
pub fn local_header() -> Vec<u8> {
    Builder::with_addresses(
        Version::Two | Command::Local,
        Protocol::Unspecified,
        Addresses::Unspecified,
    )
    .build()
    .unwrap()
}

/// A query (EDNS, optionally with a Client Subnet) and its id.
pub fn query(name: &str, ecs: Option<ClientSubnet>) -> (u16, Vec<u8>) {
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

pub fn subnet(net: &str) -> ClientSubnet {
    net.parse().unwrap()
}

/// A UDP socket on `from`, connected to pixelguard.
pub async fn udp_from(pg: &pg::Pg, from: IpAddr) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::new(from, 0)).await.unwrap();
    s.connect(pg.addr).await.unwrap();
    s
}

/// Sends `prefix` + the query over `sock`; the first reply (which must carry the query's id).
pub async fn udp_ask(
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
pub async fn tcp_ask(
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
pub async fn tcp_closed_after(pg: &pg::Pg, from: IpAddr, bytes: &[u8]) -> bool {
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

pub fn blocked(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NXDomain && m.answers.is_empty()
}

pub fn resolved(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NoError
        && m.answers
            .iter()
            .any(|r| matches!(r.data, RData::A(a) if a.0.octets() == ANSWER))
}

/// The Client Subnet options of a message.
pub fn ecs_of(m: &Message) -> Vec<ClientSubnet> {
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

pub async fn dropped(pg: &pg::Pg, reason: &str) -> u64 {
    let url = format!("http://{}/metrics", pg.app.admin_addr.unwrap());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let series = format!("pixelguard_proxy_dropped_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

pub async fn wait_dropped(pg: &pg::Pg, reason: &str, want: u64) {
    poll_until(IO_CAP, &format!("{reason} drops reach {want}"), || async {
        dropped(pg, reason).await == want
    })
    .await;
}

pub fn log_lines(pg: &pg::Pg) -> Vec<serde_json::Value> {
    std::fs::read_to_string(pg.path("queries.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
