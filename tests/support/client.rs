//! A small real DNS client for integration tests: one query over UDP or TCP from a chosen
//! loopback source address, plus helpers to read the answer (EDE, SOA, IPs, TTLs).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

use super::{assert_loopback, loopback};

/// Options for [`query`].
#[derive(Clone, Debug)]
pub struct QueryOpts {
    /// Use TCP (2-byte length prefix) instead of UDP.
    pub tcp: bool,
    /// Source address to bind (port 0). Any 127/8 address works on Linux without setup.
    pub source: IpAddr,
    /// EDNS UDP payload size; `None` sends no OPT record (then DO cannot be set). Values
    /// below 512 are raised to 512 by hickory; use [`query_raw`] for odd OPTs.
    pub edns: Option<u16>,
    /// DO bit (adds an OPT with payload 1232 if `edns` is `None`).
    pub do_bit: bool,
    /// CD header bit.
    pub cd: bool,
    /// AD header bit.
    pub ad: bool,
    /// RD header bit.
    pub rd: bool,
    /// EDNS version (only meaningful with an OPT).
    pub edns_version: u8,
    /// Opcode.
    pub opcode: OpCode,
    /// Overall timeout for the exchange.
    pub timeout: Duration,
}

impl Default for QueryOpts {
    /// UDP from 127.0.0.1, EDNS payload 1232 (like dig), RD=1, DO/CD/AD=0, QUERY, 3 s.
    fn default() -> Self {
        QueryOpts {
            tcp: false,
            source: loopback(1),
            edns: Some(1232),
            do_bit: false,
            cd: false,
            ad: false,
            rd: true,
            edns_version: 0,
            opcode: OpCode::Query,
            timeout: Duration::from_secs(3),
        }
    }
}

impl QueryOpts {
    /// Default options over TCP.
    pub fn tcp() -> Self {
        QueryOpts {
            tcp: true,
            ..Self::default()
        }
    }

    /// Default options from source address `source`.
    pub fn from_source(source: IpAddr) -> Self {
        QueryOpts {
            source,
            ..Self::default()
        }
    }
}

