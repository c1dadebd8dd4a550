//! The one encoder: writes an [`Answer`] for a [`Query`] into a reusable buffer, with no
//! allocation beyond the buffer's growth. Hand-written rather than hickory's `Message` encoder
//! because it runs on every answer of the UDP fast path (a cached answer is a copy and a few
//! patches, ~10 ns, against ~1 µs to build and emit a `Message`), and because hickory-server's
//! response encoder never compresses names against the question (61 bytes from the cache, 77 on
//! a miss for the same answer). Upstream answers were encoded once by hickory when they arrived
//! ([`crate::wire::build_wire`]); here they are only patched.
//!
//! Over UDP an answer larger than the client's limit is replaced by a truncated one (TC=1, the
//! question and OPT only), so the client retries over TCP.

use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use super::{
    ANY_TTL, AddrSet, Answer, BlockedShape, CANARY_TEXT, CANARY_TTL, EDE_BLOCKED, EDE_FILTERED,
    EDE_STALE, LOCAL_TTL, Local, STALE_TEXT, STALE_TTL,
};
use crate::wire::{EDE_CODE, OPT, Query, WireAnswer, be16};

/// Longest EDE extra text we write (keeps a blocked answer well inside 512 bytes).
const EDE_TEXT_MAX: usize = 400;

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn flags(q: &Query<'_>, rcode: ResponseCode, ad: bool) -> u16 {
    let mut f: u16 = 0x8000 | 0x0080 | (u16::from(q.opcode & 0x0f) << 11); // QR, RA, opcode
    if q.rd {
        f |= 0x0100;
    }
    if q.cd {
        f |= 0x0010;
    }
    if ad {
        f |= 0x0020;
    }
    f | u16::from(rcode.low() & 0x0f)
}

/// Header, question; section counts as given (OPT added to `ar` when the client sent EDNS).
fn head(out: &mut Vec<u8>, q: &Query<'_>, rcode: ResponseCode, ad: bool, counts: [u16; 3]) {
    out.clear();
    put16(out, q.id);
    put16(out, flags(q, rcode, ad));
    put16(out, q.qdcount);
    put16(out, counts[0]);
    put16(out, counts[1]);
    put16(out, counts[2] + u16::from(q.edns.is_some()));
    out.extend_from_slice(q.question);
}

