//! Answers, as data: the [`Reply`] every pipeline stage produces, how an upstream or cached
//! message becomes one (TTL aging, DNSSEC stripping, AD rules, EDE pass-through), how blocked and
//! local answers are synthesized, and how a reply is sent through hickory's response handle
//! (EDNS as hickory's Catalog does it: BADVERS for version > 0, payload clamp(client, 512, 1232),
//! DO echoed). Never an A record for a non-A query.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Edns, Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::config::BlockResponse;
use crate::policy::RuleAction;

/// EDNS option code of Extended DNS Errors (RFC 8914).
pub const EDE_CODE: u16 = 15;
/// EDE info code "Blocked".
pub const EDE_BLOCKED: u16 = 15;
/// EDE info code "Filtered" (used for local canary answers).
pub const EDE_FILTERED: u16 = 17;
/// The largest UDP payload pixelguard advertises or sends (DNS Flag Day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// A response before encoding.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Response code (extended codes included).
    pub rcode: ResponseCode,
    /// AD bit.
    pub authentic_data: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section (without OPT).
    pub additionals: Vec<Record>,
    /// EDNS options to add to the response OPT (EDE), sent only to EDNS clients.
    pub options: Vec<EdnsOption>,
}

impl Reply {
    /// A bare reply with a code.
    pub fn code(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            ..Self::default()
        }
    }
}

/// An EDE option.
pub fn ede(info: u16, text: &str) -> EdnsOption {
    let mut data = Vec::with_capacity(2 + text.len());
    data.extend_from_slice(&info.to_be_bytes());
    data.extend_from_slice(text.as_bytes());
    EdnsOption::Unknown(EDE_CODE, data)
}

/// What the client asked for, as the reply builders need it.
pub struct Asked<'a> {
    /// The query name with the client's case.
    pub name: &'a Name,
    /// The query type.
    pub qtype: RecordType,
    /// Client's DO bit.
    pub dnssec_ok: bool,
    /// Client's AD bit.
    pub authentic_data: bool,
}

/// Whether a record goes to a client: DNSSEC records only when it set DO, or when it asked for
/// that very type (RFC 4035 §3.2.1). Shared by the full path and the fast path's wire form.
pub fn keep_for_client(r: &Record, dnssec_ok: bool, qtype: RecordType) -> bool {
    dnssec_ok || !r.record_type().is_dnssec() || r.record_type() == qtype
}

/// Turns an upstream (or cached) message into the client's reply: TTLs aged by `age` and capped
/// at `max_ttl`, DNSSEC records stripped unless the client set DO (or asked for that type), AD
/// only when the client set DO or AD, upstream EDE kept.
pub fn from_upstream(m: &Message, asked: &Asked<'_>, age: u32, max_ttl: u32) -> Reply {
    let keep = |r: &&Record| keep_for_client(r, asked.dnssec_ok, asked.qtype);
    let age_rec = |r: &Record| {
        let mut r = r.clone();
        r.ttl = r.ttl.min(max_ttl).saturating_sub(age);
        r
    };
    let options = m
        .edns
        .as_ref()
        .map(|e| {
            e.options()
                .as_ref()
                .iter()
                .filter(|(c, _)| u16::from(*c) == EDE_CODE)
                .map(|(_, o)| o.clone())
                .collect()
        })
        .unwrap_or_default();
    Reply {
        rcode: m.metadata.response_code,
        authentic_data: m.metadata.authentic_data && (asked.dnssec_ok || asked.authentic_data),
        answers: m.answers.iter().filter(keep).map(age_rec).collect(),
        authorities: m.authorities.iter().filter(keep).map(age_rec).collect(),
        additionals: m.additionals.iter().filter(keep).map(age_rec).collect(),
        options,
    }
}

fn synthetic_soa(owner: &Name, ttl: u32) -> Record {
    let mname = Name::from_ascii("pixelguard.invalid.").unwrap_or_else(|_| Name::root());
    let rname = Name::from_ascii("hostmaster.pixelguard.invalid.").unwrap_or_else(|_| Name::root());
    let mut owner = owner.clone();
    owner.set_fqdn(true);
    Record::from_rdata(
        owner,
        ttl,
        RData::SOA(SOA::new(mname, rname, 1, 3600, 600, 86_400, ttl)),
    )
}

