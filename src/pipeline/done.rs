//! What the chain decided for one query ([`Done`]: the answer, the closed [`Outcome`] and why),
//! built through a few named constructors, and how it is recorded: one event per answer, for
//! every reader but `explain`, before the answer leaves (a client that has its answer finds it
//! counted).

use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::chain::{Cx, Passed, Source};
use crate::config::Mode;
use crate::outcome::{Outcome, Verdict};
use crate::record::{Event, Recorder};
use crate::respond::Answer;
use crate::zones::ZoneId;

/// The chain's result for one query.
#[derive(Debug)]
pub struct Done<'a> {
    /// What the client gets.
    pub answer: Answer<'a>,
    /// What happened (metric label, query-log outcome).
    pub outcome: Outcome,
    /// The rule behind it, when one matched.
    pub verdict: Option<Verdict>,
    /// The canary kind, for local bypass answers.
    pub bypass: Option<crate::outcome::Bypass>,
    /// The upstream of a fresh answer.
    pub upstream: Option<SocketAddr>,
    /// Cache consulted: hit (`Some(true)`) or miss; `None` when it was not.
    pub cache: Option<bool>,
}

impl<'a> Done<'a> {
    /// An answer decided before the cache (refused, rate-limited, local, blocked by name).
    pub fn new(answer: Answer<'a>, outcome: Outcome) -> Self {
        Self {
            answer,
            outcome,
            verdict: None,
            bypass: None,
            upstream: None,
            cache: None,
        }
    }

    /// With the rule behind it.
    pub fn because(mut self, verdict: Option<Verdict>) -> Self {
        self.verdict = verdict;
        self
    }

    /// Every upstream failed and nothing stale was at hand: SERVFAIL (a would-block verdict is
    /// kept, so the attempt still counts as a policy hit).
    pub fn failed(cx: &Cx<'a>) -> Self {
        let mut d = Self::new(Answer::Code(ResponseCode::ServFail), Outcome::Failed);
        d.verdict = policy_verdict(&cx.policy);
        d.cache = Some(false);
        d
    }

    /// An upstream answer served as it is (the answer policy found nothing to block).
    pub fn served(cx: &Cx<'a>, source: &Source, verdict: Option<Verdict>) -> Self {
        let (entry, max_ttl, stale) = match source {
            Source::Cached(e) | Source::Fresh(e, _) => (e, cx.p.cache.max_ttl(), false),
            Source::Stale(e) => (e, 0, true),
        };
        let answer = if stale {
            Answer::Stale(entry.clone())
        } else {
            Answer::Upstream {
                entry: entry.clone(),
                age: entry.age(cx.start),
                max_ttl,
            }
        };
        let would_block = verdict.as_ref().is_some_and(|v| !v.allowed);
        let watched = matches!(cx.policy, Passed::Watched(_));
        let mut d = Self::new(
            answer,
            match (source, would_block) {
                (_, true) if watched => Outcome::Watched,
                (_, true) => Outcome::WouldBlock,
                (Source::Fresh(..), false) => Outcome::Forwarded,
                (Source::Cached(_) | Source::Stale(_), false) => Outcome::Cached,
            },
        );
        d.verdict = verdict;
        d.with_source(source)
    }

    /// Notes where the answer came from (cache hit or miss, the upstream).
    pub fn with_source(mut self, source: &Source) -> Self {
        self.cache = Some(matches!(source, Source::Cached(_) | Source::Stale(_)));
        if let Source::Fresh(_, server) = source {
            self.upstream = Some(*server);
        }
        self
    }

    /// The response code recorded (a dropped query counts as REFUSED).
    pub fn rcode(&self) -> ResponseCode {
        match self.answer {
            Answer::Drop => ResponseCode::Refused,
            _ => self.answer.rcode(),
        }
    }
}

/// The verdict a name-policy pass carries into the answer.
pub fn policy_verdict(p: &Passed) -> Option<Verdict> {
    match p {
        Passed::Allowed(v) | Passed::WouldBlock(v) | Passed::Watched(v) => Some(v.clone()),
        Passed::Off | Passed::NoRule => None,
    }
}

/// Records one answered query.
pub fn record(recorder: &Recorder, cx: &Cx<'_>, done: &Done<'_>) {
    let zone = cx.zone;
    recorder.record(&Event {
        zone: zone.map(|(_, z)| &*z.name),
        zone_id: zone.map(|(id, _)| id),
        client: cx.client,
        qname: cx.q.name,
        qtype: RecordType::from(cx.q.qtype),
        outcome: done.outcome,
        verdict: done.verdict.as_ref(),
        mode: zone.map_or(Mode::Off, |(_, z)| z.mode),
        bypass: done.bypass,
        rcode: done.rcode(),
        upstream: done.upstream,
        cache: done.cache,
        elapsed: cx.start.elapsed(),
    });
}

/// Records a request answered before the chain (FORMERR, NOTIMP, BADVERS).
pub fn record_invalid(
    recorder: &Recorder,
    zone: Option<(ZoneId, &crate::policy::ZonePolicy)>,
    client: std::net::IpAddr,
    qname: &str,
    qtype: RecordType,
    rcode: ResponseCode,
    start: std::time::Instant,
) {
    recorder.record(&Event {
        zone: zone.map(|(_, z)| &*z.name),
        zone_id: zone.map(|(id, _)| id),
        client,
        qname,
        qtype,
        outcome: Outcome::Invalid,
        verdict: None,
        mode: zone.map_or(Mode::Off, |(_, z)| z.mode),
        bypass: None,
        rcode,
        upstream: None,
        cache: None,
        elapsed: start.elapsed(),
    });
}
