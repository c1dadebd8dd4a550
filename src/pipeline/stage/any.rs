//! ANY (RFC 8482): a minimal local answer, one HINFO "RFC8482", so pixelguard is never an
//! amplifier. After the name policy, so that a blocked name stays blocked for every type.

use hickory_proto::rr::RecordType;

use crate::outcome::Outcome;
use crate::pipeline::chain::{Cx, Flow, Step};
use crate::pipeline::done::{Done, policy_verdict};
use crate::respond::Answer;

/// Answers ANY locally.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    if RecordType::from(cx.q.qtype) != RecordType::ANY {
        return Flow::Continue;
    }
    cx.note(Step::Any, || {
        "ANY is answered locally with one HINFO record (RFC 8482)".into()
    });
    Flow::Answer(Done::new(Answer::Any, Outcome::Local).because(policy_verdict(&cx.policy)))
}
