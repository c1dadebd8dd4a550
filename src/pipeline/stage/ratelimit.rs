//! Rate limit: the zone's per-client token bucket. Over the limit, the query is refused (or
//! dropped, with `action = "drop"`) before any work is spent on it. The fast path takes the
//! token when it sees the query; a query it hands onward is not charged again. `explain` only
//! looks at the bucket.

use hickory_proto::op::ResponseCode;

use crate::outcome::Outcome;
use crate::pipeline::chain::{Cx, Flow, Reader, Step};
use crate::pipeline::done::Done;
use crate::respond::Answer;

/// Takes a token, or answers REFUSED / nothing.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let Some(zone) = cx.zone() else {
        return Flow::Continue;
    };
    let rl = zone.rate_limit;
    if cx.admitted {
        cx.note(Step::RateLimit, || "admitted by the fast path".into());
        return Flow::Continue;
    }
    let allowed = match cx.reader {
        Reader::Explain { .. } => cx.p.limiter.peek(cx.client, rl.qps, rl.burst, cx.start),
        Reader::Fast | Reader::Full => cx.p.limiter.allow(cx.client, rl.qps, rl.burst, cx.start),
    };
    if allowed {
        cx.note(Step::RateLimit, || {
            if rl.qps <= 0.0 {
                "no limit in this zone".into()
            } else {
                format!(
                    "within {} queries/s (burst {}) for {}",
                    rl.qps, rl.burst, cx.client
                )
            }
        });
        return Flow::Continue;
    }
    cx.note(Step::RateLimit, || {
        format!(
            "over {} queries/s (burst {}) for {}: {}",
            rl.qps,
            rl.burst,
            cx.client,
            if rl.drop { "dropped" } else { "refused" }
        )
    });
    let answer = if rl.drop {
        Answer::Drop
    } else {
        Answer::Code(ResponseCode::Refused)
    };
    Flow::Answer(Done::new(answer, Outcome::RateLimited))
}
