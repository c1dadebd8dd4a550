//! DNS wire format for the UDP fast path: a strict parser for the common query shape (one
//! question, optional OPT, uncompressed name of plain characters), and encoders that write
//! answers straight into a reusable buffer: cached upstream answers (kept in wire form with the
//! offsets of their TTLs, patched per client), blocked answers and REFUSED.
//!
//! Anything outside the common shape returns `None` and takes the full path (hickory's parser
//! and encoder), which handles every case; so this module may be conservative, never lenient.
//! Tests check that both paths produce the same messages.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::config::BlockResponse;
use crate::policy::RuleAction;
use crate::respond::{EDE_BLOCKED, EDE_CODE, MAX_UDP_PAYLOAD};

/// The OPT pseudo-record type.
const OPT: u16 = 41;

/// A query in the common shape, pointing into the receive buffer.
#[derive(Debug)]
pub struct ParsedQuery<'a> {
    /// The whole request.
    pub raw: &'a [u8],
    /// Message id.
    pub id: u16,
    /// RD bit.
    pub rd: bool,
    /// CD bit.
    pub cd: bool,
    /// AD bit.
    pub ad: bool,
    /// Offset just past the question section.
    pub question_end: usize,
    /// The name lower-cased, presentation form without the trailing dot ("" for the root).
    lower: [u8; 255],
    lower_len: usize,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// EDNS: (advertised payload, DO bit); `None` without OPT.
    pub edns: Option<(u16, bool)>,
}

impl ParsedQuery<'_> {
    /// The lower-case name without trailing dot.
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.lower[..self.lower_len]).unwrap_or("")
    }

    /// The largest response this client accepts over UDP.
    pub fn udp_limit(&self) -> usize {
        match self.edns {
            Some((p, _)) => usize::from(p.clamp(512, MAX_UDP_PAYLOAD)),
            None => 512,
        }
    }

    /// DO bit.
    pub fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.1)
    }
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Parses a query in the common shape, or `None` (take the full path).
pub fn parse_query(raw: &[u8]) -> Option<ParsedQuery<'_>> {
    if raw.len() < 17 {
        return None;
    }
    let flags = be16(raw, 2)?;
    // QR=0, OPCODE=0, TC=0, Z=0; rcode 0.
    if flags & 0x8000 != 0
        || flags & 0x7800 != 0
        || flags & 0x0200 != 0
        || flags & 0x0040 != 0
        || flags & 0x000f != 0
    {
        return None;
    }
    if be16(raw, 4)? != 1 || be16(raw, 6)? != 0 || be16(raw, 8)? != 0 {
        return None;
    }
    let arcount = be16(raw, 10)?;
    if arcount > 1 {
        return None;
    }
    let mut lower = [0u8; 255];
    let mut lower_len = 0usize;
    let mut i = 12;
    loop {
        let len = usize::from(*raw.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        if len > 63 {
            return None; // compression pointer or reserved bits: full path
        }
        let label = raw.get(i + 1..i + 1 + len)?;
        if lower_len + len + 1 > 254 {
            return None;
        }
        if lower_len > 0 {
            lower[lower_len] = b'.';
            lower_len += 1;
        }
        for &c in label {
            if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                return None; // characters that need escaping: full path
            }
            lower[lower_len] = c.to_ascii_lowercase();
            lower_len += 1;
        }
        i += 1 + len;
    }
    let qtype = be16(raw, i)?;
    let qclass = be16(raw, i + 2)?;
    let question_end = i + 4;
    // Meta types (ANY, AXFR, ...) take the full path.
    if qtype >= 128 || qtype == 0 || qtype == OPT {
        return None;
    }
    let mut edns = None;
    if arcount == 1 {
        let j = question_end;
        if *raw.get(j)? != 0 || be16(raw, j + 1)? != OPT {
            return None;
        }
        let payload = be16(raw, j + 3)?;
        let version = *raw.get(j + 6)?;
        let ext_rcode = *raw.get(j + 5)?;
        let eflags = be16(raw, j + 7)?;
        let rdlen = usize::from(be16(raw, j + 9)?);
        if version != 0 || ext_rcode != 0 || j + 11 + rdlen != raw.len() {
            return None;
        }
        edns = Some((payload, eflags & 0x8000 != 0));
    } else if question_end != raw.len() {
        return None;
    }
    Some(ParsedQuery {
        raw,
        id: be16(raw, 0)?,
        rd: flags & 0x0100 != 0,
        ad: flags & 0x0020 != 0,
        cd: flags & 0x0010 != 0,
        question_end,
        lower,
        lower_len,
        qtype,
        qclass,
        edns,
    })
}

