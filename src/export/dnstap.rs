//! dnstap messages of recorded answers: the protobuf types of dnstap.proto (written as prost
//! structs, field numbers as in the .proto of github.com/dnstap/dnstap.pb, so building needs no
//! `protoc`) and the encoding of one [`QueryEvent`] into CLIENT_QUERY / CLIENT_RESPONSE (and,
//! with `forwarder = true`, FORWARDER_QUERY / FORWARDER_RESPONSE) messages.
//!
//! The DNS messages inside are rebuilt from the recorded event (question, flags, rcode): the
//! request path hands over no wire bytes, so recording costs it no copy. The policy details go
//! in `extra` as compact JSON (`zone`, `outcome`, `list`, `rule`, `vendor`, `category`,
//! `client`) and in the dnstap `Policy` message. Under `client = "hash"` or `"none"` no address
//! field is written; `masked` writes the masked network; `full` the address.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use hickory_proto::op::{Message as DnsMessage, MessageType, OpCode, Query};
use hickory_proto::rr::Name;

use super::{QueryEvent, wire};
use crate::config::{ClientMode, DnstapConfig};
use crate::outcome::Outcome;

/// `Dnstap` (dnstap.proto): the top-level frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dnstap {
    /// `identity = 1`: the server's identity.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity: Option<Vec<u8>>,
    /// `version = 2`: the software's version.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub version: Option<Vec<u8>>,
    /// `extra = 3`: pixelguard's policy JSON.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub extra: Option<Vec<u8>>,
    /// `type = 15` (`Dnstap.Type`, always MESSAGE).
    #[prost(enumeration = "DnstapType", required, tag = "15")]
    pub r#type: i32,
    /// `message = 14`.
    #[prost(message, optional, tag = "14")]
    pub message: Option<Message>,
}

/// `Dnstap.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DnstapType {
    /// `MESSAGE = 1`.
    Message = 1,
}

/// `SocketFamily`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SocketFamily {
    /// `INET = 1`.
    Inet = 1,
    /// `INET6 = 2`.
    Inet6 = 2,
}

/// `Message.Type` (the ones pixelguard sends, and the rest for decoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
#[allow(missing_docs)]
pub enum MessageKind {
    AuthQuery = 1,
    AuthResponse = 2,
    ResolverQuery = 3,
    ResolverResponse = 4,
    ClientQuery = 5,
    ClientResponse = 6,
    ForwarderQuery = 7,
    ForwarderResponse = 8,
    StubQuery = 9,
    StubResponse = 10,
    ToolQuery = 11,
    ToolResponse = 12,
    UpdateQuery = 13,
    UpdateResponse = 14,
}

/// `Policy.Action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
#[allow(missing_docs)]
pub enum PolicyAction {
    Nxdomain = 1,
    Nodata = 2,
    Pass = 3,
    Drop = 4,
    Truncate = 5,
    LocalData = 6,
}

/// `Policy.Match`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
#[allow(missing_docs)]
pub enum PolicyMatch {
    Qname = 1,
    ClientIp = 2,
    ResponseIp = 3,
    NsName = 4,
    NsIp = 5,
}

/// `Policy`: the rule that decided.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Policy {
    /// `type = 1`: the policy engine (`pixelguard`).
    #[prost(string, optional, tag = "1")]
    pub r#type: Option<String>,
    /// `rule = 2`: the list name.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub rule: Option<Vec<u8>>,
    /// `action = 3`.
    #[prost(enumeration = "PolicyAction", optional, tag = "3")]
    pub action: Option<i32>,
    /// `match = 4`.
    #[prost(enumeration = "PolicyMatch", optional, tag = "4")]
    pub r#match: Option<i32>,
    /// `value = 5`: the matched rule name.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub value: Option<Vec<u8>>,
}

/// `Message` (dnstap.proto field numbers 1–16).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// `type = 1`.
    #[prost(enumeration = "MessageKind", required, tag = "1")]
    pub r#type: i32,
    /// `socket_family = 2`.
    #[prost(enumeration = "SocketFamily", optional, tag = "2")]
    pub socket_family: Option<i32>,
    /// `socket_protocol = 3`.
    #[prost(int32, optional, tag = "3")]
    pub socket_protocol: Option<i32>,
    /// `query_address = 4`.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub query_address: Option<Vec<u8>>,
    /// `response_address = 5`.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub response_address: Option<Vec<u8>>,
    /// `query_port = 6`.
    #[prost(uint32, optional, tag = "6")]
    pub query_port: Option<u32>,
    /// `response_port = 7`.
    #[prost(uint32, optional, tag = "7")]
    pub response_port: Option<u32>,
    /// `query_time_sec = 8`.
    #[prost(uint64, optional, tag = "8")]
    pub query_time_sec: Option<u64>,
    /// `query_time_nsec = 9`.
    #[prost(fixed32, optional, tag = "9")]
    pub query_time_nsec: Option<u32>,
    /// `query_message = 10`.
    #[prost(bytes = "vec", optional, tag = "10")]
    pub query_message: Option<Vec<u8>>,
    /// `query_zone = 11`.
    #[prost(bytes = "vec", optional, tag = "11")]
    pub query_zone: Option<Vec<u8>>,
    /// `response_time_sec = 12`.
    #[prost(uint64, optional, tag = "12")]
    pub response_time_sec: Option<u64>,
    /// `response_time_nsec = 13`.
    #[prost(fixed32, optional, tag = "13")]
    pub response_time_nsec: Option<u32>,
    /// `response_message = 14`.
    #[prost(bytes = "vec", optional, tag = "14")]
    pub response_message: Option<Vec<u8>>,
    /// `policy = 15`.
    #[prost(message, optional, tag = "15")]
    pub policy: Option<Policy>,
    /// `http_protocol = 16`.
    #[prost(int32, optional, tag = "16")]
    pub http_protocol: Option<i32>,
}

