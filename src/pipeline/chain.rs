//! The chain itself: [`CHAIN`], the ordered list of stages every reader runs (the UDP fast path,
//! the full path for UDP and TCP, and `explain`), the [`Flow`] a stage returns, the per-query
//! context [`Cx`] the stages read, and the driver that walks the list.
//!
//! Contract of a stage (see [`Flow`]): it reads the context and returns what happens next. It
//! never writes shared flags: what it found for the stages after it ([`Found`]) is handed back
//! to the driver, which keeps it in the one slot for that kind of fact. A block is an
//! [`Flow::Answer`], so a blocked name can never reach the upstream stage.
//!
//! Around the chain: decoding (the request's bytes into a [`Query`], with FORMERR / NOTIMP /
//! BADVERS answered before any stage) comes first; encoding ([`crate::respond::encode`]) and
//! recording ([`super::done`]) come after.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use super::Pipeline;
use super::done::Done;
use super::stage;
use super::trace::Trace;
use crate::cache::CachedAnswer;
use crate::outcome::Verdict;
use crate::policy::ZonePolicy;
use crate::snapshot::Snapshot;
use crate::wire::Query;
use crate::zones::ZoneId;

/// One stage of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Client address → zone; a client in no zone is refused.
    Zone,
    /// The zone's per-client token bucket.
    RateLimit,
    /// Bypass canaries, answered locally.
    Canary,
    /// The zone's allow and block lists against the query name.
    NamePolicy,
    /// Locally served zones (RFC 6303 reverse zones, special-use names), answered locally.
    Local,
    /// ANY, answered locally (RFC 8482).
    Any,
    /// The answer cache.
    Cache,
    /// The upstream servers (the only stage that waits on the network).
    Upstream,
    /// Uncloaking: the answer's alias targets against the same policy; builds the final answer.
    AnswerPolicy,
}

/// The chain, in order. Why each stage sits where it does:
pub const CHAIN: [Step; 9] = [
    // Everything after this is per-zone policy; a client in no zone is refused here, before it
    // can cost anything (pixelguard is never an open resolver).
    Step::Zone,
    // Before any work is spent on the query, and per zone (limits are a zone's setting).
    Step::RateLimit,
    // Canaries must be answered by us whatever the lists say, and never forwarded (an upstream
    // would answer them "positively" and the bypass would switch on).
    Step::Canary,
    // Before the cache and the upstream: a blocked name must never leave.
    Step::NamePolicy,
    // After the name policy, so that a listed name (a `wpad` rule, a tracker under `local.`)
    // keeps the zone's block response and attribution, and a log-mode hit is still recorded;
    // before ANY, the cache and the upstream, so that a private reverse zone or a special-use
    // name is never forwarded (the upstream would learn the internal network) and ANY below a
    // local zone gets the zone's answer. A forward rule covering the name wins (checked here).
    Step::Local,
    // After the name policy, so that a blocked name stays blocked for every type; before the
    // cache, so that pixelguard is never an amplifier.
    Step::Any,
    // Raw upstream answers only (policy is per zone and applied on every read).
    Step::Cache,
    // On a miss only.
    Step::Upstream,
    // On fresh, cached and stale answers alike, since policy is per zone: a CNAME / SVCB alias
    // into a tracker blocks the original name.
    Step::AnswerPolicy,
];

impl Step {
    /// The stage's name in traces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Zone => "zone",
            Self::RateLimit => "ratelimit",
            Self::Canary => "canary",
            Self::NamePolicy => "policy",
            Self::Local => "local",
            Self::Any => "any",
            Self::Cache => "cache",
            Self::Upstream => "upstream",
            Self::AnswerPolicy => "uncloak",
        }
    }

    fn run<'a>(self, cx: &Cx<'a>) -> Flow<'a> {
        match self {
            Self::Zone => stage::zone::run(cx),
            Self::RateLimit => stage::ratelimit::run(cx),
            Self::Canary => stage::canary::run(cx),
            Self::NamePolicy => stage::name_policy::run(cx),
            Self::Local => stage::local::run(cx),
            Self::Any => stage::any::run(cx),
            Self::Cache => stage::cache::run(cx),
            Self::Upstream => stage::upstream::run(cx),
            Self::AnswerPolicy => stage::answer_policy::run(cx),
        }
    }
}

