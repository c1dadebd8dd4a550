//! Forwarding to upstream resolvers: one try per server in the configured order, each bounded by
//! the per-try timeout and all bounded by the overall deadline, with TC→TCP retry, FORMERR→retry
//! without EDNS, failover on timeout / SERVFAIL / REFUSED / malformed or empty replies, and
//! coalescing of identical in-flight questions into one upstream query.
//!
//! The transport is written here on tokio sockets and hickory-proto's codec, not on hickory's
//! `Resolver` or `NameServerPool` (they drop negative-answer additionals, AD, EDE and DO) and not on
//! hickory-net's UDP exchange (it ignores a zero-length reply and waits out the timeout instead of
//! failing over). Each UDP try uses a fresh socket on a random port, connected to the server, so
//! only that server's replies are read (Kaminsky defence: random port + random id + question check).
//! This module knows nothing of policy: it returns the upstream's message as it came.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// EDNS payload size advertised upstream (the DNS Flag Day 2020 value).
pub const UPSTREAM_EDNS_PAYLOAD: u16 = 1232;

/// Why one try at one upstream failed (also a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryError {
    /// No reply within the try's time.
    Timeout,
    /// A zero-length datagram.
    Empty,
    /// Bytes that are not a DNS message, or a message that does not answer our question.
    Malformed,
    /// A socket error (unreachable, reset, ...).
    Network,
}

impl TryError {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Empty => "empty",
            Self::Malformed => "malformed",
            Self::Network => "network",
        }
    }
}

/// A finished upstream exchange.
#[derive(Debug, Clone)]
pub struct UpstreamAnswer {
    /// The reply as the upstream sent it (question rewritten only by the caller).
    pub message: Message,
    /// The server that gave it.
    pub server: SocketAddr,
}

/// The question, as the client asked it (case preserved) plus the bits passed upstream.
#[derive(Debug, Clone)]
pub struct Question {
    /// Query with the client's case.
    pub query: Query,
    /// DNSSEC OK from the client.
    pub dnssec_ok: bool,
    /// Checking Disabled from the client.
    pub checking_disabled: bool,
}

type Key = (String, u16, u16, bool, bool);
type Pending = Shared<BoxFuture<'static, Option<Arc<UpstreamAnswer>>>>;

/// The upstream set of one snapshot.
#[derive(Clone)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

struct Inner {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    deadline: Duration,
    inflight: Mutex<HashMap<Key, Pending>>,
}

impl Upstreams {
    /// A set tried in `servers` order.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration, deadline: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                servers,
                timeout,
                deadline,
                inflight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The servers, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.inner.servers
    }

    /// Resolves a question, coalescing with an identical one in flight. `None` means every
    /// upstream failed without giving any reply (the caller answers SERVFAIL).
    pub async fn resolve(&self, q: &Question) -> Option<Arc<UpstreamAnswer>> {
        let key: Key = (
            q.query.name().to_ascii().to_ascii_lowercase(),
            u16::from(q.query.query_type()),
            u16::from(q.query.query_class()),
            q.dnssec_ok,
            q.checking_disabled,
        );
        let (fut, leader) = {
            let mut map = match self.inner.inflight.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            if let Some(f) = map.get(&key) {
                (f.clone(), false)
            } else {
                let inner = self.inner.clone();
                let q = q.clone();
                let f = async move { inner.resolve_uncoalesced(&q).await.map(Arc::new) }
                    .boxed()
                    .shared();
                map.insert(key.clone(), f.clone());
                (f, true)
            }
        };
        let out = fut.await;
        if leader {
            let mut map = match self.inner.inflight.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            map.remove(&key);
        }
        out
    }
}

impl Inner {
    async fn resolve_uncoalesced(&self, q: &Question) -> Option<UpstreamAnswer> {
        let start = Instant::now();
        let mut last_reply: Option<UpstreamAnswer> = None;
        for &server in &self.servers {
            let remaining = self.deadline.saturating_sub(start.elapsed());
            if remaining.is_zero() {
                break;
            }
            let per_try = self.timeout.min(remaining);
            match try_server(server, q, per_try).await {
                Ok(message) => {
                    let rcode = message.metadata.response_code;
                    let answer = UpstreamAnswer { message, server };
                    if rcode == ResponseCode::ServFail || rcode == ResponseCode::Refused {
                        tracing::debug!(%server, %rcode, "upstream failed; trying the next");
                        last_reply = Some(answer);
                        continue;
                    }
                    return Some(answer);
                }
                Err(e) => {
                    tracing::debug!(%server, error = e.as_str(), "upstream try failed");
                }
            }
        }
        last_reply
    }
}