/// The `extra` JSON of an event: the policy details and the client as configured (every key
/// present, `null` when not known; `exception` only on answers an `[[exceptions]]` entry let
/// through: its label).
pub fn extra_json(ev: &QueryEvent, client: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    push_extra(&mut out, ev, client);
    out
}

fn push_extra(out: &mut Vec<u8>, ev: &QueryEvent, client: Option<&str>) {
    let e = &ev.entry;
    wire::json_object(
        out,
        &[
            ("zone", e.zone.as_deref(), false),
            ("outcome", Some(e.outcome.as_str()), false),
            ("list", e.list.as_deref(), false),
            ("rule", e.rule.as_deref(), false),
            ("vendor", e.vendor.as_deref(), false),
            ("category", e.category, false),
            ("client", client, false),
            ("exception", e.exception.as_deref(), true),
        ],
    );
}

fn split_time(t: SystemTime) -> (u64, u32) {
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (d.as_secs(), d.subsec_nanos())
}

/// The DNS query and response of an event through hickory: the fallback for a name
/// [`wire::dns_message`] does not write (escapes, bad labels); both empty when it does not parse
/// back either (the message fields are then left out).
fn dns_messages_hickory(ev: &QueryEvent, q: &mut Vec<u8>, r: &mut Vec<u8>) {
    let e = &ev.entry;
    let Ok(mut name) = Name::from_ascii(&*e.qname) else {
        return;
    };
    name.set_fqdn(true);
    let mut m = DnsMessage::query();
    m.metadata.op_code = OpCode::Query;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name, e.qtype));
    if let Ok(b) = m.to_vec() {
        q.extend_from_slice(&b);
    }
    m.metadata.message_type = MessageType::Response;
    m.metadata.recursion_available = true;
    m.metadata.response_code = e.rcode;
    if let Ok(b) = m.to_vec() {
        r.extend_from_slice(&b);
    }
}

fn action(ev: &QueryEvent) -> PolicyAction {
    let e = &ev.entry;
    match e.outcome {
        Outcome::Blocked if e.rcode == hickory_proto::op::ResponseCode::NXDomain => {
            PolicyAction::Nxdomain
        }
        Outcome::Blocked => PolicyAction::LocalData,
        _ => PolicyAction::Pass,
    }
}

/// The address written for a client under `mode` (none for `hash` and `none`): its bytes in
/// the first `len` of the array.
fn client_address(ip: IpAddr, mode: ClientMode) -> Option<([u8; 16], usize)> {
    let ip = ip.to_canonical();
    let mut b = [0u8; 16];
    match (mode, ip) {
        (ClientMode::Full, IpAddr::V4(a)) => b[..4].copy_from_slice(&a.octets()),
        (ClientMode::Full, IpAddr::V6(a)) => return Some((a.octets(), 16)),
        (ClientMode::Masked, IpAddr::V4(a)) => {
            b[..3].copy_from_slice(&a.octets()[..3]);
        }
        (ClientMode::Masked, IpAddr::V6(a)) => {
            return Some(((u128::from(a) & (u128::MAX << 72)).to_be_bytes(), 16));
        }
        (ClientMode::Hash | ClientMode::None, _) => return None,
    }
    Some((b, 4))
}

/// The version string of every frame.
const VERSION: &[u8] = concat!("pixelguard ", env!("CARGO_PKG_VERSION")).as_bytes();

/// One writer thread's dnstap encoding: buffers reused from event to event, so that an event
/// costs no allocation beyond its client's pseudonym.
#[derive(Debug, Default)]
pub struct Encoder {
    extra: Vec<u8>,
    query: Vec<u8>,
    response: Vec<u8>,
    policy: Vec<u8>,
    msg: Vec<u8>,
    frame: Vec<u8>,
}

/// What differs between the messages of one event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ClientQuery,
    ForwarderQuery,
    ForwarderResponse,
    ClientResponse,
}

impl Encoder {
    /// Writes the frames of one event to `w` as Frame Streams data frames: CLIENT_QUERY, then
    /// (for a fresh upstream answer with `forwarder`) FORWARDER_QUERY and FORWARDER_RESPONSE,
    /// then CLIENT_RESPONSE. The policy (`extra` JSON and the `Policy` message) rides on the
    /// CLIENT_RESPONSE only: it describes the answer, and the other messages of the event would
    /// only carry a copy of it.
    pub fn write(
        &mut self,
        ev: &QueryEvent,
        cfg: &DnstapConfig,
        w: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        self.each(ev, cfg, |f| super::framestream::write_data(w, f))
    }