/// What a stage decided.
pub enum Flow<'a> {
    /// Nothing to add: the next stage runs.
    Continue,
    /// A fact for the stages after this one; the next stage runs.
    Found(Found<'a>),
    /// The chain ends with this answer.
    Answer(Done<'a>),
    /// The stage must wait on the network: the fast path hands the query to the full path, the
    /// full path awaits the stage's asynchronous half, `explain` without `--resolve` stops.
    Wait,
}

/// Facts a stage hands to the stages after it (one slot each in [`Cx`]).
pub enum Found<'a> {
    /// The client's zone.
    Zone(ZoneId, &'a ZonePolicy),
    /// The name policy let the query through, and why.
    Policy(Passed),
    /// An upstream answer to serve.
    Source(Source),
}

/// Why the name policy let a query through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Passed {
    /// The zone's mode is `off`: no policy at all (answer targets are not checked either).
    #[default]
    Off,
    /// No rule matched.
    NoRule,
    /// An allow rule matched (answer targets are not checked).
    Allowed(Verdict),
    /// A block rule matched in log mode (or only a list on trial matched): answered normally,
    /// recorded as would-block.
    WouldBlock(Verdict),
    /// A watched list matched: answered normally, recorded as watched.
    Watched(Verdict),
}

/// Where the upstream answer comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A fresh cache entry.
    Cached(Arc<CachedAnswer>),
    /// Just received from this upstream.
    Fresh(Arc<CachedAnswer>, SocketAddr),
    /// Expired, served because every upstream failed (RFC 8767).
    Stale(Arc<CachedAnswer>),
}

/// Who runs the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The UDP receive thread: synchronous, no task, hands anything that must wait onward.
    Fast,
    /// The full path (a task per query): may wait on upstreams.
    Full,
    /// `explain`: no side effects (no token taken, nothing cached, nothing recorded); asks the
    /// upstream only with `resolve`.
    Explain {
        /// Ask the upstream on a cache miss (`explain --resolve`).
        resolve: bool,
    },
}

/// What the stages of one query read.
pub struct Cx<'a> {
    /// The shared state of the request path.
    pub p: &'a Pipeline,
    /// The snapshot this query runs on, start to end.
    pub snap: &'a Snapshot,
    /// The request.
    pub q: Query<'a>,
    /// The client's address.
    pub client: IpAddr,
    /// When the request was received.
    pub start: Instant,
    /// Who runs the chain.
    pub reader: Reader,
    /// The fast path already took this query's rate-limit token.
    pub admitted: bool,
    /// Explain's trace (`None` when serving).
    pub trace: Option<&'a Trace>,
    /// Filled by the driver from [`Found::Zone`].
    pub zone: Option<(ZoneId, &'a ZonePolicy)>,
    /// Filled by the driver from [`Found::Policy`].
    pub policy: Passed,
    /// Filled by the driver from [`Found::Source`].
    pub source: Option<Source>,
}

impl<'a> Cx<'a> {
    /// A context before the first stage.
    pub fn new(p: &'a Pipeline, snap: &'a Snapshot, q: Query<'a>, client: IpAddr) -> Self {
        Self {
            p,
            snap,
            q,
            client,
            start: Instant::now(),
            reader: Reader::Full,
            admitted: false,
            trace: None,
            zone: None,
            policy: Passed::Off,
            source: None,
        }
    }

    /// The zone (every stage after [`Step::Zone`] has one).
    pub fn zone(&self) -> Option<&'a ZonePolicy> {
        self.zone.map(|(_, z)| z)
    }

    /// Adds a line to explain's trace; the text is built only when explaining.
    pub fn note(&self, step: Step, text: impl FnOnce() -> String) {
        if let Some(t) = self.trace {
            t.line(step.name(), text());
        }
    }

    /// Lets explain's trace record structured detail; runs only when explaining.
    pub fn detail(&self, f: impl FnOnce(&Trace)) {
        if let Some(t) = self.trace {
            f(t);
        }
    }

    fn keep(&mut self, found: Found<'a>) {
        match found {
            Found::Zone(id, z) => self.zone = Some((id, z)),
            Found::Policy(p) => self.policy = p,
            Found::Source(s) => self.source = Some(s),
        }
    }
}

/// Runs the synchronous stages from `from`: the answer, or `Err(i)` when stage `i` must wait.
pub fn drive<'a>(cx: &mut Cx<'a>, from: usize) -> Result<Done<'a>, usize> {
    for (i, step) in CHAIN.iter().enumerate().skip(from) {
        match step.run(cx) {
            Flow::Continue => {}
            Flow::Found(f) => cx.keep(f),
            Flow::Answer(d) => return Ok(d),
            Flow::Wait => return Err(i),
        }
    }
    // The last stage always answers; reaching here is a bug, answered as SERVFAIL.
    Ok(Done::failed(cx))
}

/// Runs the whole chain, waiting where a stage must: the full path and `explain`.
pub async fn drive_async<'a>(cx: &mut Cx<'a>) -> Done<'a> {
    let mut from = 0;
    loop {
        match drive(cx, from) {
            Ok(done) => return done,
            Err(i) => {
                // Only the upstream stage waits.
                debug_assert_eq!(CHAIN[i], Step::Upstream);
                match stage::upstream::wait(cx).await {
                    Flow::Found(f) => cx.keep(f),
                    Flow::Answer(d) => return d,
                    Flow::Continue | Flow::Wait => {}
                }
                from = i + 1;
            }
        }
    }
}
