//! Resolving cache misses: forwarding to upstream resolvers over plain DNS ([`plain`]: UDP with
//! TCP fallback), DNS over TLS or DNS over HTTPS ([`encrypted`]), or resolving from the root
//! servers ([`recursive`], `[upstream] mode = "recursive"`).
//!
//! Forwarding: one try per server in the configured order, each bounded by the per-try timeout
//! and all bounded by the overall deadline, with TC→TCP retry (plain only: TC means nothing on a
//! stream), FORMERR→retry without EDNS, failover on timeout / SERVFAIL / REFUSED / malformed or
//! empty replies / TLS handshake or certificate failure, and coalescing of identical in-flight
//! questions into one upstream query. The answer is the upstream's message as it came (rcode,
//! sections, EDE, AD): the transports are written on tokio sockets and hickory-proto's codec
//! (plain) or hickory-net's TLS and HTTP/2 exchanges (encrypted), never on hickory's `Resolver`
//! or `NameServerPool`, which drop negative-answer additionals, AD, EDE and DO.
//!
//! Recursion: hickory's recursor behind the same coalescing, with its answer put into a message
//! of our own (negative answers as NXDOMAIN / NODATA with the SOA).
//!
//! Forward rules ([`route`]): names under a rule's domains go to the rule's own upstream set.
//!
//! This module knows nothing of policy: a blocked name never gets here (the pipeline answers it
//! first), so it is never sent to any server, not even as a parent's NS probe.

mod encrypted;
pub mod health;
mod plain;
mod recursive;
pub mod route;
pub(crate) mod tls;

pub use plain::{encode_query, read_reply};

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};

use crate::config::{UpstreamConfig, UpstreamMode, UpstreamProtocol, UpstreamServer};

/// EDNS payload size advertised upstream (the DNS Flag Day 2020 value).
pub const UPSTREAM_EDNS_PAYLOAD: u16 = 1232;

/// The address that stands for the recursor in [`Upstreams::servers`], [`UpstreamAnswer::server`]
/// and [`TryObserver::tried`] in recursive mode (it is not a server that is ever contacted).
pub const RECURSOR_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Queries in flight on one DoT / DoH connection (hickory's default of 32 makes a busy upstream
/// answer `Busy`; notes P7).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;

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
    /// The TLS handshake failed: certificate not valid for the configured name, unknown CA, ...
    Tls,
}

impl TryError {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Empty => "empty",
            Self::Malformed => "malformed",
            Self::Network => "network",
            Self::Tls => "tls",
        }
    }
}

/// Told about every try at one upstream (metrics, readiness). `result` is `ok`, `servfail`,
/// `refused` or a [`TryError`] label. Called on the request path: must not block.
pub trait TryObserver: Send + Sync {
    /// One try finished.
    fn tried(&self, server: SocketAddr, result: &'static str, elapsed: Duration);
}

/// A finished upstream exchange.
#[derive(Debug, Clone)]
pub struct UpstreamAnswer {
    /// The reply as the upstream sent it (question rewritten only by the caller).
    pub message: Message,
    /// The server that gave it ([`RECURSOR_ADDR`] in recursive mode).
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
    backend: Backend,
    timeout: Duration,
    deadline: Duration,
    strategy: health::Strategy,
    inflight: Mutex<HashMap<Key, Pending>>,
    observer: OnceLock<Arc<dyn TryObserver>>,
}

enum Backend {
    /// Forward to these, in order.
    Forward(Vec<Server>),
    /// Resolve from the root; `None` when the recursor could not be built (logged).
    Recursive(Option<Arc<recursive::Recursive>>, String),
}

#[derive(Clone)]
struct Server {
    spec: UpstreamServer,
    link: Link,
    health: Arc<health::Health>,
}

#[derive(Clone)]
enum Link {
    Plain,
    Stream(Arc<encrypted::StreamUpstream>),
}

impl Upstreams {
    /// Plain-DNS upstreams tried in `servers` order.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration, deadline: Duration) -> Self {
        let servers = servers
            .into_iter()
            .map(|a| Server {
                spec: UpstreamServer::plain(a),
                link: Link::Plain,
                health: Arc::default(),
            })
            .collect();
        Self::assemble(
            Backend::Forward(servers),
            timeout,
            deadline,
            health::Strategy::Ordered,
        )
    }