/// A cached upstream answer in wire form: the response as sent to a DO=the-entry's-DO client
/// without OPT, with the offsets of every TTL so they can be aged per hit.
#[derive(Debug, Clone)]
pub struct WireAnswer {
    bytes: Vec<u8>,
    ttls: Vec<(u32, u32)>,
    /// Upstream AD bit.
    pub ad: bool,
    /// CNAME / HTTPS / SVCB alias targets (lower case, no trailing dot), for uncloaking.
    pub alias_targets: Vec<Box<str>>,
}

/// Builds the wire form of an upstream answer, or `None` when the fast path must not serve it
/// (upstream EDE to pass on, extended rcode, ...).
pub fn build_wire(m: &Message, dnssec_ok: bool, qtype: RecordType) -> Option<WireAnswer> {
    if m.metadata.response_code.high() != 0 || m.queries.len() != 1 || m.signature.is_some() {
        return None;
    }
    if m.edns
        .as_ref()
        .is_some_and(|e| !e.options().as_ref().is_empty())
    {
        return None;
    }
    let keep =
        |r: &&hickory_proto::rr::Record| crate::respond::keep_for_client(r, dnssec_ok, qtype);
    let mut out = Message::new(
        0,
        hickory_proto::op::MessageType::Response,
        m.metadata.op_code,
    );
    out.metadata.response_code = m.metadata.response_code;
    out.metadata.recursion_available = true;
    out.queries = m.queries.clone();
    out.answers = m.answers.iter().filter(keep).cloned().collect();
    out.authorities = m.authorities.iter().filter(keep).cloned().collect();
    out.additionals = m.additionals.iter().filter(keep).cloned().collect();
    let bytes = out.to_vec().ok()?;
    let ttls = ttl_offsets(&bytes)?;
    let mut alias_targets = Vec::new();
    for r in &m.answers {
        if let Some(t) = crate::respond::alias_target(&r.data) {
            alias_targets.push(t.into_boxed_str());
        }
    }
    Some(WireAnswer {
        bytes,
        ttls,
        ad: m.metadata.authentic_data,
        alias_targets,
    })
}

fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *b.get(i)?;
        if len == 0 {
            return Some(i + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(i + 2);
        }
        if len > 63 {
            return None;
        }
        i += 1 + usize::from(len);
    }
}