/// The response OPT: the client's payload clamped, the extended rcode bits, DO echoed, options
/// (the Client Subnet echo, then EDE).
fn opt<'o>(
    out: &mut Vec<u8>,
    q: &Query<'_>,
    rcode: ResponseCode,
    ede: impl Iterator<Item = (Option<u16>, &'o [u8])> + Clone,
) {
    if q.edns.is_none() {
        return;
    }
    out.push(0);
    put16(out, OPT);
    put16(out, q.udp_limit() as u16);
    out.push(rcode.high());
    out.push(0);
    put16(out, if q.dnssec_ok() { 0x8000 } else { 0 });
    let rd_at = out.len();
    put16(out, 0);
    // RFC 7871 §7.2.1: a request's Client Subnet comes back with scope 0, on every answer.
    if let Some(ecs) = &q.ecs {
        ecs.write_echo(out);
    }
    for (info, data) in ede {
        let data = &data[..data.len().min(EDE_TEXT_MAX + 2)];
        put16(out, EDE_CODE);
        match info {
            Some(code) => {
                let text = &data[..data.len().min(EDE_TEXT_MAX)];
                put16(out, (2 + text.len()) as u16);
                put16(out, code);
                out.extend_from_slice(text);
            }
            None => {
                put16(out, data.len() as u16);
                out.extend_from_slice(data);
            }
        }
    }
    let rdlen = (out.len() - rd_at - 2) as u16;
    out[rd_at..rd_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

fn no_ede<'o>() -> std::iter::Empty<(Option<u16>, &'o [u8])> {
    std::iter::empty()
}

/// The offset (from the message start) of the suffix of the question name with `labels` labels,
/// as a compression pointer target; the whole name when `None` or when the name has fewer.
fn owner_at(q: &Query<'_>, labels: Option<usize>) -> u16 {
    // Count the labels, then walk to the first label of the suffix: no table, no allocation.
    let label_starts = || {
        let mut i = 0usize;
        std::iter::from_fn(move || {
            let len = *q.question.get(i)?;
            if len == 0 || len > 63 {
                return None;
            }
            let at = i;
            i += 1 + usize::from(len);
            Some(at)
        })
    };
    let at = match labels {
        Some(l) if l > 0 => {
            let n = label_starts().count();
            if l <= n {
                label_starts().nth(n - l).unwrap_or(0)
            } else {
                0
            }
        }
        _ => 0,
    };
    0xc000 | (12 + at) as u16
}

/// A record whose owner is a pointer, with its rdata written by `rdata`.
fn record(out: &mut Vec<u8>, owner: u16, rtype: u16, ttl: u32, rdata: impl FnOnce(&mut Vec<u8>)) {
    put16(out, owner);
    put16(out, rtype);
    put16(out, 1);
    put32(out, ttl);
    let rd_at = out.len();
    put16(out, 0);
    rdata(out);
    let rdlen = (out.len() - rd_at - 2) as u16;
    out[rd_at..rd_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

/// The synthetic SOA of negative answers (`pixelguard.invalid.`), MINIMUM = TTL.
fn soa(out: &mut Vec<u8>, owner: u16, ttl: u32) {
    record(out, owner, 6, ttl, |out| {
        let mname_at = out.len();
        out.extend_from_slice(b"\x0apixelguard\x07invalid\x00");
        out.extend_from_slice(b"\x0ahostmaster");
        put16(out, 0xc000 | mname_at as u16);
        for v in [1, 3600, 600, 86_400, ttl] {
            put32(out, v);
        }
    });
}

/// Writes `answer` for `q` into `out`, at most `limit` bytes (truncated with TC=1 beyond it).
/// An empty `out` means: send nothing.
pub fn encode(out: &mut Vec<u8>, q: &Query<'_>, answer: &Answer<'_>, limit: usize) {
    match answer {
        Answer::Drop | Answer::Unresolved => out.clear(),
        Answer::Code(rcode) => {
            head(out, q, *rcode, false, [0, 0, 0]);
            if matches!(*rcode, ResponseCode::NotImp | ResponseCode::FormErr) {
                // A request we do not serve at all gets a minimal header (RFC 8906, ISC's
                // compliance probes): QR, the opcode echoed, RD copied; RA, AD, CD, AA, TC, Z
                // clear.
                let minimal = flags(q, *rcode, false) & !(0x0080 | 0x0010);
                out[2..4].copy_from_slice(&minimal.to_be_bytes());
            }
            opt(out, q, *rcode, no_ede());
        }
        Answer::Blocked(b) => blocked(out, q, b),
        Answer::Canary { nxdomain } => {
            let rcode = if *nxdomain {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            };
            head(out, q, rcode, false, [0, 1, 0]);
            soa(out, owner_at(q, None), CANARY_TTL);
            let ede = std::iter::once((Some(EDE_FILTERED), CANARY_TEXT.as_bytes()));
            opt(out, q, rcode, ede);
        }
        Answer::Svcb(rdatas) => {
            let n = rdatas.len().min(usize::from(u16::MAX)) as u16;
            head(out, q, ResponseCode::NoError, false, [n, 0, 0]);
            for rd in rdatas.iter() {
                record(out, owner_at(q, None), 64, super::DDR_TTL, |out| {
                    out.extend_from_slice(rd)
                });
            }
            opt(out, q, ResponseCode::NoError, no_ede());
        }
        Answer::Any => {
            head(out, q, ResponseCode::NoError, false, [1, 0, 0]);
            record(out, owner_at(q, None), 13, ANY_TTL, |out| {
                out.push(7);
                out.extend_from_slice(b"RFC8482");
                out.push(0);
            });
            opt(out, q, ResponseCode::NoError, no_ede());
        }
        Answer::Local(l) => local(out, q, l),
        Answer::Upstream {
            entry,
            age,
            max_ttl,
        } => {
            let w = &entry.wire;
            patch(out, q, w, *age, *max_ttl);
            let ede = w.ede.iter().map(|d| (None, &d[..]));
            opt(out, q, w.rcode, ede);
        }
        Answer::Stale(entry) => {
            let w = &entry.wire;
            patch(out, q, w, 0, STALE_TTL);
            let ede = std::iter::once((Some(EDE_STALE), STALE_TEXT.as_bytes()));
            opt(out, q, w.rcode, ede);
        }
    }
    if out.len() > limit {
        truncated(out, q);
    }
}

/// A stored upstream answer for this client: its id, flags and question (same name, the
/// client's case), TTLs aged and capped. OPT is written after.
fn patch(out: &mut Vec<u8>, q: &Query<'_>, w: &WireAnswer, age: u32, max_ttl: u32) {
    let bytes = w.bytes();
    out.clear();
    out.extend_from_slice(bytes);
    let ad = w.ad && (q.dnssec_ok() || q.ad);
    let f = flags(q, w.rcode, ad);
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    out[2..4].copy_from_slice(&f.to_be_bytes());
    // The question with the client's case: the same name (the cache key), so the same length.
    let qlen = q.question.len();
    if out.len() >= 12 + qlen && bytes.get(12 + qlen - 4..12 + qlen) == q.question.get(qlen - 4..) {
        out[12..12 + qlen].copy_from_slice(q.question);
    }
    for (at, ttl) in w.ttls() {
        let v = ttl.min(max_ttl).saturating_sub(age);
        out[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    if q.edns.is_some() {
        let ar = be16(out, 10).unwrap_or(0).saturating_add(1);
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

fn blocked(out: &mut Vec<u8>, q: &Query<'_>, b: &super::Blocked<'_>) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    const NULL4: [IpAddr; 1] = [IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    const NULL6: [IpAddr; 1] = [IpAddr::V6(Ipv6Addr::UNSPECIFIED)];
    let ede = std::iter::once((Some(EDE_BLOCKED), b.ede.as_bytes()));
    let matching = |ip: &&IpAddr| (q.qtype == 1 && ip.is_ipv4()) || (q.qtype == 28 && ip.is_ipv6());
    let (rcode, addrs): (ResponseCode, &[IpAddr]) = match b.shape() {
        BlockedShape::Negative(r) => (ResponseCode::from(0, r), &[]),
        BlockedShape::Refused => (ResponseCode::Refused, &[]),
        BlockedShape::Addresses(AddrSet::Null) => (
            ResponseCode::NoError,
            match q.qtype {
                1 => &NULL4,
                28 => &NULL6,
                _ => &[],
            },
        ),
        BlockedShape::Addresses(AddrSet::Listed(list)) => (ResponseCode::NoError, list),
    };
    let n = addrs.iter().filter(matching).count();
    // NXDOMAIN / NODATA carry a SOA so clients cache the negative answer; so does an address
    // response with no address of the asked family.
    let soa_owner = rcode != ResponseCode::Refused && n == 0;
    head(out, q, rcode, false, [n as u16, u16::from(soa_owner), 0]);
    for ip in addrs.iter().filter(matching) {
        match ip {
            IpAddr::V4(v4) => record(out, 0xc00c, 1, b.ttl, |o| o.extend_from_slice(&v4.octets())),
            IpAddr::V6(v6) => record(out, 0xc00c, 28, b.ttl, |o| {
                o.extend_from_slice(&v6.octets())
            }),
        }
    }
    if soa_owner {
        soa(out, owner_at(q, b.soa_labels), b.ttl);
    }
    opt(out, q, rcode, ede);
}

/// A locally served zone's answer: AA=1 (pixelguard answers as the zone's authority, RFC 6303
/// section 3), its records, or the SOA in authority for a negative answer (RFC 2308). Every
/// name is a pointer into the question.
fn local(out: &mut Vec<u8>, q: &Query<'_>, l: &Local) {
    let r = l.records;
    let n = r.count();
    let negative = n == 0;
    head(out, q, l.rcode, false, [n, u16::from(negative), 0]);
    out[2] |= 0x04; // AA
    let apex = owner_at(q, Some(l.apex_labels));
    let soa = |out: &mut Vec<u8>| {
        record(out, apex, 6, LOCAL_TTL, |out| {
            put16(out, apex); // MNAME: the apex itself
            out.extend_from_slice(b"\x06nobody\x07invalid\x00");
            for v in [1, 3600, 1200, 604_800, LOCAL_TTL] {
                put32(out, v);
            }
        });
    };
    if r.soa {
        soa(out);
    }
    if r.ns {
        record(out, apex, 2, LOCAL_TTL, |out| put16(out, apex));
    }
    if r.a {
        record(out, 0xc00c, 1, LOCAL_TTL, |o| {
            o.extend_from_slice(&[127, 0, 0, 1])
        });
    }
    if r.aaaa {
        let one = std::net::Ipv6Addr::LOCALHOST.octets();
        record(out, 0xc00c, 28, LOCAL_TTL, |o| o.extend_from_slice(&one));
    }
    if negative {
        soa(out);
    }
    opt(out, q, l.rcode, no_ede());
}

/// Replaces an answer too large for the client by TC=1 with the question and OPT only.
fn truncated(out: &mut Vec<u8>, q: &Query<'_>) {
    let rcode = ResponseCode::from(0, out.get(3).map_or(0, |b| b & 0x0f));
    let ad = out.get(3).is_some_and(|b| b & 0x20 != 0);
    head(out, q, rcode, ad, [0, 0, 0]);
    out[2] |= 0x02; // TC
    opt(out, q, rcode, no_ede());
}

/// A FORMERR reply (header only) to a request whose header is readable but whose body is not (`None` when
/// not even the header is, or when it is a response: never answer those).
pub fn formerr_for(raw: &[u8]) -> Option<Vec<u8>> {
    let mut d = BinDecoder::new(raw);
    let h = Header::read(&mut d).ok()?;
    if h.metadata.message_type != MessageType::Query {
        return None;
    }
    // The same minimal header as every FORMERR: QR, opcode and RD only.
    let mut meta = hickory_proto::op::Metadata::response_from_request(&h.metadata);
    meta.response_code = ResponseCode::FormErr;
    meta.checking_disabled = false;
    let header = Header {
        metadata: meta,
        counts: Default::default(),
    };
    let mut out = Vec::with_capacity(12);
    let mut e = BinEncoder::new(&mut out);
    header.emit(&mut e).ok()?;
    Some(out)
}