/// Why a query failed.
#[derive(Debug)]
pub enum ClientError {
    /// No (complete) reply within the timeout.
    Timeout,
    /// Socket error.
    Io(std::io::Error),
    /// The reply did not parse; the raw bytes are kept.
    Decode(String, Vec<u8>),
    /// The reply's id differs from the query's.
    IdMismatch {
        /// Id we sent.
        expected: u16,
        /// Id we got.
        got: u16,
    },
    /// The TCP connection was closed before a full reply arrived.
    Closed,
    /// The query could not be built (bad name, ...).
    Build(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Timeout => write!(f, "timed out"),
            ClientError::Io(e) => write!(f, "io error: {e}"),
            ClientError::Decode(e, raw) => {
                write!(f, "undecodable reply ({} bytes): {e}", raw.len())
            }
            ClientError::IdMismatch { expected, got } => {
                write!(f, "reply id {got} does not match query id {expected}")
            }
            ClientError::Closed => write!(f, "connection closed"),
            ClientError::Build(e) => write!(f, "cannot build query: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// Builds the query message [`query`] would send (random id).
pub fn build_query(
    name: &str,
    rtype: RecordType,
    opts: &QueryOpts,
) -> Result<Message, ClientError> {
    let name = Name::from_ascii(name).map_err(|e| ClientError::Build(e.to_string()))?;
    let mut m = Message::query();
    m.metadata.op_code = opts.opcode;
    m.metadata.recursion_desired = opts.rd;
    m.metadata.checking_disabled = opts.cd;
    m.metadata.authentic_data = opts.ad;
    m.add_query(Query::query(name, rtype));
    let payload = opts.edns.or(opts.do_bit.then_some(1232));
    if let Some(payload) = payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        edns.set_version(opts.edns_version);
        edns.set_dnssec_ok(opts.do_bit);
        m.edns = Some(edns);
    }
    Ok(m)
}

/// Sends one query for `name`/`rtype` to `server` and returns the parsed reply.
pub async fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    opts: &QueryOpts,
) -> Result<Message, ClientError> {
    let msg = build_query(name, rtype, opts)?;
    send_message(server, &msg, opts).await
}

/// Sends a prepared message (only `tcp`, `source` and `timeout` of `opts` are used) and
/// returns the parsed reply, checking that its id matches.
pub async fn send_message(
    server: SocketAddr,
    msg: &Message,
    opts: &QueryOpts,
) -> Result<Message, ClientError> {
    let bytes = msg
        .to_vec()
        .map_err(|e| ClientError::Build(e.to_string()))?;
    let raw = exchange(server, &bytes, opts.tcp, opts.source, opts.timeout)
        .await?
        .ok_or(ClientError::Timeout)?;
    let reply = Message::from_vec(&raw).map_err(|e| ClientError::Decode(e.to_string(), raw))?;
    if reply.metadata.id != msg.metadata.id {
        return Err(ClientError::IdMismatch {
            expected: msg.metadata.id,
            got: reply.metadata.id,
        });
    }
    Ok(reply)
}

/// Sends raw bytes (UDP as is; TCP with the length prefix) and returns the raw reply, or
/// `None` on timeout (3 s) or when the TCP peer closes without replying.
pub async fn query_raw(
    server: SocketAddr,
    bytes: &[u8],
    tcp: bool,
    source: IpAddr,
) -> Result<Option<Vec<u8>>, ClientError> {
    exchange(server, bytes, tcp, source, Duration::from_secs(3)).await
}

/// [`query_raw`] with an explicit timeout.
pub async fn query_raw_timeout(
    server: SocketAddr,
    bytes: &[u8],
    tcp: bool,
    source: IpAddr,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, ClientError> {
    exchange(server, bytes, tcp, source, timeout).await
}

async fn exchange(
    server: SocketAddr,
    bytes: &[u8],
    tcp: bool,
    source: IpAddr,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, ClientError> {
    assert_loopback(server.ip());
    assert_loopback(source);
    let fut = async {
        if tcp {
            exchange_tcp(server, bytes, source).await
        } else {
            exchange_udp(server, bytes, source).await
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Ok(None),
    }
}

async fn exchange_udp(
    server: SocketAddr,
    bytes: &[u8],
    source: IpAddr,
) -> Result<Option<Vec<u8>>, ClientError> {
    let socket = UdpSocket::bind(SocketAddr::new(source, 0)).await?;
    socket.send_to(bytes, server).await?;
    let mut buf = vec![0u8; 65_535];
    // Bounded: ignore at most a few datagrams from other addresses, then give up.
    for _ in 0..16 {
        let (len, from) = socket.recv_from(&mut buf).await?;
        if from == server {
            return Ok(Some(buf[..len].to_vec()));
        }
    }
    Ok(None)
}

async fn exchange_tcp(
    server: SocketAddr,
    bytes: &[u8],
    source: IpAddr,
) -> Result<Option<Vec<u8>>, ClientError> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(server).await?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| ClientError::Build("message longer than 65535 bytes".into()))?;
    let mut wire = len.to_be_bytes().to_vec();
    wire.extend_from_slice(bytes);
    stream.write_all(&wire).await?;
    let mut len = [0u8; 2];
    if stream.read_exact(&mut len).await.is_err() {
        return Ok(None);
    }
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    if stream.read_exact(&mut reply).await.is_err() {
        return Err(ClientError::Closed);
    }
    Ok(Some(reply))
}

// ------------------------------------------------------------------------------------------
// Reading replies
// ------------------------------------------------------------------------------------------

/// Extended DNS Errors (RFC 8914, EDNS option 15) in the reply's OPT: `(info_code, text)`.
pub fn ede(message: &Message) -> Vec<(u16, String)> {
    let Some(edns) = &message.edns else {
        return Vec::new();
    };
    edns.options()
        .options
        .iter()
        .filter(|(code, _)| u16::from(*code) == 15)
        .filter_map(|(_, opt)| Vec::<u8>::try_from(opt).ok())
        .filter(|data| data.len() >= 2)
        .map(|data| {
            let code = u16::from_be_bytes([data[0], data[1]]);
            let text = String::from_utf8_lossy(&data[2..])
                .trim_end_matches('\0')
                .to_owned();
            (code, text)
        })
        .collect()
}

/// The first SOA in the authority section: `(owner name with trailing dot, MINIMUM, TTL)`.
pub fn soa_in_authority(message: &Message) -> Option<(String, u32, u32)> {
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some((r.name.to_string(), soa.minimum, r.ttl)),
        _ => None,
    })
}

/// A and AAAA addresses in the answer section, in order.
pub fn answer_ips(message: &Message) -> Vec<IpAddr> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// TTLs of the answer-section records, in order.
pub fn ttls(message: &Message) -> Vec<u32> {
    message.answers.iter().map(|r| r.ttl).collect()
}

/// Types of the answer-section records, in order.
pub fn answer_types(message: &Message) -> Vec<RecordType> {
    message.answers.iter().map(|r| r.record_type()).collect()
}

/// CNAME targets in the answer section (trailing dot), in order.
pub fn cname_targets(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The reply's response code.
pub fn rcode(message: &Message) -> ResponseCode {
    message.metadata.response_code
}

/// DO bit of the reply's OPT (false without OPT).
pub fn reply_do_bit(message: &Message) -> bool {
    message.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok)
}
