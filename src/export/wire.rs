//! The writer threads' encoders, written to cost no allocation per event: dnstap frames in
//! protobuf wire format, field by field into reused buffers through prost's encoding functions
//! (instead of building prost structs with a `Vec` per field and message for every event), the
//! DNS query and response inside them (header and question, from the recorded name), and the
//! `extra` JSON (same keys and order as [`super::dnstap::extra_json`]) through serde_json's
//! serializer.
//!
//! The one hand-written encoder is [`dns_message`]: a header and one question
//! ([`crate::wire::put_header_question`]), which hickory builds through a `Message` with a `Name` of heap labels per event
//! (a third of the dnstap writer's time in the profile); it falls back to hickory for any name it
//! does not write plainly, and a test compares its bytes with hickory's.
//!
//! The prost types stay the decoding side and the reference: the tests below decode what is
//! encoded here with them.

use prost::encoding::{WireType, encode_key, encode_varint};
use serde::ser::{SerializeMap, Serializer as _};

/// A varint field.
pub fn uint(out: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(v, out);
}

/// A fixed32 field.
pub fn fixed32(out: &mut Vec<u8>, tag: u32, v: u32) {
    prost::encoding::fixed32::encode(tag, &v, out);
}

/// A bytes, string or embedded-message field.
pub fn bytes(out: &mut Vec<u8>, tag: u32, v: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

/// Appends the DNS message of a query for `qname`/`qtype` (class IN, RD), or, with
/// `Some(rcode)`, of its answer without records (QR, RD, RA, the rcode's low four bits).
/// `false` (and nothing appended) for a name this cannot write: an escape (`\`), an empty or
/// over-long label, or a name over 255 octets; the caller then falls back to hickory.
pub fn dns_message(out: &mut Vec<u8>, qname: &str, qtype: u16, rcode: Option<u16>) -> bool {
    if qname.contains('\\') {
        return false;
    }
    let flags: u16 = match rcode {
        None => 0x0100,
        Some(r) => 0x8180 | (r & 0x000f),
    };
    let name = qname.strip_suffix('.').unwrap_or(qname);
    let labels = name
        .split('.')
        .filter(|_| !name.is_empty())
        .map(str::as_bytes);
    crate::wire::put_header_question(out, (0, flags, 0), labels, qtype, 1)
}

/// Appends a JSON object of string-or-null members, in order; a member with `skip_none` set is
/// left out when it has no value.
pub fn json_object(out: &mut Vec<u8>, members: &[(&str, Option<&str>, bool)]) {
    let mut ser = serde_json::Serializer::new(out);
    // Writing into a Vec cannot fail, and string keys and values always serialize.
    let Ok(mut map) = ser.serialize_map(None) else {
        return;
    };
    for &(k, v, skip_none) in members {
        if v.is_none() && skip_none {
            continue;
        }
        let _ = map.serialize_entry(k, &v);
    }
    let _ = map.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    fn hickory(qname: &str, qtype: RecordType, rcode: Option<ResponseCode>) -> Vec<u8> {
        let mut name = Name::from_ascii(qname).unwrap();
        name.set_fqdn(true);
        let mut q = Message::query();
        q.metadata.op_code = OpCode::Query;
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(name, qtype));
        if let Some(r) = rcode {
            q.metadata.message_type = MessageType::Response;
            q.metadata.recursion_available = true;
            q.metadata.response_code = r;
        }
        q.to_vec().unwrap()
    }

    #[test]
    fn dns_messages_match_hickorys_encoding() {
        for name in [
            "px.tracker.example",
            "px.tracker.example.",
            "a",
            ".",
            "Mixed.Case.Test",
        ] {
            for rcode in [
                None,
                Some(ResponseCode::NXDomain),
                Some(ResponseCode::NoError),
            ] {
                let mut out = vec![9];
                let r = rcode.map(u16::from);
                assert!(dns_message(&mut out, name, u16::from(RecordType::AAAA), r));
                // hickory draws a random ID; ours is 0 (the message is rebuilt, not the
                // client's).
                assert_eq!(out[1..3], [0, 0]);
                let h = hickory(name, RecordType::AAAA, rcode);
                assert_eq!(out[3..], h[2..], "{name}");
            }
        }
        let long = "a".repeat(64);
        for bad in ["a..b", &long, r"a\.b", ".a"] {
            let mut out = vec![9];
            assert!(!dns_message(&mut out, bad, 1, None), "{bad}");
            assert_eq!(out, [9]);
        }
        let too_long = ["abcdefghi"; 26].join(".");
        assert!(!dns_message(&mut Vec::new(), &too_long, 1, None));
    }

    #[test]
    fn json_matches_serde_json() {
        let tricky = "q\"uote\\back\nline\u{1}ctl\u{7f}é]";
        let mut out = Vec::new();
        json_object(
            &mut out,
            &[
                ("zone", Some(tricky), false),
                ("list", None, false),
                ("exception", None, true),
                ("client", Some("c-1"), true),
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"zone": tricky, "list": null, "client": "c-1"})
        );
    }

    #[test]
    fn varints_and_fields_match_protobuf() {
        let mut out = Vec::new();
        uint(&mut out, 15, 1);
        fixed32(&mut out, 9, 7);
        bytes(&mut out, 1, b"ab");
        assert_eq!(out, [0x78, 1, 0x4d, 7, 0, 0, 0, 0x0a, 2, b'a', b'b']);
    }
}
