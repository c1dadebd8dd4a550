//! Upstream, on a cache miss: the only stage that waits on the network. Its synchronous half
//! ([`run`]) only says whether it is needed; [`wait`] picks the server group (the forward rule
//! with the longest domain covering the name, `[upstream]` otherwise), asks it (a bounded
//! number of queries in flight), stores the answer in the cache under its question whichever
//! group fetched it, and falls back to a stale answer (RFC 8767) when every server of the group
//! fails, refreshing it in the background from the same group. A rule's names never fall back
//! to `[upstream]`: the internal names of an organisation must not reach a public resolver.
//! `explain --resolve` asks the servers too but stores nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::cache::{Cache, CacheKey, CachedAnswer};
use crate::outcome::Outcome;
use crate::pipeline::Pipeline;
use crate::pipeline::chain::{Cx, Flow, Found, Passed, Reader, Source, Step};
use crate::pipeline::done::Done;
use crate::respond::Answer;
use crate::upstream::{Question, Upstreams};

/// Passes a cached answer on; otherwise the query must wait for an upstream.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    if cx.source.is_some() {
        return Flow::Continue;
    }
    Flow::Wait
}

/// Asks the upstreams.
pub async fn wait<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let route = cx.snap.forwards.route(cx.q.name);
    if let Some(r) = route {
        cx.note(Step::Upstream, || {
            format!(
                "forward rule {} (domain {}): sent to {}, never to [upstream]",
                r.group.name,
                r.domain,
                r.group.upstreams.describe().join(", ")
            )
        });
        cx.detail(|t| {
            t.set(
                "forward",
                serde_json::json!({
                    "rule": &*r.group.name,
                    "domain": r.domain,
                    "servers": r.group.upstreams.servers().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                }),
            )
        });
    }
    let upstreams = route.map_or(&cx.snap.upstreams, |r| &r.group.upstreams);
    let serving = match cx.reader {
        Reader::Explain { resolve: false } => {
            cx.note(Step::Upstream, || {
                "not asked (explain --resolve asks it): the client gets the upstream's answer"
                    .into()
            });
            let outcome = match cx.policy {
                Passed::WouldBlock(_) => Outcome::WouldBlock,
                _ => Outcome::Forwarded,
            };
            let d = Done::new(Answer::Unresolved, outcome);
            return Flow::Answer(d.because(crate::pipeline::done::policy_verdict(&cx.policy)));
        }
        Reader::Explain { resolve: true } => false,
        Reader::Fast => return Flow::Wait,
        Reader::Full => true,
    };
    let q = &cx.q;
    let Ok(query) = hickory_proto::op::Query::read(&mut BinDecoder::new(q.question)) else {
        return Flow::Answer(Done::failed(cx));
    };
    let question = Question {
        query,
        dnssec_ok: q.dnssec_ok(),
        checking_disabled: q.cd,
    };
    let key = CacheKey::new(q.name, q.qtype, q.qclass, q.dnssec_ok(), q.cd);
    let p = cx.p;
    let answer = if serving {
        // A bounded number of upstream queries in flight: past it, a query is served stale or
        // SERVFAIL at once instead of queueing without limit.
        match p.upstream_slots.try_acquire() {
            Ok(_permit) => upstreams.resolve(&question).await,
            Err(_) => None,
        }
    } else {
        upstreams.resolve(&question).await
    };
    let failed = answer
        .as_ref()
        .is_none_or(|a| a.message.metadata.response_code == ResponseCode::ServFail);
    let now = Instant::now();
    if failed && let Some(stale) = p.cache.get_stale(key.as_bytes(), now) {
        cx.note(Step::Upstream, || {
            "every upstream failed: serving the expired answer (RFC 8767)".into()
        });
        if serving {
            refresh_in_background(p, &key, &question, upstreams);
        }
        return Flow::Found(Found::Source(Source::Stale(stale)));
    }
    let Some(ans) = answer else {
        cx.note(Step::Upstream, || {
            "every upstream failed: the client gets SERVFAIL".into()
        });
        return Flow::Answer(Done::failed(cx));
    };
    let qtype = RecordType::from(q.qtype);
    let Some(entry) = CachedAnswer::new(&ans.message, q.dnssec_ok(), qtype, now, &p.cache.config())
    else {
        return Flow::Answer(Done::failed(cx));
    };
    cx.note(Step::Upstream, || {
        format!(
            "{} answered {} with {} record(s); cacheable for {} s",
            ans.server,
            crate::respond::rcode_name(ans.message.metadata.response_code),
            ans.message.answers.len(),
            entry.ttl
        )
    });
    if serving {
        p.cache.put(key, entry.clone());
    }
    Flow::Found(Found::Source(Source::Fresh(entry, ans.server)))
}

/// After a stale answer (RFC 8767), keeps trying the upstreams in the background (after 1 s,
/// doubling to 30 s, six tries) and puts a fresh answer in the cache as soon as one answers, so
/// clients get fresh data once upstreams return. At most 256 names at a time, one task each.
fn refresh_in_background(p: &Pipeline, key: &CacheKey, q: &Question, upstreams: &Upstreams) {
    {
        let mut set = match p.refreshing.lock() {
            Ok(s) => s,
            Err(e) => e.into_inner(),
        };
        if set.len() >= 256 || !set.insert(key.as_bytes().into()) {
            return;
        }
    }
    let (cache, set, key, q, ups): (Arc<Cache>, _, _, _, _) = (
        p.cache.clone(),
        p.refreshing.clone(),
        key.clone(),
        q.clone(),
        upstreams.clone(),
    );
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(1);
        for _ in 0..6 {
            tokio::time::sleep(wait).await;
            if let Some(ans) = ups.resolve(&q).await
                && ans.message.metadata.response_code != ResponseCode::ServFail
            {
                cache.insert(key.clone(), &ans.message, Instant::now());
                break;
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
        if let Ok(mut s) = set.lock() {
            s.remove(key.as_bytes());
        }
    });
}