/// The answer for a blocked name. `soa_owner` is the matched rule's name (an ancestor of the query
/// name, so RFC 2308 negative caching applies to it) or the query name itself.
pub fn blocked(
    asked: &Asked<'_>,
    response: &BlockResponse,
    action: RuleAction,
    ttl: u32,
    soa_owner: &Name,
    ede_text: &str,
) -> Reply {
    let nodata = |rcode| Reply {
        rcode,
        authorities: vec![synthetic_soa(soa_owner, ttl)],
        ..Reply::default()
    };
    let mut reply = match (action, response) {
        (RuleAction::Nxdomain, _) | (RuleAction::Block, BlockResponse::Nxdomain) => {
            nodata(ResponseCode::NXDomain)
        }
        (RuleAction::Nodata, _) | (RuleAction::Block, BlockResponse::Nodata) => {
            nodata(ResponseCode::NoError)
        }
        (RuleAction::Block, BlockResponse::Refused) => Reply::code(ResponseCode::Refused),
        (RuleAction::Block, BlockResponse::Null) => match asked.qtype {
            RecordType::A => addresses(
                asked.name,
                ttl,
                &[IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
                RecordType::A,
            ),
            RecordType::AAAA => addresses(
                asked.name,
                ttl,
                &[IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
                RecordType::AAAA,
            ),
            _ => nodata(ResponseCode::NoError),
        },
        (RuleAction::Block, BlockResponse::Addresses(ips)) => {
            let r = addresses(asked.name, ttl, ips, asked.qtype);
            if r.answers.is_empty() {
                nodata(ResponseCode::NoError)
            } else {
                r
            }
        }
    };
    reply.options.push(ede(EDE_BLOCKED, ede_text));
    reply
}

fn addresses(name: &Name, ttl: u32, ips: &[IpAddr], qtype: RecordType) -> Reply {
    let answers = ips
        .iter()
        .filter_map(|ip| match (qtype, ip) {
            (RecordType::A, IpAddr::V4(v4)) => Some(Record::from_rdata(
                name.clone(),
                ttl,
                RData::A(A::from(*v4)),
            )),
            (RecordType::AAAA, IpAddr::V6(v6)) => Some(Record::from_rdata(
                name.clone(),
                ttl,
                RData::AAAA(AAAA::from(*v6)),
            )),
            _ => None,
        })
        .collect();
    Reply {
        rcode: ResponseCode::NoError,
        answers,
        ..Reply::default()
    }
}

/// EDE info code "Stale Answer".
pub const EDE_STALE: u16 = 3;

/// An expired cached answer served because every upstream failed (RFC 8767): TTLs at most 30 s,
/// EDE 3.
pub fn stale(m: &Message, asked: &Asked<'_>) -> Reply {
    let mut r = from_upstream(m, asked, 0, 30);
    r.options
        .retain(|o| !matches!(o, EdnsOption::Unknown(EDE_CODE, _)));
    r.options.push(ede(
        EDE_STALE,
        "pixelguard: upstreams unreachable; serving a stale answer",
    ));
    r
}

/// The RFC 8482 answer to ANY: one HINFO record "RFC8482", so pixelguard is not an amplifier.
pub fn rfc8482(asked: &Asked<'_>) -> Reply {
    let hinfo = hickory_proto::rr::rdata::HINFO::new("RFC8482".into(), String::new());
    Reply {
        rcode: ResponseCode::NoError,
        answers: vec![Record::from_rdata(
            asked.name.clone(),
            3600,
            RData::HINFO(hinfo),
        )],
        ..Reply::default()
    }
}

/// The alias target of an answer record, lower case without the trailing dot, for uncloaking:
/// a CNAME or DNAME target, or the target of an HTTPS / SVCB record in AliasMode (priority 0).
/// DNAME arrives as opaque rdata in hickory 0.26; its target is an uncompressed name (RFC 6672).
pub fn alias_target(r: &RData) -> Option<String> {
    let name = match r {
        RData::CNAME(c) => c.0.clone(),
        RData::HTTPS(h) if h.0.svc_priority == 0 => h.0.target_name.clone(),
        RData::SVCB(s) if s.svc_priority == 0 => s.target_name.clone(),
        RData::Unknown {
            code: RecordType::DNAME,
            rdata,
        } => {
            use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
            Name::read(&mut BinDecoder::new(&rdata.anything)).ok()?
        }
        _ => return None,
    };
    let t = name.to_ascii().to_ascii_lowercase();
    let t = t.strip_suffix('.').unwrap_or(&t).to_owned();
    (!t.is_empty()).then_some(t)
}

/// A local negative answer (canaries): NXDOMAIN or NODATA with a SOA, EDE "Filtered".
pub fn local_negative(asked: &Asked<'_>, nxdomain: bool, ttl: u32, text: &str) -> Reply {
    let mut r = Reply {
        rcode: if nxdomain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        },
        authorities: vec![synthetic_soa(asked.name, ttl)],
        ..Reply::default()
    };
    r.options.push(ede(EDE_FILTERED, text));
    r
}

/// The response OPT for a request: `None` when the client sent no EDNS.
pub fn response_edns(request: &Request) -> Option<Edns> {
    let req = request.edns.as_ref()?;
    let mut e = Edns::new();
    e.set_max_payload(req.max_payload().clamp(512, MAX_UDP_PAYLOAD));
    e.set_dnssec_ok(req.flags().dnssec_ok);
    e.set_version(0);
    Some(e)
}

/// Encodes and sends a reply for `request` through hickory's response handle.
pub async fn send<R: ResponseHandler>(
    request: &Request,
    reply: &Reply,
    mut handle: R,
) -> ResponseInfo {
    let mut edns = response_edns(request);
    if let Some(e) = edns.as_mut() {
        for o in &reply.options {
            e.options_mut().insert(o.clone());
        }
    }
    let mut meta = Metadata::response_from_request(&request.metadata);
    meta.recursion_available = true;
    meta.authentic_data = reply.authentic_data;
    meta.response_code = reply.rcode;
    let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
    let resp = builder.build(
        meta,
        reply.answers.iter(),
        reply.authorities.iter(),
        std::iter::empty(),
        reply.additionals.iter(),
    );
    match handle.send_response(resp).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "sending the response failed");
            failed_info(request)
        }
    }
}

