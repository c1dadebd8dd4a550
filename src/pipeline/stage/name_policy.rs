//! Name policy: the zone's allow lists, then its block lists, against the query name and each of
//! its parents (pure, synchronous, no allocation on a miss). Before the cache and the upstream,
//! so that a blocked name never leaves. In `enforce` a block rule answers now; in `log` the query
//! goes on and is recorded as would-block; an allow rule (or `allow_vendors`, or an exception in
//! force) lets it through unchecked; a watched name goes on and is recorded as watched; a name
//! only a list on trial matches goes on and is recorded as would-block (see `policy` for the
//! precedence).

use serde_json::json;

use crate::config::Mode;
use crate::matcher::QueryName;
use crate::outcome::{Outcome, Verdict};
use crate::pipeline::chain::{Cx, Flow, Found, Passed};
use crate::pipeline::done::Done;
use crate::policy::{self, Decision, ZonePolicy};
use crate::respond::{Answer, Blocked};

/// Decides the query name for the client's zone.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let Some(zone) = cx.zone() else {
        return Flow::Continue;
    };
    let q = QueryName::new(cx.q.name.as_bytes());
    cx.detail(|t| {
        t.matches(cx.snap, zone, &q);
        let governed = !(zone.exceptions.is_empty()
            && zone.allow_vendors.is_empty()
            && zone.block_vendors.is_empty()
            && zone.watch.is_empty()
            && zone.trial.is_empty());
        if governed {
            t.line("order", PRECEDENCE.into());
        }
    });
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
            cx.detail(|t| {
                ended(cx, t, zone, &q, &v);
                decided(t, &v, "blocked", "");
            });
            let blocked = Blocked {
                response: &zone.response,
                action,
                ttl: zone.block_ttl_secs(),
                // The SOA owner is the matched rule's name, spelt as the client spelt it.
                soa_labels: Some(v.rule.bytes().filter(|&b| b == b'.').count() + 1),
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
            cx.detail(|t| allowed(cx, t, zone, &v));
            Flow::Found(Found::Policy(Passed::Allowed(v)))
        }
        Some(Decision::Watch(v)) => {
            cx.detail(|t| {
                t.line(
                    "decision",
                    format!(
                        "watched by list {} rule {}: resolved normally, recorded as watched (never blocked)",
                        v.list_name, v.rule
                    ),
                );
                t.set("decision", with_kind(verdict_json(&v), "watched"));
            });
            Flow::Found(Found::Policy(Passed::Watched(v)))
        }
        Some(Decision::Trial(v)) => {
            cx.detail(|t| {
                t.line(
                    "decision",
                    format!(
                        "would block: list {} (on trial, mode log) rule {}; resolved normally, recorded as would-block ({})",
                        v.list_name,
                        v.rule,
                        v.ede_text()
                    ),
                );
                let mut d = with_kind(verdict_json(&v), "would_block");
                d["trial"] = json!(true);
                t.set("decision", d);
            });
            Flow::Found(Found::Policy(Passed::WouldBlock(v)))
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

/// The precedence explain shows in zones with exceptions, vendor keys, watch or trials.
const PRECEDENCE: &str = "allow lists > allow_vendors > exceptions in force > watch > block lists and block_vendors > lists on trial (log)";

/// Notes the zone's exceptions that cover a blocked name but have ended.
fn ended(
    cx: &Cx<'_>,
    t: &crate::pipeline::trace::Trace,
    zone: &ZonePolicy,
    q: &QueryName,
    v: &Verdict,
) {
    for e in zone.exceptions.iter().filter(|e| e.covers(q.as_str(), v)) {
        if let Some(c) = cx.snap.config.exceptions.get(e.index) {
            t.line(
                "exception",
                format!(
                    "{} (reason: {}) ended {}: no longer applied",
                    c.label(),
                    c.reason,
                    humantime::format_rfc3339_seconds(c.until)
                ),
            );
        }
    }
}

/// Explains an allowed name: by an allow list, by `allow_vendors`, or by an exception (with its
/// reason, ticket and days left).
fn allowed(cx: &Cx<'_>, t: &crate::pipeline::trace::Trace, zone: &ZonePolicy, v: &Verdict) {
    let mut d = with_kind(verdict_json(v), "allowed");
    let exception = v.exception.as_ref().and_then(|label| {
        let e = zone.exceptions.iter().find(|e| e.label == *label)?;
        cx.snap.config.exceptions.get(e.index)
    });
    let text = if let Some(e) = exception {
        let now = std::time::SystemTime::now();
        d["exception"] = json!({
            "label": e.label(),
            "reason": e.reason,
            "ticket": e.ticket,
            "until": humantime::format_rfc3339_seconds(e.until).to_string(),
            "days_left": e.days_left(now),
        });
        format!(
            "allowed by exception {} (reason: {}; until {}, {} days left) over list {} rule {}: resolved normally through the upstream",
            e.label(),
            e.reason,
            humantime::format_rfc3339_seconds(e.until),
            e.days_left(now),
            v.list_name,
            v.rule
        )
    } else if v
        .vendor
        .as_ref()
        .is_some_and(|x| zone.allow_vendors.contains(x))
    {
        d["allow_vendors"] = json!(true);
        format!(
            "allowed by allow_vendors ({}) over list {} rule {}: resolved normally through the upstream",
            v.vendor.as_deref().unwrap_or("other"),
            v.list_name,
            v.rule
        )
    } else {
        format!(
            "allowed by list {} rule {}: resolved normally through the upstream",
            v.list_name, v.rule
        )
    };
    t.line("decision", text);
    t.set("decision", d);
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
