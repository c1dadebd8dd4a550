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

use super::QueryEvent;
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

/// The `extra` JSON object (every key present, `null` when not known).
#[derive(serde::Serialize)]
struct Extra<'a> {
    zone: Option<&'a str>,
    outcome: &'a str,
    list: Option<&'a str>,
    rule: Option<&'a str>,
    vendor: Option<&'a str>,
    category: Option<&'a str>,
    client: Option<&'a str>,
    /// Only on answers an `[[exceptions]]` entry let through: its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    exception: Option<&'a str>,
}

/// The `extra` JSON of an event: the policy details and the client as configured.
pub fn extra_json(ev: &QueryEvent, client: Option<&str>) -> Vec<u8> {
    let e = &ev.entry;
    serde_json::to_vec(&Extra {
        zone: e.zone.as_deref(),
        outcome: e.outcome.as_str(),
        list: e.list.as_deref(),
        rule: e.rule.as_deref(),
        vendor: e.vendor.as_deref(),
        category: e.category,
        client,
        exception: e.exception.as_deref(),
    })
    .unwrap_or_default()
}

fn split_time(t: SystemTime) -> (u64, u32) {
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (d.as_secs(), d.subsec_nanos())
}

/// The DNS query and response of an event, rebuilt from its question and rcode (none for a
/// name that does not parse back: the message fields are then left out).
fn dns_messages(ev: &QueryEvent) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let e = &ev.entry;
    let Ok(name) = Name::from_ascii(&*e.qname) else {
        return (None, None);
    };
    let mut name = name;
    name.set_fqdn(true);
    let mut q = DnsMessage::query();
    q.metadata.op_code = OpCode::Query;
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(name, e.qtype));
    let qbytes = q.to_vec().ok();
    let mut r = q;
    r.metadata.message_type = MessageType::Response;
    r.metadata.recursion_available = true;
    r.metadata.response_code = e.rcode;
    let rbytes = r.to_vec().ok();
    (qbytes, rbytes)
}

fn policy(ev: &QueryEvent) -> Option<Policy> {
    let e = &ev.entry;
    let rule = e.rule.as_deref()?;
    let action = match e.outcome {
        Outcome::Blocked if e.rcode == hickory_proto::op::ResponseCode::NXDomain => {
            PolicyAction::Nxdomain
        }
        Outcome::Blocked => PolicyAction::LocalData,
        _ => PolicyAction::Pass,
    };
    Some(Policy {
        r#type: Some("pixelguard".into()),
        rule: e.list.as_deref().map(|l| l.as_bytes().to_vec()),
        action: Some(action as i32),
        r#match: Some(PolicyMatch::Qname as i32),
        value: Some(rule.as_bytes().to_vec()),
    })
}

/// The address written for a client under `mode` (none for `hash` and `none`).
fn client_address(ip: IpAddr, mode: ClientMode) -> Option<Vec<u8>> {
    let ip = ip.to_canonical();
    match (mode, ip) {
        (ClientMode::Full, IpAddr::V4(a)) => Some(a.octets().to_vec()),
        (ClientMode::Full, IpAddr::V6(a)) => Some(a.octets().to_vec()),
        (ClientMode::Masked, IpAddr::V4(a)) => {
            let mut o = a.octets();
            o[3] = 0;
            Some(o.to_vec())
        }
        (ClientMode::Masked, IpAddr::V6(a)) => {
            Some((u128::from(a) & (u128::MAX << 72)).to_be_bytes().to_vec())
        }
        (ClientMode::Hash | ClientMode::None, _) => None,
    }
}

/// The encoded dnstap frames of one event: CLIENT_QUERY, then (for a fresh upstream answer with
/// `forwarder`) FORWARDER_QUERY and FORWARDER_RESPONSE, then CLIENT_RESPONSE.
pub fn encode(ev: &QueryEvent, cfg: &DnstapConfig) -> Vec<Vec<u8>> {
    let e = &ev.entry;
    let mode = ev.client_override.unwrap_or(cfg.client);
    let client = ev.key.client(e.client, mode);
    let extra = extra_json(ev, client.as_deref());
    let (qmsg, rmsg) = dns_messages(ev);
    let (rs, rn) = split_time(e.ts);
    let (qs, qn) = split_time(e.ts.checked_sub(e.duration).unwrap_or(e.ts));
    let family = match e.client.to_canonical() {
        IpAddr::V4(_) => SocketFamily::Inet,
        IpAddr::V6(_) => SocketFamily::Inet6,
    };
    let base = Message {
        r#type: 0,
        socket_family: Some(family as i32),
        query_address: client_address(e.client, mode),
        query_zone: None,
        ..Default::default()
    };
    let mut msgs = vec![Message {
        r#type: MessageKind::ClientQuery as i32,
        query_time_sec: Some(qs),
        query_time_nsec: Some(qn),
        query_message: qmsg.clone(),
        ..base.clone()
    }];
    if cfg.forwarder
        && let Some(up) = e.upstream
    {
        let (family, addr) = match up.ip().to_canonical() {
            IpAddr::V4(a) => (SocketFamily::Inet, a.octets().to_vec()),
            IpAddr::V6(a) => (SocketFamily::Inet6, a.octets().to_vec()),
        };
        let fwd = Message {
            socket_family: Some(family as i32),
            query_address: None,
            response_address: Some(addr),
            response_port: Some(u32::from(up.port())),
            query_time_sec: Some(qs),
            query_time_nsec: Some(qn),
            query_message: qmsg.clone(),
            ..base.clone()
        };
        msgs.push(Message {
            r#type: MessageKind::ForwarderQuery as i32,
            ..fwd.clone()
        });
        msgs.push(Message {
            r#type: MessageKind::ForwarderResponse as i32,
            response_time_sec: Some(rs),
            response_time_nsec: Some(rn),
            response_message: rmsg.clone(),
            ..fwd
        });
    }
    msgs.push(Message {
        r#type: MessageKind::ClientResponse as i32,
        query_time_sec: Some(qs),
        query_time_nsec: Some(qn),
        response_time_sec: Some(rs),
        response_time_nsec: Some(rn),
        response_message: rmsg,
        policy: policy(ev),
        ..base
    });
    msgs.into_iter()
        .map(|m| {
            prost::Message::encode_to_vec(&Dnstap {
                identity: Some(cfg.identity.as_bytes().to_vec()),
                version: Some(concat!("pixelguard ", env!("CARGO_PKG_VERSION")).into()),
                extra: Some(extra.clone()),
                r#type: DnstapType::Message as i32,
                message: Some(m),
            })
        })
        .collect()
}