fn ttl_offsets(b: &[u8]) -> Option<Vec<(u32, u32)>> {
    let qd = be16(b, 4)?;
    let rr = usize::from(be16(b, 6)?) + usize::from(be16(b, 8)?) + usize::from(be16(b, 10)?);
    if qd != 1 {
        return None;
    }
    let mut i = skip_name(b, 12)? + 4;
    let mut out = Vec::with_capacity(rr);
    for _ in 0..rr {
        i = skip_name(b, i)?;
        let ttl_at = i + 4;
        let ttl = u32::from_be_bytes([
            *b.get(ttl_at)?,
            *b.get(ttl_at + 1)?,
            *b.get(ttl_at + 2)?,
            *b.get(ttl_at + 3)?,
        ]);
        out.push((u32::try_from(ttl_at).ok()?, ttl));
        let rdlen = usize::from(be16(b, i + 8)?);
        i += 10 + rdlen;
    }
    (i == b.len()).then_some(out)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn response_flags(q: &ParsedQuery<'_>, rcode: u8, ad: bool) -> u16 {
    let mut f: u16 = 0x8000 | 0x0080; // QR, RA
    if q.rd {
        f |= 0x0100;
    }
    if q.cd {
        f |= 0x0010;
    }
    if ad {
        f |= 0x0020;
    }
    f | u16::from(rcode & 0x0f)
}

fn put_opt(out: &mut Vec<u8>, q: &ParsedQuery<'_>, ede: Option<&str>) {
    out.push(0);
    put16(out, OPT);
    // As the full path: the client's size clamped to 512..=1232.
    put16(out, q.udp_limit() as u16);
    out.push(0);
    out.push(0);
    put16(out, if q.dnssec_ok() { 0x8000 } else { 0 });
    match ede {
        Some(text) => {
            let text = &text.as_bytes()[..text.len().min(400)];
            put16(out, (4 + 2 + text.len()) as u16);
            put16(out, EDE_CODE);
            put16(out, (2 + text.len()) as u16);
            put16(out, EDE_BLOCKED);
            out.extend_from_slice(text);
        }
        None => put16(out, 0),
    }
}

/// Writes a cached answer for this client into `out`. Returns false (full path) when the result
/// would exceed the client's UDP limit.
pub fn encode_cached(
    out: &mut Vec<u8>,
    q: &ParsedQuery<'_>,
    w: &WireAnswer,
    age: u32,
    max_ttl: u32,
) -> bool {
    out.clear();
    out.extend_from_slice(&w.bytes);
    let ad = w.ad && (q.dnssec_ok() || q.ad);
    let rcode = w.bytes.get(3).map_or(0, |b| b & 0x0f);
    let flags = response_flags(q, rcode, ad);
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    // The question with the client's case (same length: the same name).
    let qlen = q.question_end - 12;
    if out.len() < 12 + qlen {
        return false;
    }
    out[12..12 + qlen].copy_from_slice(&q.raw[12..q.question_end]);
    for &(at, ttl) in &w.ttls {
        let at = at as usize;
        let v = ttl.min(max_ttl).saturating_sub(age);
        out[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    if q.edns.is_some() {
        put_opt(out, q, None);
        let ar = be16(out, 10).unwrap_or(0).saturating_add(1);
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
    out.len() <= q.udp_limit()
}

/// Writes REFUSED (client in no zone).
pub fn encode_refused(out: &mut Vec<u8>, q: &ParsedQuery<'_>) {
    out.clear();
    put16(out, q.id);
    put16(out, response_flags(q, 5, false));
    put16(out, 1);
    put16(out, 0);
    put16(out, 0);
    put16(out, u16::from(q.edns.is_some()));
    out.extend_from_slice(&q.raw[12..q.question_end]);
    if q.edns.is_some() {
        put_opt(out, q, None);
    }
}

/// Writes the blocked answer, matching [`crate::respond::blocked`]. `soa_at` is the offset of
/// the SOA owner inside the query name (the matched rule's first label), `None` = the whole name.
#[allow(clippy::too_many_arguments)]
pub fn encode_blocked(
    out: &mut Vec<u8>,
    q: &ParsedQuery<'_>,
    response: &BlockResponse,
    action: RuleAction,
    ttl: u32,
    soa_at: Option<usize>,
    ede_text: &str,
) {
    enum Kind {
        Neg(u8),
        Refused,
        Addr,
    }
    let kind = match (action, response) {
        (RuleAction::Nxdomain, _) | (RuleAction::Block, BlockResponse::Nxdomain) => Kind::Neg(3),
        (RuleAction::Nodata, _) | (RuleAction::Block, BlockResponse::Nodata) => Kind::Neg(0),
        (RuleAction::Block, BlockResponse::Refused) => Kind::Refused,
        (RuleAction::Block, BlockResponse::Null | BlockResponse::Addresses(_)) => Kind::Addr,
    };
    let mut addrs: Vec<std::net::IpAddr> = Vec::new();
    if matches!(kind, Kind::Addr) {
        match response {
            BlockResponse::Null => match q.qtype {
                1 => addrs.push(std::net::Ipv4Addr::UNSPECIFIED.into()),
                28 => addrs.push(std::net::Ipv6Addr::UNSPECIFIED.into()),
                _ => {}
            },
            BlockResponse::Addresses(a) => {
                addrs.extend(a.iter().filter(|ip| {
                    (q.qtype == 1 && ip.is_ipv4()) || (q.qtype == 28 && ip.is_ipv6())
                }));
            }
            _ => {}
        }
    }
    let (rcode, soa) = match kind {
        Kind::Neg(r) => (r, true),
        Kind::Refused => (5, false),
        Kind::Addr => (0, addrs.is_empty()),
    };
    out.clear();
    put16(out, q.id);
    put16(out, response_flags(q, rcode, false));
    put16(out, 1);
    put16(out, addrs.len() as u16);
    put16(out, u16::from(soa));
    put16(out, u16::from(q.edns.is_some()));
    out.extend_from_slice(&q.raw[12..q.question_end]);
    for ip in &addrs {
        put16(out, 0xc00c);
        match ip {
            std::net::IpAddr::V4(v4) => {
                put16(out, 1);
                put16(out, 1);
                put32(out, ttl);
                put16(out, 4);
                out.extend_from_slice(&v4.octets());
            }
            std::net::IpAddr::V6(v6) => {
                put16(out, 28);
                put16(out, 1);
                put32(out, ttl);
                put16(out, 16);
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    if soa {
        let owner = 12 + soa_at.unwrap_or(0);
        put16(out, 0xc000 | owner as u16);
        put16(out, 6);
        put16(out, 1);
        put32(out, ttl);
        let rd_at = out.len();
        put16(out, 0);
        let mname_at = out.len();
        out.extend_from_slice(b"\x0apixelguard\x07invalid\x00");
        out.extend_from_slice(b"\x0ahostmaster");
        put16(out, 0xc000 | mname_at as u16);
        put32(out, 1);
        put32(out, 3600);
        put32(out, 600);
        put32(out, 86_400);
        put32(out, ttl);
        let rdlen = (out.len() - rd_at - 2) as u16;
        out[rd_at..rd_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
    if q.edns.is_some() {
        put_opt(out, q, Some(ede_text));
    }
}

/// The rcode of a wire message.
pub fn rcode_of(b: &[u8]) -> ResponseCode {
    ResponseCode::from(0, b.get(3).map_or(0, |x| x & 0x0f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    use proptest::prelude::*;

    fn build(name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(
            Name::from_ascii(name).unwrap(),
            RecordType::from(qtype),
        ));
        if let Some((p, d)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(p);
            e.set_dnssec_ok(d);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes never panic the parser or the encoders.
        #[test]
        fn never_panics(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some(q) = parse_query(&raw) {
                let mut out = Vec::new();
                encode_refused(&mut out, &q);
                encode_blocked(&mut out, &q, &BlockResponse::Null, RuleAction::Block, 60, Some(0), "x");
                prop_assert!(Message::from_vec(&out).is_ok());
            }
        }

        /// Differential: what the fast parser reads equals what hickory's parser reads.
        #[test]
        fn agrees_with_hickory(labels in proptest::collection::vec("[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,18}[a-zA-Z0-9_])?", 1..5),
                               qtype in prop_oneof![Just(1u16), Just(28), Just(15), Just(16), Just(65), Just(64)],
                               edns in proptest::option::of((0u16..5000, any::<bool>()))) {
            let name = format!("{}.", labels.join("."));
            let raw = build(&name, qtype, edns);
            let q = parse_query(&raw);
            let h = Message::from_vec(&raw).unwrap();
            prop_assert!(q.is_some(), "common shape must take the fast path: {name}");
            let q = q.unwrap();
            prop_assert_eq!(q.name(), name.trim_end_matches('.').to_ascii_lowercase());
            prop_assert_eq!(q.qtype, u16::from(h.queries[0].query_type()));
            prop_assert_eq!(q.edns.map(|e| e.1), h.edns.as_ref().map(|e| e.flags().dnssec_ok));
            prop_assert_eq!(q.edns.is_some(), h.edns.is_some());
            // And the blocked answer decodes, with the client's question.
            let mut out = Vec::new();
            encode_blocked(&mut out, &q, &BlockResponse::Nxdomain, RuleAction::Block, 300, Some(0), "pixelguard: t");
            let r = Message::from_vec(&out).unwrap();
            prop_assert_eq!(r.queries[0].name().to_ascii(), name);
            prop_assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        }
    }

    #[test]
    fn unusual_shapes_take_the_full_path() {
        assert!(
            parse_query(&build("a.example.", 255, None)).is_none(),
            "ANY"
        );
        let mut two = build("a.example.", 1, None);
        two[5] = 2; // qdcount 2
        assert!(parse_query(&two).is_none());
        let mut resp = build("a.example.", 1, None);
        resp[2] |= 0x80; // QR
        assert!(parse_query(&resp).is_none());
        assert!(
            parse_query(&build("a.example.", 1, Some((1232, false))))
                .is_some_and(|q| q.udp_limit() == 1232)
        );
        assert!(
            parse_query(&build("a.example.", 1, Some((100, false))))
                .is_some_and(|q| q.udp_limit() == 512)
        );
    }
}
