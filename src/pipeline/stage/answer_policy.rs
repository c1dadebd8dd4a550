//! Answer policy (uncloaking): every CNAME / DNAME target and HTTPS / SVCB alias target of the
//! answer is checked against the zone's policy and the catalogue's cloak targets; a hit blocks
//! the original name and is attributed to the cloaked vendor. Runs on fresh, cached and stale
//! answers alike, since policy differs per zone. The last stage: it always answers.

use crate::config::Mode;
use crate::matcher::QueryName;
use crate::outcome::{Outcome, Verdict};
use crate::pipeline::chain::{Cx, Flow, Passed, Source};
use crate::pipeline::done::{Done, policy_verdict};
use crate::policy::{self, Decision, RuleAction};
use crate::respond::{Answer, Blocked};

/// Checks the answer's alias targets, then serves the answer (or the block).
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let (Some(source), Some(zone)) = (cx.source.as_ref(), cx.zone()) else {
        return Flow::Answer(Done::failed(cx));
    };
    let entry = match source {
        Source::Cached(e) | Source::Fresh(e, _) | Source::Stale(e) => e,
    };
    if cx.policy != Passed::NoRule || !zone.uncloak {
        return Flow::Answer(Done::served(cx, source, policy_verdict(&cx.policy)));
    }
    cx.detail(|t| t.uncloak(cx.snap, zone, &entry.wire));
    let mut hit: Option<Verdict> = None;
    for target in &entry.wire.alias_targets {
        let tq = QueryName::new(target.as_bytes());
        if let Some(Decision::Block(mut v, _)) = policy::decide_target(&cx.snap.lists, zone, &tq) {
            v.cloaked_via = Some(target.to_string());
            hit = Some(v);
            break;
        }
        // An allowed target (e.g. the organisation's own CDN) stops nothing else.
    }
    let Some(v) = hit else {
        return Flow::Answer(Done::served(cx, source, None));
    };
    let enforce = zone.mode == Mode::Enforce;
    cx.detail(|t| {
        t.line(
            "decision",
            format!(
                "{}: a CNAME-cloaked tracker",
                if enforce {
                    "blocked (the zone's block response, for the original name)"
                } else {
                    "would block (log mode or uncloak off)"
                }
            ),
        );
        t.set(
            "decision",
            serde_json::json!({
                "kind": if enforce { "blocked" } else { "would_block" },
                "list": &*v.list_name,
                "rule": v.rule,
                "vendor": v.vendor.as_deref(),
                "category": v.category,
                "cloaked_via": v.cloaked_via,
                "ede": v.ede_text(),
            }),
        );
    });
    if !enforce {
        return Flow::Answer(Done::served(cx, source, Some(v)));
    }
    let blocked = Blocked {
        response: &zone.response,
        action: RuleAction::Block,
        ttl: zone.block_ttl_secs(),
        soa_labels: None,
        ede: v.ede_text(),
    };
    let done = Done::new(Answer::Blocked(blocked), Outcome::Blocked).because(Some(v));
    Flow::Answer(done.with_source(source))
}