/// Sends a bare error code (FORMERR, NOTIMP, BADVERS, REFUSED).
pub async fn send_code<R: ResponseHandler>(
    request: &Request,
    rcode: ResponseCode,
    handle: R,
) -> ResponseInfo {
    send(request, &Reply::code(rcode), handle).await
}

/// The `ResponseInfo` returned when nothing could be sent.
pub fn failed_info(request: &Request) -> ResponseInfo {
    let mut meta = Metadata::response_from_request(&request.metadata);
    meta.response_code = ResponseCode::ServFail;
    hickory_proto::op::Header {
        metadata: meta,
        counts: Default::default(),
    }
    .into()
}

/// Reads EDE options of a message (tests and explain).
pub fn read_ede(m: &Message) -> Vec<(u16, String)> {
    let Some(e) = m.edns.as_ref() else {
        return Vec::new();
    };
    e.options()
        .as_ref()
        .iter()
        .filter(|(c, _)| *c == EdnsCode::from(EDE_CODE))
        .filter_map(|(_, o)| match o {
            EdnsOption::Unknown(_, d) if d.len() >= 2 => Some((
                u16::from_be_bytes([d[0], d[1]]),
                String::from_utf8_lossy(&d[2..]).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{CNAME, NULL};
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

    #[test]
    fn alias_targets_of_cname_dname_and_alias_mode_svcb() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        assert_eq!(
            alias_target(&RData::CNAME(CNAME(n("X.Sc.Omtrdc.NET.")))).as_deref(),
            Some("x.sc.omtrdc.net")
        );
        let mut wire = Vec::new();
        n("metrics.tracker.example.")
            .emit(&mut BinEncoder::new(&mut wire))
            .unwrap();
        let dname = RData::Unknown {
            code: RecordType::DNAME,
            rdata: NULL::with(wire),
        };
        assert_eq!(
            alias_target(&dname).as_deref(),
            Some("metrics.tracker.example")
        );
        assert_eq!(alias_target(&RData::A(A::new(192, 0, 2, 1))), None);
    }
}
