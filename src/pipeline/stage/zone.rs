//! Zone: the client's address picks its zone (the longest matching network wins). A client in
//! no zone is refused: pixelguard is never an open resolver.

use hickory_proto::op::ResponseCode;

use crate::outcome::Outcome;
use crate::pipeline::chain::{Cx, Flow, Found, Step};
use crate::pipeline::done::Done;
use crate::respond::Answer;

/// Finds the zone, or refuses.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let Some((id, zone)) = cx.snap.zone_of(cx.client) else {
        cx.note(Step::Zone, || {
            format!("none: {} is in no zone's networks", cx.client)
        });
        cx.detail(|t| {
            t.set(
                "decision",
                serde_json::json!({ "kind": "refused", "reason": "client in no zone" }),
            )
        });
        return Flow::Answer(Done::new(
            Answer::Code(ResponseCode::Refused),
            Outcome::Refused,
        ));
    };
    cx.detail(|t| {
        let net = cx
            .snap
            .config
            .zones
            .iter()
            .find(|z| z.name == *zone.name)
            .and_then(|z| {
                z.networks
                    .iter()
                    .filter(|n| n.contains(&cx.client))
                    .max_by_key(|n| n.prefix_len())
            })
            .map(|n| n.to_string())
            .unwrap_or_default();
        t.line(
            Step::Zone.name(),
            format!(
                "{} (network {net}, the longest prefix containing {}); mode {}, response {}",
                zone.name,
                cx.client,
                zone.mode.as_str(),
                zone.response.describe()
            ),
        );
        t.set(
            "zone",
            serde_json::json!({
                "name": &*zone.name,
                "network": net,
                "mode": zone.mode.as_str(),
                "response": zone.response.describe(),
                "canaries": zone.canaries,
                "uncloak": zone.uncloak,
            }),
        );
    });
    Flow::Found(Found::Zone(id, zone))
}
