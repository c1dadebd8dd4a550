//! DNS wire format, below every policy: the [`Query`] view of a request and its strict parser
//! for the UDP fast path ([`query`]), and the form in which upstream answers are kept and served
//! ([`answer`]: built once per upstream answer, patched per client), and the EDNS Client Subnet
//! of a request ([`ecs`]); the header and question of a message pixelguard writes itself
//! ([`put_header_question`]: the query it sends upstream, the messages of a dnstap frame). The
//! encoder that turns an
//! answer into the bytes a client gets lives in [`crate::respond`], above the policy it encodes.

pub mod answer;
pub mod ecs;
pub mod query;

pub use answer::{WireAnswer, alias_target, build_wire, keep_for_client};
pub use ecs::Ecs;
pub use query::{ParsedQuery, Query, parse_query};

/// The OPT pseudo-record type.
pub const OPT: u16 = 41;
/// EDNS option code of Extended DNS Errors (RFC 8914).
pub const EDE_CODE: u16 = 15;
/// The largest UDP payload pixelguard advertises or sends (DNS Flag Day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// A big-endian u16 at `i`, or `None` past the end.
pub fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// The rcode (low four bits) of a wire message.
pub fn rcode_of(b: &[u8]) -> hickory_proto::op::ResponseCode {
    hickory_proto::op::ResponseCode::from(0, b.get(3).map_or(0, |x| x & 0x0f))
}

/// Appends a DNS header (`id`, `flags`, one question, `arcount` additional records, nothing else)
/// and its question: `labels`, each length-prefixed, then the root; `qtype`; `qclass`. `false`,
/// with `out` as it was, when a label is empty or over 63 octets or the name over 255.
pub fn put_header_question<'a>(
    out: &mut Vec<u8>,
    (id, flags, arcount): (u16, u16, u16),
    labels: impl IntoIterator<Item = &'a [u8]>,
    qtype: u16,
    qclass: u16,
) -> bool {
    let start = out.len();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&arcount.to_be_bytes());
    let name_start = out.len();
    for label in labels {
        let Ok(len) = u8::try_from(label.len()) else {
            out.truncate(start);
            return false;
        };
        if len == 0 || len > 63 {
            out.truncate(start);
            return false;
        }
        out.push(len);
        out.extend_from_slice(label);
    }
    out.push(0);
    if out.len() - name_start > 255 {
        out.truncate(start);
        return false;
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    true
}