    /// The upstream set an `[upstream]` config describes. Connections (DoT / DoH) and the
    /// recursor with its caches are taken over from `previous` when their settings did not
    /// change, so a reload or a list refresh does not cost new handshakes or a cold recursor.
    pub fn from_config(cfg: &UpstreamConfig, previous: Option<&Upstreams>) -> Self {
        let backend = match cfg.mode {
            UpstreamMode::Forward => {
                let old: &[Server] = match previous.map(|p| &p.inner.backend) {
                    Some(Backend::Forward(s)) => s,
                    _ => &[],
                };
                let servers = cfg
                    .servers
                    .iter()
                    .map(|spec| {
                        let link = match &spec.protocol {
                            UpstreamProtocol::Plain => Link::Plain,
                            _ => {
                                let reused = old.iter().find_map(|o| match &o.link {
                                    Link::Stream(s) if s.same_setup(spec, cfg) => Some(s.clone()),
                                    _ => None,
                                });
                                Link::Stream(reused.unwrap_or_else(|| {
                                    Arc::new(encrypted::StreamUpstream::new(spec, cfg))
                                }))
                            }
                        };
                        // Health carries over for the same address and protocol.
                        let health = old
                            .iter()
                            .find(|o| o.spec == *spec)
                            .map_or_else(Arc::default, |o| o.health.clone());
                        Server {
                            spec: spec.clone(),
                            link,
                            health,
                        }
                    })
                    .collect();
                Backend::Forward(servers)
            }
            UpstreamMode::Recursive => {
                let reused = match previous.map(|p| &p.inner.backend) {
                    Some(Backend::Recursive(Some(r), _)) if r.same_setup(cfg) => Some(r.clone()),
                    _ => None,
                };
                let describe = recursive::describe(cfg);
                match reused {
                    Some(r) => Backend::Recursive(Some(r), describe),
                    None => match recursive::Recursive::new(cfg) {
                        Ok(r) => Backend::Recursive(Some(Arc::new(r)), describe),
                        Err(e) => {
                            tracing::error!(
                                "recursive mode: cannot build the recursor: {e}; every cache miss will be answered SERVFAIL"
                            );
                            Backend::Recursive(None, format!("{describe} -- NOT RUNNING: {e}"))
                        }
                    },
                }
            }
        };
        Self::assemble(backend, cfg.timeout, cfg.deadline, cfg.strategy)
    }

    fn assemble(
        backend: Backend,
        timeout: Duration,
        deadline: Duration,
        strategy: health::Strategy,
    ) -> Self {
        let servers = match &backend {
            Backend::Forward(s) => s.iter().map(|s| s.spec.addr).collect(),
            Backend::Recursive(..) => vec![RECURSOR_ADDR],
        };
        Self {
            inner: Arc::new(Inner {
                servers,
                backend,
                timeout,
                deadline,
                strategy,
                inflight: Mutex::new(HashMap::new()),
                observer: OnceLock::new(),
            }),
        }
    }

    /// The servers, in order: the addresses that appear in [`UpstreamAnswer::server`] and in
    /// [`TryObserver::tried`] (in recursive mode the one [`RECURSOR_ADDR`]).
    pub fn servers(&self) -> &[SocketAddr] {
        &self.inner.servers
    }

    /// One line per upstream for the start-up summary: its URL and protocol, e.g.
    /// `tls://9.9.9.9:853#dns.quad9.net (dot, verify name dns.quad9.net)`; in recursive mode
    /// one line about the recursor. Empty when there is no upstream.
    pub fn describe(&self) -> Vec<String> {
        match &self.inner.backend {
            Backend::Forward(s) => s.iter().map(|s| s.spec.describe()).collect(),
            Backend::Recursive(_, d) => vec![d.clone()],
        }
    }

    /// True in recursive mode.
    pub fn is_recursive(&self) -> bool {
        matches!(self.inner.backend, Backend::Recursive(..))
    }

    /// Attaches the observer of every try (once per upstream set; later calls are ignored).
    pub fn set_observer(&self, observer: Arc<dyn TryObserver>) {
        let _ = self.inner.observer.set(observer);
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
        let (fut, _leader) = {
            let mut map = match self.inner.inflight.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            if let Some(f) = map.get(&key) {
                (f.clone(), None)
            } else {
                let inner = self.inner.clone();
                let q = q.clone();
                let f = async move { inner.resolve_uncoalesced(&q).await.map(Arc::new) }
                    .boxed()
                    .shared();
                map.insert(key.clone(), f.clone());
                // The leader takes the entry out when it is done, and also when it is dropped
                // or unwinds: a lookup that panicked must not stay in the map for every later
                // identical question to join.
                let leader = Leader {
                    map: &self.inner.inflight,
                    key: Some(key),
                };
                (f, Some(leader))
            }
        };
        fut.await
    }
}

