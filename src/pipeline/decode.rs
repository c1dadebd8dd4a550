//! Decoding for the full path: any request hickory's decoder reads (compressed names, escapes,
//! several questions, unknown options) becomes the same [`Query`] view the fast parser gives,
//! or an error code answered before any stage. In this order, before anything else reads the
//! request: a response is never answered (that is how reflection loops start); an unreadable body
//! gets FORMERR; an opcode other than QUERY gets NOTIMP; a request without exactly one question
//! gets FORMERR; an EDNS version above 0 gets BADVERS; a malformed EDNS Client Subnet gets FORMERR.
//!
//! A request in the common shape (what the UDP fast path hands over on a cache miss) is read by
//! the fast path's strict parser ([`wire::parse_query`]) instead: it accepts only requests that
//! none of the checks above rejects, and gives the same view without copying the request into
//! hickory's message (`tests/udp_paths.rs` checks both paths answer alike).

use std::net::SocketAddr;

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use crate::wire::{self, Query};

/// An owned, decoded request; [`Decoded::view`] lends the [`Query`] the stages read.
pub struct Decoded {
    id: u16,
    opcode: u8,
    rd: bool,
    cd: bool,
    ad: bool,
    name: String,
    question: Vec<u8>,
    qdcount: u16,
    qtype: u16,
    qclass: u16,
    edns: Option<(u16, bool)>,
    ecs: Option<crate::wire::Ecs>,
    /// `Some` when the request is answered with this code before any stage.
    pub invalid: Option<ResponseCode>,
}

/// What to do with a request's bytes.
pub enum Decode {
    /// Serve it (or answer `invalid`).
    Request(Box<Decoded>),
    /// Send these bytes (FORMERR for a readable header over an unreadable body).
    Reply(Vec<u8>),
    /// Send nothing.
    Ignore,
}

impl Decoded {
    /// The view the stages and the encoder read.
    pub fn view(&self) -> Query<'_> {
        Query {
            id: self.id,
            opcode: self.opcode,
            rd: self.rd,
            cd: self.cd,
            ad: self.ad,
            name: &self.name,
            question: &self.question,
            qdcount: self.qdcount,
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
            ecs: self.ecs,
        }
    }
}

/// Decodes a request.
pub fn decode(raw: &[u8], src: SocketAddr, tcp: bool) -> Decode {
    if let Some(p) = wire::parse_query(raw) {
        return Decode::Request(Box::new(from_view(&p.view())));
    }
    let protocol = if tcp { Protocol::Tcp } else { Protocol::Udp };
    let Ok(req) = Request::from_bytes(raw.to_vec(), src, protocol) else {
        return crate::respond::formerr_for(raw).map_or(Decode::Ignore, Decode::Reply);
    };
    if req.metadata.message_type != MessageType::Query {
        return Decode::Ignore;
    }
    let meta = &req.metadata;
    let mut d = Decoded {
        id: meta.id,
        opcode: u8::from(meta.op_code),
        rd: meta.recursion_desired,
        cd: meta.checking_disabled,
        ad: meta.authentic_data,
        name: String::new(),
        question: Vec::new(),
        qdcount: 0,
        qtype: 0,
        qclass: 0,
        edns: req
            .edns
            .as_ref()
            .map(|e| (e.max_payload(), e.flags().dnssec_ok)),
        ecs: None,
        invalid: None,
    };
    (d.question, d.qdcount) = echo(&req);
    if meta.op_code != OpCode::Query {
        d.invalid = Some(ResponseCode::NotImp);
        return Decode::Request(Box::new(d));
    }
    let Ok(info) = req.request_info() else {
        d.invalid = Some(ResponseCode::FormErr);
        return Decode::Request(Box::new(d));
    };
    let original = info.query.original();
    let lower = original.name().to_ascii().to_ascii_lowercase();
    d.name = lower.strip_suffix('.').unwrap_or(&lower).to_owned();
    d.qtype = u16::from(original.query_type());
    d.qclass = u16::from(original.query_class());
    // The question as the client sent it, case kept (a first name cannot be compressed).
    let mut q = Vec::with_capacity(d.name.len() + 6);
    if original.emit(&mut BinEncoder::new(&mut q)).is_ok() {
        d.question = q;
        d.qdcount = 1;
    }
    if req.edns.as_ref().is_some_and(|e| e.version() > 0) {
        d.invalid = Some(ResponseCode::BADVERS);
        return Decode::Request(Box::new(d));
    }
    // RFC 7871 §7.1.1: a malformed Client Subnet is FORMERR (and not echoed).
    if req.edns.is_some() {
        match wire::ecs::opt_rdata(raw).map(wire::ecs::from_options) {
            Some(Ok(ecs)) => d.ecs = ecs,
            Some(Err(wire::ecs::BadEcs)) => d.invalid = Some(ResponseCode::FormErr),
            None => {}
        }
    }
    Decode::Request(Box::new(d))
}

/// The owned form of a request the strict parser read (valid by construction: QUERY, one
/// question, EDNS version 0, a well-formed Client Subnet if any).
fn from_view(q: &Query<'_>) -> Decoded {
    Decoded {
        id: q.id,
        opcode: q.opcode,
        rd: q.rd,
        cd: q.cd,
        ad: q.ad,
        name: q.name.to_owned(),
        question: q.question.to_vec(),
        qdcount: q.qdcount,
        qtype: q.qtype,
        qclass: q.qclass,
        edns: q.edns,
        ecs: q.ecs,
        invalid: None,
    }
}

/// The question an error reply echoes, re-encoded without compression: a pointer in the
/// client's bytes may point at parts of its message the reply does not carry, and the reply
/// would not parse (found by the `wire` fuzz target: a FORMERR to 32 questions with pointers).
/// Only a request with exactly one question has one to echo; other error replies carry none.
fn echo(req: &Request) -> (Vec<u8>, u16) {
    let [q] = req.queries.queries() else {
        return (Vec::new(), 0);
    };
    let mut out = Vec::new();
    match q.original().emit(&mut BinEncoder::new(&mut out)) {
        Ok(()) => (out, 1),
        Err(_) => (Vec::new(), 0),
    }
}