/// One upstream, all the retries it deserves: TC → TCP, FORMERR to EDNS → without EDNS.
async fn try_server(server: SocketAddr, q: &Question, time: Duration) -> Result<Message, TryError> {
    let deadline = Instant::now() + time;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut edns = true;
    let mut tcp = false;
    for _ in 0..3 {
        let (id, bytes) = encode_query(q, edns)?;
        let reply = if tcp {
            tcp_exchange(server, &bytes, id, &q.query, left()).await?
        } else {
            udp_exchange(server, &bytes, id, &q.query, left()).await?
        };
        if reply.metadata.truncation && !tcp {
            tcp = true;
            continue;
        }
        if edns && reply.metadata.response_code == ResponseCode::FormErr {
            edns = false;
            continue;
        }
        return Ok(reply);
    }
    Err(TryError::Malformed)
}

fn encode_query(q: &Question, edns: bool) -> Result<(u16, Vec<u8>), TryError> {
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = q.checking_disabled;
    // AD=1 asks the upstream to report validation status (RFC 6840 §5.7) whatever the client set,
    // so one cached answer serves every client; respond strips AD for clients that set neither
    // DO nor AD.
    m.metadata.authentic_data = true;
    m.add_query(q.query.clone());
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(UPSTREAM_EDNS_PAYLOAD);
        e.set_dnssec_ok(q.dnssec_ok);
        m.set_edns(e);
    }
    let bytes = m.to_vec().map_err(|_| TryError::Malformed)?;
    Ok((id, bytes))
}

fn unspecified_for(server: SocketAddr) -> SocketAddr {
    match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

fn answers_question(m: &Message, q: &Query) -> bool {
    m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && m.queries[0].query_type() == q.query_type()
        && m.queries[0].query_class() == q.query_class()
        && m.queries[0].name().eq_ignore_root(q.name())
}

async fn udp_exchange(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
    time: Duration,
) -> Result<Message, TryError> {
    let sock = UdpSocket::bind(unspecified_for(server))
        .await
        .map_err(|_| TryError::Network)?;
    sock.connect(server).await.map_err(|_| TryError::Network)?;
    sock.send(bytes).await.map_err(|_| TryError::Network)?;
    let mut buf = vec![0u8; 65_535];
    let recv = async {
        loop {
            let n = sock.recv(&mut buf).await.map_err(|_| TryError::Network)?;
            if n == 0 {
                return Err(TryError::Empty);
            }
            let Ok(m) = Message::from_vec(&buf[..n]) else {
                return Err(TryError::Malformed);
            };
            // A reply with another id is not ours (late or spoofed): keep waiting for ours.
            if m.metadata.id != id {
                continue;
            }
            if !answers_question(&m, q) {
                return Err(TryError::Malformed);
            }
            return Ok(m);
        }
    };
    tokio::time::timeout(time, recv)
        .await
        .map_err(|_| TryError::Timeout)?
}

async fn tcp_exchange(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
    time: Duration,
) -> Result<Message, TryError> {
    let work = async {
        let mut s = TcpStream::connect(server)
            .await
            .map_err(|_| TryError::Network)?;
        let len = u16::try_from(bytes.len()).map_err(|_| TryError::Malformed)?;
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        s.write_all(&out).await.map_err(|_| TryError::Network)?;
        let mut lb = [0u8; 2];
        s.read_exact(&mut lb).await.map_err(|_| TryError::Network)?;
        let n = usize::from(u16::from_be_bytes(lb));
        if n == 0 {
            return Err(TryError::Empty);
        }
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf)
            .await
            .map_err(|_| TryError::Network)?;
        let m = Message::from_vec(&buf).map_err(|_| TryError::Malformed)?;
        if m.metadata.id != id || !answers_question(&m, q) {
            return Err(TryError::Malformed);
        }
        Ok(m)
    };
    tokio::time::timeout(time, work)
        .await
        .map_err(|_| TryError::Timeout)?
}

/// A SERVFAIL skeleton for when every upstream failed.
pub fn servfail_metadata(id: u16) -> Metadata {
    let mut m = Metadata::new(id, MessageType::Response, OpCode::Query);
    m.response_code = ResponseCode::ServFail;
    m
}
