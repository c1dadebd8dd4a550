//! Local answers to bypass canaries (Firefox's DoH canary, iCloud Private Relay, DDR): answered
//! by us whatever the lists say, and never forwarded, since an upstream would answer them
//! "positively" and switch the bypass on.

use crate::outcome::Outcome;
use crate::pipeline::chain::{Cx, Flow, Step};
use crate::pipeline::done::Done;
use crate::policy::Canary;
use crate::respond::Answer;

/// Answers a canary name locally.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let Some(zone) = cx.zone() else {
        return Flow::Continue;
    };
    let Some(c) = Canary::of(cx.q.name).filter(|_| zone.canaries) else {
        return Flow::Continue;
    };
    cx.note(Step::Canary, || {
        format!(
            "{} is a bypass canary ({}), answered locally, never forwarded",
            cx.q.name,
            c.kind()
        )
    });
    cx.detail(|t| {
        t.set("canary", serde_json::json!(c.kind()));
        t.set(
            "decision",
            serde_json::json!({ "kind": "local", "reason": "bypass canary, never forwarded" }),
        );
    });
    let mut done = Done::new(
        Answer::Canary {
            nxdomain: c != Canary::Ddr,
        },
        Outcome::Local,
    );
    done.bypass = Some(c.kind());
    Flow::Answer(done)
}
