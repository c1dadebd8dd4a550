//! Queries in wire form: [`Query`], the one view of a request that every stage and the encoder
//! read (built by the fast parser here, or by the full decoder in the pipeline), and
//! [`parse_query`], a strict parser for the common shape (one question, optional OPT,
//! uncompressed name of plain characters) that needs no allocation.
//!
//! Anything outside the common shape returns `None` and takes the full path (hickory's decoder),
//! which handles every case; so this parser may be conservative, never lenient.

use super::{Ecs, MAX_UDP_PAYLOAD, OPT, be16};

/// EDNS option code of Client Subnet (RFC 7871).
const ECS: u16 = 8;

/// A request as the stages and the encoder see it, whichever decoder produced it.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Message id.
    pub id: u16,
    /// Opcode (0 = QUERY; others are answered NOTIMP, echoing it).
    pub opcode: u8,
    /// RD bit.
    pub rd: bool,
    /// CD bit.
    pub cd: bool,
    /// AD bit.
    pub ad: bool,
    /// The name lower-cased, presentation form without the trailing dot ("" for the root).
    pub name: &'a str,
    /// The question section as the client sent it (uncompressed, the client's case); empty when
    /// the request had no usable question.
    pub question: &'a [u8],
    /// Questions in [`Self::question`] (1, or what an invalid request held, echoed as sent).
    pub qdcount: u16,
    /// Query type.
    pub qtype: u16,
    /// Query class.
    pub qclass: u16,
    /// EDNS: (advertised payload, DO bit); `None` without OPT.
    pub edns: Option<(u16, bool)>,
    /// EDNS Client Subnet (RFC 7871), echoed with scope 0 in the answer.
    pub ecs: Option<Ecs>,
}

impl Query<'_> {
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
    /// EDNS Client Subnet.
    pub ecs: Option<Ecs>,
}

impl ParsedQuery<'_> {
    /// The lower-case name without trailing dot.
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.lower[..self.lower_len]).unwrap_or("")
    }

    /// The request as the stages see it.
    pub fn view(&self) -> Query<'_> {
        Query {
            id: self.id,
            opcode: 0,
            rd: self.rd,
            cd: self.cd,
            ad: self.ad,
            name: self.name(),
            question: &self.raw[12..self.question_end],
            qdcount: 1,
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
            ecs: self.ecs,
        }
    }
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
        if lower_len + len + 1 > 253 {
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
    let mut ecs = None;
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
        if !plain_options(raw.get(j + 11..)?) {
            return None;
        }
        edns = Some((payload, eflags & 0x8000 != 0));
        // Options are read only when there are any: a plain OPT costs nothing more. A bad ECS
        // takes the full path, which answers FORMERR.
        if rdlen > 0 {
            ecs = super::ecs::from_options(raw.get(j + 11..)?).ok()?;
        }
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
        ecs,
    })
}

/// Whether the OPT record's options (its RDATA) are well formed and none of them is one that
/// hickory's decoder validates and may reject: options exactly fill the RDATA, and there is no
/// Client Subnet (ECS, code 8; a prefix longer than its family or an unknown family makes the
/// whole request FORMERR on the full path). Otherwise the request takes the full path, so that
/// the same bytes never get an answer from the fast path and FORMERR from the full path (found
/// by the `wire` fuzz target: a bad ECS was answered from the cache, and FORMERR on a miss).
fn plain_options(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let (Some(code), Some(len)) = (be16(rdata, 0), be16(rdata, 2)) else {
            return false;
        };
        if code == ECS {
            return false;
        }
        match rdata.get(4 + usize::from(len)..) {
            Some(rest) => rdata = rest,
            None => return false,
        }
    }
    true
}

/// A query in wire form for tests (id 7, RD, optional EDNS payload and DO).
#[cfg(test)]
pub(crate) fn test_request(name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    let name = Name::from_ascii(name).unwrap_or_else(|_| Name::root());
    m.add_query(Query::query(name, RecordType::from(qtype)));
    if let Some((p, d)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        e.set_dnssec_ok(d);
        m.set_edns(e);
    }
    m.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use proptest::prelude::*;

    fn build(name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
        test_request(name, qtype, edns)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes never panic the parser or the encoders.
        #[test]
        fn never_panics(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some(q) = parse_query(&raw) {
                let v = q.view();
                prop_assert!(v.question.len() >= 5);
                prop_assert!(v.name.len() < 255);
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
        }
    }

    /// fuzz/regressions/wire/name-of-256-octets: labels of 49, 49, 49, 50, 49 and 3 octets, 256
    /// octets on the wire (RFC 1035 allows 255). The fast parser took it and echoed it in an
    /// answer no client can parse; it is now left to the full path (which answers FORMERR).
    #[test]
    fn a_name_longer_than_255_octets_is_not_parsed() {
        let raw = include_bytes!("../../fuzz/regressions/wire/name-of-256-octets");
        assert!(parse_query(raw).is_none());
        // The longest legal name (255 octets on the wire, 253 in presentation) still is.
        let labels = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ];
        let name = format!("{}.", labels.join("."));
        let wire = build(&name, 1, None);
        let q = parse_query(&wire).expect("a 255-octet name parses");
        assert_eq!(q.name().len(), 253);
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
                .is_some_and(|q| q.view().udp_limit() == 1232)
        );
        assert!(
            parse_query(&build("a.example.", 1, Some((100, false))))
                .is_some_and(|q| q.view().udp_limit() == 512)
        );
    }

    /// `build` with one EDNS option appended to its OPT record.
    fn with_option(code: u16, data: &[u8]) -> Vec<u8> {
        let mut raw = build("www.example.com.", 1, Some((1232, false)));
        let n = raw.len();
        let rdlen = u16::try_from(4 + data.len()).unwrap();
        raw[n - 2..].copy_from_slice(&rdlen.to_be_bytes());
        raw.extend_from_slice(&code.to_be_bytes());
        raw.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        raw.extend_from_slice(data);
        raw
    }

    /// Regression (fuzz target `wire`, input fuzz/regressions/wire/ecs-prefix-40): an ECS option whose
    /// prefix is longer than its family makes hickory reject the request (FORMERR on the full
    /// path); the fast path took it and answered from the cache. Whatever hickory rejects must
    /// take the full path; options the fast path can skip safely stay on it.
    #[test]
    fn options_hickory_may_reject_take_the_full_path() {
        let bad_ecs = with_option(ECS, &[0, 1, 40, 0, 192, 0, 2]);
        assert!(Message::from_vec(&bad_ecs).is_err(), "hickory rejects it");
        assert!(parse_query(&bad_ecs).is_none());
        let good_ecs = with_option(ECS, &[0, 1, 24, 0, 192, 0, 2]);
        assert!(Message::from_vec(&good_ecs).is_ok());
        assert!(
            parse_query(&good_ecs).is_none(),
            "ECS is left to the full path"
        );
        let cookie = with_option(10, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(Message::from_vec(&cookie).is_ok());
        assert!(
            parse_query(&cookie).is_some(),
            "a client cookie stays on the fast path"
        );
        // An option running past the RDATA, and a stray byte after the last option.
        let mut overrun = with_option(10, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let n = overrun.len();
        overrun[n - 9] = 9;
        assert!(parse_query(&overrun).is_none());
        let mut stray = with_option(12, &[0, 0]);
        let n = stray.len();
        stray[n - 7] += 1; // RDLENGTH one more than the option
        stray.push(0);
        assert!(parse_query(&stray).is_none());
    }
}