/// Removes a coalesced lookup from the in-flight map when its leader is done with it.
struct Leader<'a> {
    map: &'a Mutex<HashMap<Key, Pending>>,
    key: Option<Key>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let mut map = match self.map.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            map.remove(&k);
        }
    }
}

impl Inner {
    async fn resolve_uncoalesced(&self, q: &Question) -> Option<UpstreamAnswer> {
        match &self.backend {
            Backend::Forward(servers) => self.forward(servers, q).await,
            Backend::Recursive(Some(r), _) => {
                let tried_at = Instant::now();
                let (result, label) = r.resolve(q, self.deadline).await;
                if let Some(o) = self.observer.get() {
                    o.tried(RECURSOR_ADDR, label, tried_at.elapsed());
                }
                result.map(|message| UpstreamAnswer {
                    message,
                    server: RECURSOR_ADDR,
                })
            }
            Backend::Recursive(None, _) => None,
        }
    }

    async fn forward(&self, servers: &[Server], q: &Question) -> Option<UpstreamAnswer> {
        let start = Instant::now();
        let mut last_reply: Option<UpstreamAnswer> = None;
        let healths: Vec<&health::Health> = servers.iter().map(|s| &*s.health).collect();
        for i in health::order(&healths, self.strategy, start) {
            let Some(s) = servers.get(i) else { continue };
            let server = s.spec.addr;
            let remaining = self.deadline.saturating_sub(start.elapsed());
            if remaining.is_zero() {
                break;
            }
            let per_try = self.timeout.min(remaining);
            let tried_at = Instant::now();
            let result = match &s.link {
                Link::Plain => plain::try_server(server, q, per_try).await,
                Link::Stream(up) => encrypted::try_server(up, q, per_try).await,
            };
            if let Some(o) = self.observer.get() {
                let label = match &result {
                    Ok(m) if m.metadata.response_code == ResponseCode::ServFail => "servfail",
                    Ok(m) if m.metadata.response_code == ResponseCode::Refused => "refused",
                    Ok(_) => "ok",
                    Err(e) => e.as_str(),
                };
                o.tried(server, label, tried_at.elapsed());
            }
            match &result {
                Ok(m)
                    if m.metadata.response_code != ResponseCode::ServFail
                        && m.metadata.response_code != ResponseCode::Refused =>
                {
                    s.health.ok(tried_at.elapsed())
                }
                _ => s.health.failed(Instant::now()),
            }
            match result {
                Ok(message) => {
                    let rcode = message.metadata.response_code;
                    let answer = UpstreamAnswer { message, server };
                    if rcode == ResponseCode::ServFail || rcode == ResponseCode::Refused {
                        tracing::debug!(upstream = %s.spec, %rcode, "upstream failed; trying the next");
                        last_reply = Some(answer);
                        continue;
                    }
                    return Some(answer);
                }
                Err(e) => {
                    tracing::debug!(upstream = %s.spec, error = e.as_str(), "upstream try failed");
                }
            }
        }
        last_reply
    }
}

/// The query sent upstream for `q`: a random id, RD=1, CD as the client set it, AD=1, and with
/// `edns` an OPT (payload [`UPSTREAM_EDNS_PAYLOAD`], DO as the client set it).
fn build_query(q: &Question, edns: bool) -> Message {
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
    m
}

/// True if `m` is a response to exactly the question `q`.
fn answers_question(m: &Message, q: &Query) -> bool {
    m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && m.queries[0].query_type() == q.query_type()
        && m.queries[0].query_class() == q.query_class()
        && m.queries[0].name().eq_ignore_root(q.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use hickory_proto::rr::{Name, RecordType};

    struct Panics;

    impl TryObserver for Panics {
        fn tried(&self, _: SocketAddr, _: &'static str, _: Duration) {
            panic!("a bug in the observer");
        }
    }

    #[tokio::test]
    async fn a_panicking_lookup_leaves_nothing_in_flight() {
        // A loopback port nobody listens on: the try fails at once and is reported.
        let addr = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .unwrap();
        let ups = Upstreams::new(
            vec![addr],
            Duration::from_millis(200),
            Duration::from_millis(500),
        );
        ups.set_observer(Arc::new(Panics));
        let q = Question {
            query: Query::query(Name::from_ascii("x.test.").unwrap(), RecordType::A),
            dnssec_ok: false,
            checking_disabled: false,
        };
        for _ in 0..2 {
            let r = std::panic::AssertUnwindSafe(ups.resolve(&q))
                .catch_unwind()
                .await;
            assert!(r.is_err(), "the lookup's panic reaches its caller");
            assert!(
                ups.inner.inflight.lock().unwrap().is_empty(),
                "the panicked lookup left the in-flight map"
            );
        }
    }
}
