//! Uncloaking for the audit: resolves first-party host names through the configured upstream
//! resolvers and follows their CNAME chains, so that `metrics.<site> CNAME x.sc.omtrdc.net` is
//! seen for what it is. Which chain targets are trackers is decided by
//! [`super::classify::cloaked`]; this module only resolves.

use std::str::FromStr;

use futures_util::StreamExt;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::upstream::{Question, Upstreams};

/// Most first-party hosts resolved per audit.
pub const MAX_HOSTS: usize = 256;
/// Longest CNAME chain followed.
pub const MAX_CHAIN: usize = 16;

/// One host's resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The first-party host.
    pub host: String,
    /// CNAME targets in order, lower case, without the trailing dot.
    pub chain: Vec<String>,
    /// Why it could not be resolved.
    pub error: Option<String>,
}

fn canon(n: &Name) -> String {
    let s = n.to_ascii().to_ascii_lowercase();
    s.strip_suffix('.').unwrap_or(&s).to_owned()
}

/// The CNAME chain starting at `qname` in a reply's answer section (in any record order).
pub fn cname_chain(m: &Message, qname: &str) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    let mut current = qname.trim_end_matches('.').to_ascii_lowercase();
    for _ in 0..MAX_CHAIN {
        let next = m.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if canon(&r.name) == current => Some(canon(&c.0)),
            _ => None,
        });
        match next {
            Some(t) if !chain.contains(&t) && t != qname => {
                chain.push(t.clone());
                current = t;
            }
            _ => break,
        }
    }
    chain
}

async fn resolve(ups: &Upstreams, host: String) -> Resolution {
    let Ok(name) = Name::from_str(&format!("{host}.")) else {
        return Resolution {
            host,
            chain: Vec::new(),
            error: Some("not a valid DNS name".to_owned()),
        };
    };
    let q = Question {
        query: Query::query(name, RecordType::A),
        dnssec_ok: false,
        checking_disabled: false,
    };
    match ups.resolve(&q).await {
        None => Resolution {
            host,
            chain: Vec::new(),
            error: Some("no upstream answered".to_owned()),
        },
        Some(a) => {
            let chain = cname_chain(&a.message, &host);
            let rcode = a.message.metadata.response_code;
            let error = (chain.is_empty()
                && matches!(rcode, ResponseCode::ServFail | ResponseCode::Refused))
            .then(|| format!("upstream answered {rcode}"));
            Resolution { host, chain, error }
        }
    }
}

/// Resolves `hosts` (at most [`MAX_HOSTS`]), `concurrency` at a time, in the given order.
pub async fn resolve_all(
    ups: &Upstreams,
    hosts: Vec<String>,
    concurrency: usize,
) -> Vec<Resolution> {
    let mut out: Vec<(usize, Resolution)> =
        futures_util::stream::iter(hosts.into_iter().take(MAX_HOSTS).enumerate())
            .map(|(i, h)| async move { (i, resolve(ups, h).await) })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME};

    #[test]
    fn chain_in_any_order_and_bounded() {
        let n = |s: &str| Name::from_str(s).unwrap();
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.answers.push(Record::from_rdata(
            n("b.cdn.example."),
            60,
            RData::CNAME(CNAME(n("x.sc.omtrdc.net."))),
        ));
        m.answers.push(Record::from_rdata(
            n("Metrics.Force.Test."),
            60,
            RData::CNAME(CNAME(n("b.cdn.example."))),
        ));
        m.answers.push(Record::from_rdata(
            n("x.sc.omtrdc.net."),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        assert_eq!(
            cname_chain(&m, "metrics.force.test"),
            vec!["b.cdn.example", "x.sc.omtrdc.net"]
        );
        // A loop ends.
        let mut l = Message::new(1, MessageType::Response, OpCode::Query);
        l.answers.push(Record::from_rdata(
            n("a.test."),
            60,
            RData::CNAME(CNAME(n("b.test."))),
        ));
        l.answers.push(Record::from_rdata(
            n("b.test."),
            60,
            RData::CNAME(CNAME(n("a.test."))),
        ));
        assert_eq!(cname_chain(&l, "a.test"), vec!["b.test"]);
    }
}
