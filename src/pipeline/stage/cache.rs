//! Cache: a fresh upstream answer for the same (name, type, class, DO, CD), if one is kept. The
//! cache holds raw upstream answers only: policy differs per zone and is applied on every read.

use crate::cache::{KEY_MAX, pack_key};
use crate::pipeline::chain::{Cx, Flow, Found, Source, Step};

/// Looks the question up.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let q = &cx.q;
    let mut key = [0u8; KEY_MAX];
    let n = pack_key(&mut key, q.name, q.qtype, q.qclass, q.dnssec_ok(), q.cd);
    match cx.p.cache.get(&key[..n], cx.start) {
        Some(hit) => {
            cx.note(Step::Cache, || {
                format!(
                    "hit: stored {} s ago, fresh for {} s more",
                    hit.age(cx.start),
                    hit.ttl.saturating_sub(hit.age(cx.start))
                )
            });
            Flow::Found(Found::Source(Source::Cached(hit)))
        }
        None => {
            cx.note(Step::Cache, || "miss".into());
            Flow::Continue
        }
    }
}
