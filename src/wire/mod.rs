//! DNS wire format, below every policy: the [`Query`] view of a request and its strict parser
//! for the UDP fast path ([`query`]), and the form in which upstream answers are kept and served
//! ([`answer`]: built once per upstream answer, patched per client), and the EDNS Client Subnet
//! of a request ([`ecs`]). The encoder that turns an
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
