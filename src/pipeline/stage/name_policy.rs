//! Name policy: the zone's allow lists, then its block lists, against the query name and each of
//! its parents (pure, synchronous, no allocation on a miss). Before the cache and the upstream,
//! so that a blocked name never leaves. In `enforce` a block rule answers now; in `log` the query
//! goes on and is recorded as would-block; an allow rule lets it through unchecked.

use serde_json::json;

use crate::config::Mode;
use crate::matcher::QueryName;
use crate::outcome::{Outcome, Verdict};
use crate::pipeline::chain::{Cx, Flow, Found, Passed};
use crate::pipeline::done::Done;
use crate::policy::{self, Decision};
use crate::respond::{Answer, Blocked};

/// Decides the query name for the client's zone.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let Some(zone) = cx.zone() else {
        return Flow::Continue;
    };
    let q = QueryName::new(cx.q.name.as_bytes());
    cx.detail(|t| t.matches(cx.snap, zone, &q));
    if zone.mode == Mode::Off {
        cx.detail(|t| {
            t.line("decision", "mode off: no policy; resolved normally".into());
            t.set(
                "decision",
                json!({ "kind": "off", "reason": "mode off: no policy" }),
            );
        });
        return Flow::Found(Found::Policy(Passed::Off));
    }
    match policy::decide(&cx.snap.lists, zone, &q) {
        Some(Decision::Block(v, action)) if zone.mode == Mode::Enforce => {
            cx.detail(|t| decided(t, &v, "blocked", ""));
            let blocked = Blocked {
                response: &zone.response,
                action,
                ttl: zone.block_ttl_secs(),
                // The SOA owner is the matched rule's name, spelt as the client spelt it.
                soa_labels: Some(v.rule.split('.').count()),
                ede: v.ede_text(),
            };
            Flow::Answer(Done::new(Answer::Blocked(blocked), Outcome::Blocked).because(Some(v)))
        }
        Some(Decision::Block(v, _)) => {
            cx.detail(|t| {
                let text = format!(
                    "; log mode: resolved normally; recorded as would-block ({})",
                    v.ede_text()
                );
                decided(t, &v, "would_block", &text);
            });
            Flow::Found(Found::Policy(Passed::WouldBlock(v)))
        }
        Some(Decision::Allow(v)) => {
            cx.detail(|t| {
                t.line(
                    "decision",
                    format!(
                        "allowed by list {} rule {}: resolved normally through the upstream",
                        v.list_name, v.rule
                    ),
                );
                t.set("decision", with_kind(verdict_json(&v), "allowed"));
            });
            Flow::Found(Found::Policy(Passed::Allowed(v)))
        }
        None => {
            cx.detail(|t| {
                let reason = if super::local::serves(cx) {
                    "answered by the locally served zones (below), never forwarded"
                } else if zone.uncloak {
                    "resolved through the upstream; its answer's CNAME/SVCB targets are then checked"
                } else {
                    "resolved through the upstream (uncloaking is off in this zone)"
                };
                t.line("decision", format!("not blocked: {reason}"));
                t.set("decision", json!({ "kind": "not_blocked", "reason": reason }));
            });
            Flow::Found(Found::Policy(Passed::NoRule))
        }
    }
}

fn decided(t: &crate::pipeline::trace::Trace, v: &Verdict, kind: &str, more: &str) {
    t.line(
        "decision",
        format!(
            "blocked by list {} rule {} (most specific match wins){more}",
            v.list_name, v.rule
        ),
    );
    let mut d = with_kind(verdict_json(v), kind);
    d["ede"] = json!(v.ede_text());
    t.set("decision", d);
}

fn verdict_json(v: &Verdict) -> serde_json::Value {
    json!({
        "list": &*v.list_name,
        "rule": v.rule,
        "vendor": v.vendor.as_deref(),
        "category": v.category,
    })
}

fn with_kind(mut v: serde_json::Value, kind: &str) -> serde_json::Value {
    v["kind"] = json!(kind);
    v
}
