//! The request path: one chain of stages ([`chain::CHAIN`]), run by every reader. The UDP fast
//! path ([`Pipeline::fast_udp`]) runs it synchronously on the receive thread and hands a query
//! onward only where a stage must wait on the network; the full path ([`Pipeline::answer`], for
//! UDP and TCP) runs it on a task and waits; `explain` ([`Pipeline::explain`]) runs it with a
//! trace and without side effects. All answers leave through the one encoder
//! ([`crate::respond::encode`]).

pub mod chain;
pub mod decode;
pub mod done;
pub mod stage;
pub mod trace;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::rr::RecordType;

use crate::cache::Cache;
use crate::record::{Recorder, Scope};
use crate::respond::{self, Answer};
use crate::snapshot::Snapshot;
use crate::wire;
use chain::{Cx, Reader};
use decode::Decode;
use done::Done;
use trace::Trace;

/// The shared state of the request path.
pub struct Pipeline {
    /// Upstream queries allowed in flight at once.
    pub upstream_slots: tokio::sync::Semaphore,
    /// Per-client token buckets.
    pub limiter: crate::ratelimit::RateLimiter,
    /// The current snapshot (swapped whole on reload).
    pub snapshot: ArcSwap<Snapshot>,
    /// The answer cache (survives reloads).
    pub cache: Arc<Cache>,
    /// Keys being refreshed in the background after a stale answer (bounded).
    refreshing: Arc<std::sync::Mutex<std::collections::HashSet<Box<[u8]>>>>,
    /// Counters and the policy-hit log.
    pub recorder: Recorder,
}

/// The parts of a snapshot that recording reads.
pub fn scope(s: &Snapshot) -> Scope<'_> {
    Scope {
        zones: &s.zones,
        zone_configs: &s.config.zones,
        exceptions: &s.config.exceptions,
        lists: &s.lists,
        upstream_groups: std::iter::once((crate::config::DEFAULT_GROUP, s.upstreams.servers()))
            .chain(
                s.forwards
                    .groups()
                    .iter()
                    .map(|g| (&*g.name, g.upstreams.servers())),
            )
            .collect(),
        query_log: s.config.query_log.as_ref(),
    }
}

/// Attaches an observer to every upstream group of a snapshot (`[upstream]` and each forward
/// rule), so every try is counted under its group.
fn observe_upstreams(recorder: &Recorder, s: &Snapshot) {
    let ups = &s.upstreams;
    ups.set_observer(recorder.upstream_observer(crate::config::DEFAULT_GROUP, ups.servers()));
    for g in s.forwards.groups() {
        let o = recorder.upstream_observer(&g.name, g.upstreams.servers());
        g.upstreams.set_observer(o);
    }
}

/// What explaining one query found: the trace of the chain, and the answer it ended with.
pub struct Explained {
    /// What each stage saw and decided.
    pub trace: Trace,
    /// The outcome the server would record.
    pub outcome: crate::outcome::Outcome,
    /// The bytes the client would get (empty when nothing is sent or the upstream was not
    /// asked).
    pub wire: Vec<u8>,
    /// The chain stopped before the upstream was asked (explain without `--resolve`).
    pub unresolved: bool,
    /// The rate limit drops the query: nothing is sent.
    pub dropped: bool,
}

