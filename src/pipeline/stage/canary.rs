//! Local answers to bypass canaries (Firefox's DoH canary, iCloud Private Relay, DDR): answered
//! by us whatever the lists say, and never forwarded, since an upstream would answer them
//! "positively" and switch the bypass on.
//!
//! DDR (RFC 9462) is the exception when pixelguard has encrypted listeners of its own: then
//! `_dns.resolver.arpa SVCB`, and `_dns.<tls_name> SVCB`, are answered with pixelguard's own DoT
//! / DoH endpoints, so that clients upgrade to pixelguard itself rather than to a public
//! resolver.

use std::sync::Arc;

use crate::outcome::Outcome;
use crate::pipeline::chain::{Cx, Flow, Step};
use crate::pipeline::done::Done;
use crate::policy::Canary;
use crate::respond::{Answer, ddr_endpoints, is_own_ddr_name};

/// SVCB's record type.
const SVCB: u16 = 64;

/// Answers a canary name locally.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let Some(zone) = cx.zone() else {
        return Flow::Continue;
    };
    let server = &cx.snap.config.server;
    if cx.q.qtype == SVCB && is_own_ddr_name(server, cx.q.name) {
        return ddr(cx, None);
    }
    let Some(c) = Canary::of(cx.q.name).filter(|_| zone.canaries) else {
        return Flow::Continue;
    };
    if c == Canary::Ddr && server.tls.is_some() {
        return ddr(cx, Some(c));
    }
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

/// DDR with encrypted listeners: SVCB of pixelguard's own endpoints (NODATA for other types of
/// `_dns.resolver.arpa`). Not a bypass: the client is pointed at pixelguard itself.
fn ddr<'a>(cx: &Cx<'a>, canary: Option<Canary>) -> Flow<'a> {
    let server = &cx.snap.config.server;
    cx.note(Step::Canary, || {
        format!(
            "{} is a DDR query (RFC 9462), answered with pixelguard's own encrypted endpoints ({})",
            cx.q.name,
            server.tls.as_ref().map_or("", |t| t.name.as_str())
        )
    });
    cx.detail(|t| {
        if let Some(c) = canary {
            t.set("canary", serde_json::json!(c.kind()));
        }
        t.set(
            "decision",
            serde_json::json!({ "kind": "local", "reason": "DDR: pixelguard's own DoT / DoH endpoints" }),
        );
    });
    let answer = if cx.q.qtype == SVCB {
        Answer::Svcb(Arc::from(ddr_endpoints(server)))
    } else {
        Answer::Canary { nxdomain: false }
    };
    Flow::Answer(Done::new(answer, Outcome::Local))
}