    /// Calls `out` with each encoded frame of one event (see [`Encoder::write`]).
    pub fn each(
        &mut self,
        ev: &QueryEvent,
        cfg: &DnstapConfig,
        mut out: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let e = &ev.entry;
        let mode = ev.client_override.unwrap_or(cfg.client);
        let client = ev.key.client(e.client, mode);
        self.extra.clear();
        push_extra(&mut self.extra, ev, client.as_deref());
        self.query.clear();
        self.response.clear();
        let qtype = u16::from(e.qtype);
        let rcode = u16::from(e.rcode);
        if !(wire::dns_message(&mut self.query, &e.qname, qtype, None)
            && wire::dns_message(&mut self.response, &e.qname, qtype, Some(rcode)))
        {
            self.query.clear();
            self.response.clear();
            dns_messages_hickory(ev, &mut self.query, &mut self.response);
        }
        self.policy.clear();
        if let Some(rule) = e.rule.as_deref() {
            let p = &mut self.policy;
            wire::bytes(p, 1, b"pixelguard");
            if let Some(l) = e.list.as_deref() {
                wire::bytes(p, 2, l.as_bytes());
            }
            wire::uint(p, 3, action(ev) as u64);
            wire::uint(p, 4, PolicyMatch::Qname as u64);
            wire::bytes(p, 5, rule.as_bytes());
        }
        let times = (
            split_time(e.ts.checked_sub(e.duration).unwrap_or(e.ts)),
            split_time(e.ts),
        );
        let addr = client_address(e.client, mode);
        let fwd = if cfg.forwarder { e.upstream } else { None };
        self.message(Kind::ClientQuery, ev, times, addr, None, cfg, &mut out)?;
        if let Some(up) = fwd {
            for kind in [Kind::ForwarderQuery, Kind::ForwarderResponse] {
                self.message(kind, ev, times, None, Some(up), cfg, &mut out)?;
            }
        }
        self.message(Kind::ClientResponse, ev, times, addr, None, cfg, &mut out)
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        kind: Kind,
        ev: &QueryEvent,
        ((qs, qn), (rs, rn)): ((u64, u32), (u64, u32)),
        addr: Option<([u8; 16], usize)>,
        upstream: Option<std::net::SocketAddr>,
        cfg: &DnstapConfig,
        out: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let m = &mut self.msg;
        m.clear();
        let t = match kind {
            Kind::ClientQuery => MessageKind::ClientQuery,
            Kind::ForwarderQuery => MessageKind::ForwarderQuery,
            Kind::ForwarderResponse => MessageKind::ForwarderResponse,
            Kind::ClientResponse => MessageKind::ClientResponse,
        };
        wire::uint(m, 1, t as u64);
        let ip = upstream.map_or(ev.entry.client, |u| u.ip()).to_canonical();
        let family = match ip {
            IpAddr::V4(_) => SocketFamily::Inet,
            IpAddr::V6(_) => SocketFamily::Inet6,
        };
        wire::uint(m, 2, family as u64);
        if let Some((a, n)) = addr {
            wire::bytes(m, 4, &a[..n]);
        }
        if let Some(up) = upstream {
            match ip {
                IpAddr::V4(a) => wire::bytes(m, 5, &a.octets()),
                IpAddr::V6(a) => wire::bytes(m, 5, &a.octets()),
            }
            wire::uint(m, 7, u64::from(up.port()));
        }
        wire::uint(m, 8, qs);
        wire::fixed32(m, 9, qn);
        let response = matches!(kind, Kind::ForwarderResponse | Kind::ClientResponse);
        if matches!(kind, Kind::ClientQuery | Kind::ForwarderQuery) && !self.query.is_empty() {
            wire::bytes(m, 10, &self.query);
        }
        if response {
            wire::uint(m, 12, rs);
            wire::fixed32(m, 13, rn);
            if !self.response.is_empty() {
                wire::bytes(m, 14, &self.response);
            }
        }
        let last = kind == Kind::ClientResponse;
        if last && !self.policy.is_empty() {
            wire::bytes(m, 15, &self.policy);
        }
        let f = &mut self.frame;
        f.clear();
        wire::bytes(f, 1, cfg.identity.as_bytes());
        wire::bytes(f, 2, VERSION);
        if last {
            wire::bytes(f, 3, &self.extra);
        }
        wire::bytes(f, 14, &self.msg);
        wire::uint(f, 15, DnstapType::Message as u64);
        out(&self.frame)
    }
}

/// The encoded dnstap frames of one event (see [`Encoder::write`]), each in a `Vec` of its own:
/// for tests and tools; the writer thread uses an [`Encoder`].
pub fn encode(ev: &QueryEvent, cfg: &DnstapConfig) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let _ = Encoder::default().each(ev, cfg, |f| {
        frames.push(f.to_vec());
        Ok(())
    });
    frames
}