impl Pipeline {
    /// A pipeline over a first snapshot.
    pub fn new(snapshot: Snapshot) -> Self {
        let cache = Cache::new(&snapshot.config.cache);
        let max_inflight = snapshot.config.upstream.max_inflight;
        let recorder = Recorder::new();
        recorder.install(&scope(&snapshot), None);
        observe_upstreams(&recorder, &snapshot);
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            cache: Arc::new(cache),
            refreshing: Arc::default(),
            recorder,
            upstream_slots: tokio::sync::Semaphore::new(max_inflight),
            limiter: crate::ratelimit::RateLimiter::new(crate::ratelimit::DEFAULT_MAX_CLIENTS),
        }
    }

    /// Swaps in a new snapshot; in-flight queries finish on the old one.
    pub fn swap(&self, snapshot: Snapshot) {
        self.cache.reconfigure(&snapshot.config.cache);
        let prev = self.snapshot.load_full();
        self.recorder.install(&scope(&snapshot), Some(&prev.lists));
        observe_upstreams(&self.recorder, &snapshot);
        self.snapshot.store(Arc::new(snapshot));
    }

    /// The UDP fast path: runs the chain on the receive thread, with no task and no allocation
    /// on a cache hit, and writes the answer into `out` (empty: send nothing). Returns false
    /// when the query must take the full path (a shape the strict parser does not take, or a
    /// stage that must wait on an upstream); `admitted` then says whether the rate-limit token
    /// was already taken here.
    pub fn fast_udp(&self, raw: &[u8], client: IpAddr, out: &mut Vec<u8>) -> FastPath {
        let Some(parsed) = wire::parse_query(raw) else {
            return FastPath::Full { admitted: false };
        };
        let q = parsed.view();
        let snap = self.snapshot.load();
        let client = policy_client(&snap, client, &q);
        let mut cx = Cx::new(self, &snap, q, client);
        cx.reader = Reader::Fast;
        match chain::drive(&mut cx, 0) {
            Ok(done) => {
                respond::encode(out, &q, &done.answer, q.udp_limit());
                done::record(&self.recorder, &cx, &done);
                FastPath::Answered
            }
            Err(_) => FastPath::Full {
                admitted: cx.zone.is_some_and(|(_, z)| z.rate_limit.qps > 0.0),
            },
        }
    }

    /// The full path, for UDP and TCP: decodes any request, runs the chain (waiting on
    /// upstreams where needed) and returns the bytes to send (`None`: send nothing).
    pub async fn answer(
        &self,
        raw: &[u8],
        src: SocketAddr,
        tcp: bool,
        admitted: bool,
    ) -> Option<Vec<u8>> {
        let start = Instant::now();
        let d = match decode::decode(raw, src, tcp) {
            Decode::Request(d) => d,
            Decode::Reply(bytes) => return Some(bytes),
            Decode::Ignore => return None,
        };
        let q = d.view();
        let limit = if tcp {
            usize::from(u16::MAX)
        } else {
            q.udp_limit()
        };
        let snap = self.snapshot.load_full();
        let mut out = Vec::with_capacity(512);
        if let Some(rcode) = d.invalid {
            respond::encode(&mut out, &q, &Answer::Code(rcode), limit);
            done::record_invalid(
                &self.recorder,
                snap.zone_of(src.ip()),
                src.ip(),
                q.name,
                RecordType::from(q.qtype),
                rcode,
                start,
            );
            return Some(out);
        }
        let client = policy_client(&snap, src.ip(), &q);
        let mut cx = Cx::new(self, &snap, q, client);
        cx.start = start;
        cx.admitted = admitted;
        let done = chain::drive_async(&mut cx).await;
        respond::encode(&mut out, &q, &done.answer, limit);
        // Recorded before the answer leaves: a client that has its answer finds it counted.
        done::record(&self.recorder, &cx, &done);
        (!out.is_empty()).then_some(out)
    }

    /// Runs the chain for `name`/`qtype` from `client` as an EDNS client (payload 1232, DO=0)
    /// would ask it, with a trace and no side effects: no rate-limit token taken, nothing cached
    /// or recorded; the upstream is asked on a cache miss only with `resolve`.
    pub async fn explain(
        &self,
        client: IpAddr,
        name: &hickory_proto::rr::Name,
        qtype: RecordType,
        resolve: bool,
    ) -> Explained {
        let trace = Trace::default();
        let mut m = hickory_proto::op::Message::new(
            0,
            hickory_proto::op::MessageType::Query,
            hickory_proto::op::OpCode::Query,
        );
        m.metadata.recursion_desired = true;
        m.add_query(hickory_proto::op::Query::query(name.clone(), qtype));
        let mut e = hickory_proto::op::Edns::new();
        e.set_max_payload(respond::MAX_UDP_PAYLOAD);
        m.set_edns(e);
        let raw = m.to_vec().unwrap_or_default();
        let src = SocketAddr::new(client, 0);
        let Decode::Request(d) = decode::decode(&raw, src, false) else {
            return Explained {
                trace,
                outcome: crate::outcome::Outcome::Invalid,
                wire: Vec::new(),
                unresolved: false,
                dropped: false,
            };
        };
        let q = d.view();
        let snap = self.snapshot.load_full();
        let mut cx = Cx::new(self, &snap, q, client);
        cx.reader = Reader::Explain { resolve };
        cx.trace = Some(&trace);
        let done: Done<'_> = chain::drive_async(&mut cx).await;
        let mut out = Vec::new();
        respond::encode(&mut out, &q, &done.answer, q.udp_limit());
        let unresolved = matches!(done.answer, Answer::Unresolved);
        let dropped = matches!(done.answer, Answer::Drop);
        let outcome = done.outcome;
        drop(done);
        drop(cx);
        Explained {
            trace,
            outcome,
            wire: out,
            unresolved,
            dropped,
        }
    }
}

/// The client as zone, rate limit, query log and explain see it: the address of the request's
/// EDNS Client Subnet when `peer` (the sender, or the source a PROXY header named) is a trusted
/// forwarder (`server.client_subnet_from`) and the subnet is not /0 ("no client information",
/// RFC 7871 §7.1.2); else `peer` itself. Costs nothing for a request without ECS.
pub fn policy_client(snap: &Snapshot, peer: IpAddr, q: &wire::Query<'_>) -> IpAddr {
    match q.ecs {
        Some(e)
            if e.source_prefix() > 0
                && snap
                    .config
                    .server
                    .client_subnet_from
                    .iter()
                    .any(|n| n.contains(&peer)) =>
        {
            e.ip()
        }
        _ => peer,
    }
}

/// What the fast path did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastPath {
    /// The answer is in `out` (empty: send nothing).
    Answered,
    /// Hand the datagram to [`Pipeline::answer`].
    Full {
        /// The rate-limit token was taken already.
        admitted: bool,
    },
}

/// The entry point the listeners hold.
#[derive(Clone)]
pub struct Handler(pub Arc<Pipeline>);
