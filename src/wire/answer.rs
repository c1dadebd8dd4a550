//! Upstream answers in the form they are kept and served: [`WireAnswer`], built once from the
//! upstream's message (DNSSEC records kept or stripped for the asker's DO bit, no OPT, names
//! compressed against the question by hickory's encoder), with the offsets of every TTL so each
//! client gets them aged without a re-encode. A fresh answer and a cached one are the same
//! object, so they leave as the same bytes (apart from id and TTLs) on every path.
//!
//! Knows nothing of policy: the alias targets are extracted here so that uncloaking can check
//! them on every read, but what they mean is the pipeline's business.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{EDE_CODE, be16};

/// An upstream answer in wire form, ready to be patched for a client. Kept once per cache entry,
/// so it is compact: one allocation holds the message and the offsets of its TTLs; the TTLs as
/// received are read from the message itself.
#[derive(Debug, Clone)]
pub struct WireAnswer {
    /// Header (id 0, no OPT counted), question, answer / authority / additional records; then the
    /// big-endian u16 offset of every record's TTL.
    data: Box<[u8]>,
    /// Length of the message at the start of `data`.
    len: u16,
    /// The upstream's response code (extended bits included; they travel in the client's OPT).
    pub rcode: ResponseCode,
    /// Upstream AD bit.
    pub ad: bool,
    /// Upstream Extended DNS Errors (option payloads: info code + text), passed on to EDNS
    /// clients.
    pub ede: Box<[Box<[u8]>]>,
    /// CNAME / DNAME / HTTPS / SVCB alias targets (lower case, no trailing dot), for uncloaking.
    pub alias_targets: Box<[Box<str>]>,
}

impl WireAnswer {
    /// The stored message (header with id 0, question, records; no OPT).
    pub fn bytes(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// (offset, TTL as received) of every record in [`Self::bytes`].
    pub fn ttls(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        let (msg, offsets) = self.data.split_at(usize::from(self.len));
        offsets.chunks_exact(2).map(move |o| {
            let at = usize::from(u16::from_be_bytes([o[0], o[1]]));
            let ttl = msg
                .get(at..at + 4)
                .map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]));
            (at, ttl)
        })
    }

    /// Bytes this answer holds on the heap (the cache charges them against `max_size`).
    pub fn heap_bytes(&self) -> usize {
        self.data.len()
            + self.ede.iter().map(|e| e.len() + 16).sum::<usize>()
            + self
                .alias_targets
                .iter()
                .map(|t| t.len() + 16)
                .sum::<usize>()
    }

    /// The stored message decoded (explain and tests only: the request path never decodes it).
    pub fn decode(&self) -> Option<Message> {
        Message::from_vec(self.bytes()).ok()
    }
}

/// Whether a record goes to a client: DNSSEC records only when it set DO, or when it asked for
/// that very type (RFC 4035 §3.2.1).
pub fn keep_for_client(r: &Record, dnssec_ok: bool, qtype: RecordType) -> bool {
    dnssec_ok || !r.record_type().is_dnssec() || r.record_type() == qtype
}

/// Builds the wire form of an upstream answer for askers with this DO bit and query type (the
/// cache key holds both), or `None` when the message cannot be re-encoded (no single question).
pub fn build_wire(m: &Message, dnssec_ok: bool, qtype: RecordType) -> Option<WireAnswer> {
    if m.queries.len() != 1 {
        return None;
    }
    let keep = |r: &&Record| keep_for_client(r, dnssec_ok, qtype);
    let mut out = Message::new(0, MessageType::Response, m.metadata.op_code);
    // The low bits only: the high bits go into the client's OPT when it is written.
    out.metadata.response_code = ResponseCode::from(0, m.metadata.response_code.low());
    out.metadata.recursion_available = true;
    out.queries = m.queries.clone();
    // Owners equal to the question's name (DNS names compare without case) are spelt as the
    // question is, so hickory's encoder (which compares case-sensitively) compresses them to a
    // pointer at the question: the answer then takes each asker's spelling when it is patched.
    let qname = m.queries[0].name().clone();
    let take = |r: &Record| {
        let mut r = r.clone();
        if r.name == qname {
            r.name = qname.clone();
        }
        r
    };
    out.answers = m.answers.iter().filter(keep).map(take).collect();
    out.authorities = m.authorities.iter().filter(keep).map(take).collect();
    out.additionals = m.additionals.iter().filter(keep).map(take).collect();
    let msg = out.to_vec().ok()?;
    let len = u16::try_from(msg.len()).ok()?;
    let ttls = ttl_offsets(&msg)?;
    // One exact allocation: the boxed slice is not reallocated.
    let mut data = Vec::with_capacity(msg.len() + 2 * ttls.len());
    data.extend_from_slice(&msg);
    for at in ttls {
        data.extend_from_slice(&at.to_be_bytes());
    }
    let ede = m
        .edns
        .as_ref()
        .map(|e| {
            e.options()
                .as_ref()
                .iter()
                .filter(|(c, _)| u16::from(*c) == EDE_CODE)
                .filter_map(|(_, o)| match o {
                    hickory_proto::rr::rdata::opt::EdnsOption::Unknown(_, d) => {
                        Some(d.clone().into_boxed_slice())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let alias_targets = m
        .answers
        .iter()
        .filter_map(|r| alias_target(&r.data))
        .map(String::into_boxed_str)
        .collect();
    Some(WireAnswer {
        data: data.into_boxed_slice(),
        len,
        rcode: m.metadata.response_code,
        ad: m.metadata.authentic_data,
        ede,
        alias_targets,
    })
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
        } => Name::read(&mut BinDecoder::new(&rdata.anything)).ok()?,
        _ => return None,
    };
    let t = name.to_ascii().to_ascii_lowercase();
    let t = t.strip_suffix('.').unwrap_or(&t).to_owned();
    (!t.is_empty()).then_some(t)
}

/// Where a name that starts at `i` ends (a pointer ends it).
pub(crate) fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
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

/// The offset of every record's TTL (a message of at most 64 KiB: they fit in a u16).
fn ttl_offsets(b: &[u8]) -> Option<Vec<u16>> {
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
        b.get(ttl_at..ttl_at + 4)?;
        out.push(u16::try_from(ttl_at).ok()?);
        let rdlen = usize::from(be16(b, i + 8)?);
        i += 10 + rdlen;
    }
    (i == b.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, NULL};
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

    #[test]
    fn answers_compress_against_the_question_and_keep_upstream_ede() {
        let name = Name::from_ascii("www.example.test.").unwrap();
        let mut m = Message::new(9, MessageType::Response, hickory_proto::op::OpCode::Query);
        m.add_query(hickory_proto::op::Query::query(name.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 1))));
        let mut e = hickory_proto::op::Edns::new();
        e.options_mut()
            .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                EDE_CODE,
                vec![0, 18, b'x'],
            ));
        m.set_edns(e);
        let w = build_wire(&m, false, RecordType::A).unwrap();
        // 12 header + 22 question + 16 answer (owner as a pointer to the question).
        assert_eq!(w.bytes().len(), 12 + 22 + 2 + 10 + 4);
        assert_eq!(&w.bytes()[34..36], &[0xc0, 0x0c]);
        assert_eq!(w.ttls().collect::<Vec<_>>(), vec![(40, 60)]);
        assert_eq!(&w.ede[..], &[vec![0u8, 18, b'x'].into_boxed_slice()]);
    }
}
