//! `ScriptedUpstream`: a fake DNS upstream on loopback whose every reply is decided by a
//! closure, for failure and edge-case tests (garbage, empty datagrams, silence, delays,
//! TC=1, FORMERR to EDNS, SERVFAIL with EDE, ...).
//!
//! Raw tokio sockets: one UDP socket and one TCP listener on the same `127.0.0.1` port. UDP
//! requests are handled concurrently (a `Delay` does not hold up other requests); the
//! queries of one TCP connection are handled in order. Every request is recorded, parsed or
//! not. All tasks are aborted when the `ScriptedUpstream` is dropped.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::{Proto, bind_udp_tcp, loopback};

/// Queries handled per TCP connection before the upstream closes it.
const MAX_QUERIES_PER_TCP_CONN: usize = 1000;
/// A TCP connection idle for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on a `Delay` (keeps a broken test from hanging forever).
const MAX_DELAY: Duration = Duration::from_secs(60);
/// The receive / accept loops give up after this many consecutive socket errors.
const MAX_CONSECUTIVE_ERRORS: usize = 1000;

/// One request as received by the [`ScriptedUpstream`].
#[derive(Clone, Debug)]
pub struct ScriptedQuery {
    /// The parsed request, or `None` if the bytes did not parse as a DNS message.
    pub message: Option<Message>,
    /// The raw request bytes (without the TCP length prefix).
    pub raw: Vec<u8>,
    /// Transport.
    pub proto: Proto,
    /// Source address.
    pub src: SocketAddr,
}

impl ScriptedQuery {
    /// First question's name as received (case preserved, trailing dot), if any.
    pub fn name(&self) -> Option<String> {
        self.message
            .as_ref()
            .and_then(|m| m.queries.first())
            .map(|q| q.name.to_string())
    }

    /// True if the first question's name equals `name` (case/trailing-dot-insensitive).
    pub fn name_is(&self, name: &str) -> bool {
        self.name()
            .is_some_and(|n| super::auth::names_equal(&n, name))
    }

    /// First question's type, if any.
    pub fn qtype(&self) -> Option<RecordType> {
        self.message
            .as_ref()
            .and_then(|m| m.queries.first())
            .map(|q| q.query_type)
    }

    /// Message id (from the raw bytes, so it works for unparsable requests too).
    pub fn id(&self) -> u16 {
        match self.raw.as_slice() {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        }
    }

    /// Whether the request carried an OPT record.
    pub fn has_edns(&self) -> bool {
        self.message.as_ref().is_some_and(|m| m.edns.is_some())
    }

    /// Advertised EDNS UDP payload size.
    pub fn edns_payload(&self) -> Option<u16> {
        self.message
            .as_ref()
            .and_then(|m| m.edns.as_ref())
            .map(Edns::max_payload)
    }

    /// DO bit.
    pub fn do_bit(&self) -> bool {
        self.message
            .as_ref()
            .and_then(|m| m.edns.as_ref())
            .is_some_and(|e| e.flags().dnssec_ok)
    }

    /// CD bit.
    pub fn cd(&self) -> bool {
        self.message
            .as_ref()
            .is_some_and(|m| m.metadata.checking_disabled)
    }

    /// AD bit.
    pub fn ad(&self) -> bool {
        self.message
            .as_ref()
            .is_some_and(|m| m.metadata.authentic_data)
    }

    /// RD bit.
    pub fn rd(&self) -> bool {
        self.message
            .as_ref()
            .is_some_and(|m| m.metadata.recursion_desired)
    }
}

/// What the upstream does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Encode and send (over TCP with the 2-byte length prefix).
    Message(Message),
    /// Send these bytes as the DNS message: the UDP payload as is; over TCP with the length
    /// prefix (framing intact, content garbage).
    Raw(Vec<u8>),
    /// Write exactly these bytes to the TCP stream, no length prefix added (broken framing);
    /// over UDP the same as `Raw`.
    TcpBytes(Vec<u8>),
    /// A zero-length UDP datagram; over TCP a frame of length 0.
    Empty,
    /// No reply at all (TCP: the connection stays open).
    Silence,
    /// No reply; over TCP the connection is closed at once.
    Close,
    /// Wait (capped at 60 s), then do the inner reply.
    Delay(Duration, Box<Reply>),
}

type Behaviour = Arc<dyn Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static>;

struct Shared {
    behaviour: RwLock<Behaviour>,
    seen: Mutex<Vec<ScriptedQuery>>,
}

impl Shared {
    fn handle(&self, query: &ScriptedQuery) -> Reply {
        self.seen.lock().expect("seen lock").push(query.clone());
        let behaviour = self.behaviour.read().expect("behaviour lock").clone();
        behaviour(query)
    }
}

/// A running scripted upstream; all its tasks stop when it is dropped.
pub struct ScriptedUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
}

impl ScriptedUpstream {
    /// Starts on `127.0.0.1:<random port>` (UDP and TCP). Must be called inside a tokio runtime.
    pub fn start<F>(behaviour: F) -> ScriptedUpstream
    where
        F: Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static,
    {
        Self::start_on(loopback(1), behaviour)
    }

    /// Like [`ScriptedUpstream::start`] on a chosen loopback address.
    pub fn start_on<F>(ip: IpAddr, behaviour: F) -> ScriptedUpstream
    where
        F: Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static,
    {
        let (udp, tcp) = bind_udp_tcp(ip);
        let addr = udp.local_addr().expect("udp local addr");
        let udp = UdpSocket::from_std(udp)
            .expect("ScriptedUpstream::start must be called inside a tokio runtime");
        let tcp = TcpListener::from_std(tcp).expect("tokio tcp listener");
        let shared = Arc::new(Shared {
            behaviour: RwLock::new(Arc::new(behaviour)),
            seen: Mutex::new(Vec::new()),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(udp_loop(Arc::new(udp), shared.clone()));
        tasks.spawn(tcp_loop(tcp, shared.clone()));
        ScriptedUpstream {
            addr,
            shared,
            tasks,
        }
    }

    /// The address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the behaviour for subsequent requests.
    pub fn set_behaviour<F>(&self, behaviour: F)
    where
        F: Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static,
    {
        *self.shared.behaviour.write().expect("behaviour lock") = Arc::new(behaviour);
    }

    /// Every request received so far, in arrival order.
    pub fn seen(&self) -> Vec<ScriptedQuery> {
        self.shared.seen.lock().expect("seen lock").clone()
    }

    /// Number of requests received so far.
    pub fn count(&self) -> usize {
        self.shared.seen.lock().expect("seen lock").len()
    }

    /// Number of requests received over `proto`.
    pub fn count_proto(&self, proto: Proto) -> usize {
        self.seen().iter().filter(|q| q.proto == proto).count()
    }

    /// Forgets the recorded requests.
    pub fn clear_seen(&self) {
        self.shared.seen.lock().expect("seen lock").clear();
    }

    /// True if a request for exactly `name` was received (case/trailing-dot-insensitive).
    pub fn saw_name(&self, name: &str) -> bool {
        self.seen().iter().any(|q| q.name_is(name))
    }

    /// Waits (polling every 10 ms, at most `timeout`) until at least `n` requests were
    /// received; returns whether that happened.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        super::wait_until(timeout, || self.count() >= n).await
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Receives datagrams until aborted; each request runs in a child task (aborted with us).
async fn udp_loop(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut children = JoinSet::new();
    let mut buf = vec![0u8; 65_535];
    let mut errors = 0;
    // Runs until the upstream is dropped (task aborted) or the socket keeps failing.
    while errors < MAX_CONSECUTIVE_ERRORS {
        let Ok((len, src)) = socket.recv_from(&mut buf).await else {
            errors += 1;
            continue;
        };
        errors = 0;
        // Reap finished children so the set stays small.
        while children.try_join_next().is_some() {}
        let raw = buf[..len].to_vec();
        let query = ScriptedQuery {
            message: Message::from_vec(&raw).ok(),
            raw,
            proto: Proto::Udp,
            src,
        };
        let reply = shared.handle(&query);
        let socket = socket.clone();
        children.spawn(async move {
            let Some(bytes) = resolve(reply).await else {
                return;
            };
            let _ = socket.send_to(&bytes.payload, src).await;
        });
    }
}

/// Accepts connections until aborted; each connection runs in a child task.
async fn tcp_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut children = JoinSet::new();
    let mut errors = 0;
    // Runs until the upstream is dropped (task aborted) or accept keeps failing.
    while errors < MAX_CONSECUTIVE_ERRORS {
        let Ok((stream, src)) = listener.accept().await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        errors = 0;
        while children.try_join_next().is_some() {}
        children.spawn(tcp_conn(stream, src, shared.clone()));
    }
}

async fn tcp_conn(mut stream: TcpStream, src: SocketAddr, shared: Arc<Shared>) {
    for _ in 0..MAX_QUERIES_PER_TCP_CONN {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut raw = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut raw)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let query = ScriptedQuery {
            message: Message::from_vec(&raw).ok(),
            raw,
            proto: Proto::Tcp,
            src,
        };
        let reply = shared.handle(&query);
        if matches!(innermost(&reply), Reply::Close) {
            let _ = resolve(reply).await; // honour a Delay before closing
            return;
        }
        let Some(out) = resolve(reply).await else {
            continue;
        };
        let mut wire = Vec::with_capacity(out.payload.len() + 2);
        if out.framed {
            let len = u16::try_from(out.payload.len()).expect("TCP message fits u16");
            wire.extend_from_slice(&len.to_be_bytes());
        }
        wire.extend_from_slice(&out.payload);
        if stream.write_all(&wire).await.is_err() {
            return;
        }
    }
}

fn innermost(reply: &Reply) -> &Reply {
    let mut r = reply;
    // Bounded: each step strips one Delay layer of a finite value.
    while let Reply::Delay(_, inner) = r {
        r = inner;
    }
    r
}

struct Outgoing {
    payload: Vec<u8>,
    /// Whether TCP needs the 2-byte length prefix.
    framed: bool,
}

/// Applies delays and encodes; `None` means send nothing.
async fn resolve(mut reply: Reply) -> Option<Outgoing> {
    for _ in 0..64 {
        match reply {
            Reply::Delay(d, inner) => {
                tokio::time::sleep(d.min(MAX_DELAY)).await;
                reply = *inner;
            }
            Reply::Message(m) => {
                return Some(Outgoing {
                    payload: m.to_vec().expect("encode scripted reply"),
                    framed: true,
                });
            }
            Reply::Raw(b) => {
                return Some(Outgoing {
                    payload: b,
                    framed: true,
                });
            }
            Reply::TcpBytes(b) => {
                return Some(Outgoing {
                    payload: b,
                    framed: false,
                });
            }
            Reply::Empty => {
                return Some(Outgoing {
                    payload: Vec::new(),
                    framed: true,
                });
            }
            Reply::Silence | Reply::Close => return None,
        }
    }
    None
}

// ------------------------------------------------------------------------------------------
// Reply builders
// ------------------------------------------------------------------------------------------

/// A response skeleton for `request`: same id, opcode and question; RD and CD copied; RA=1;
/// NOERROR, no records. If the request had EDNS the response gets an OPT (payload 1232, DO
/// echoed).
pub fn reply_to(request: &Message) -> Message {
    let mut m = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    m.metadata.recursion_desired = request.metadata.recursion_desired;
    m.metadata.checking_disabled = request.metadata.checking_disabled;
    m.metadata.recursion_available = true;
    m.queries = request.queries.clone();
    if let Some(req_edns) = &request.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(req_edns.flags().dnssec_ok);
        m.edns = Some(edns);
    }
    m
}

/// `message` with `rcode` (extended rcodes need an OPT: one is added if missing).
pub fn with_rcode(mut message: Message, rcode: ResponseCode) -> Message {
    message.metadata.response_code = rcode;
    if rcode.high() > 0 && message.edns.is_none() {
        message.edns = Some(Edns::new());
    }
    message
}

/// `message` plus an Extended DNS Error option (RFC 8914: EDNS option 15, 2-byte info code
/// then UTF-8 text); an OPT is added if missing. Can be called repeatedly.
pub fn with_ede(mut message: Message, info_code: u16, text: &str) -> Message {
    let mut data = info_code.to_be_bytes().to_vec();
    data.extend_from_slice(text.as_bytes());
    let edns = message.edns.get_or_insert_with(|| {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e
    });
    edns.options_mut()
        .options
        .push((EdnsCode::from(15u16), EdnsOption::Unknown(15, data)));
    message
}

/// `message` with `records` appended to the answer section.
pub fn with_answers(mut message: Message, records: impl IntoIterator<Item = Record>) -> Message {
    message.answers.extend(records);
    message
}

/// A TC=1 response to `request` with no records.
pub fn truncated(request: &Message) -> Message {
    let mut m = reply_to(request);
    m.metadata.truncation = true;
    m
}

/// FORMERR without OPT (an old server that does not speak EDNS) if `request` has EDNS,
/// otherwise `None`.
pub fn formerr_if_edns(request: &Message) -> Option<Message> {
    request.edns.as_ref()?;
    let mut m = reply_to(request);
    m.edns = None;
    m.metadata.response_code = ResponseCode::FormErr;
    Some(m)
}

/// An A record (or AAAA for an IPv6 address) for `name`.
pub fn a_record(name: &str, ip: IpAddr, ttl: u32) -> Record {
    let name = Name::from_ascii(name).expect("valid name");
    Record::from_rdata(name, ttl, ip_rdata(ip))
}

/// A or AAAA rdata for `ip`.
pub fn ip_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// A CNAME record `name -> target`.
pub fn cname_record(name: &str, target: &str, ttl: u32) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).expect("valid name"),
        ttl,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(
            Name::from_ascii(target).expect("valid target"),
        )),
    )
}

/// Answer `request` with `ip` (TTL `ttl`) when the question type matches the address family
/// (A for IPv4, AAAA for IPv6, or ANY); otherwise NOERROR/NODATA.
pub fn answer_for(request: &Message, ip: IpAddr, ttl: u32) -> Message {
    let m = reply_to(request);
    let Some(q) = request.queries.first() else {
        return with_rcode(m, ResponseCode::FormErr);
    };
    let wanted = match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    };
    if q.query_type == wanted || q.query_type == RecordType::ANY {
        with_answers(m, [Record::from_rdata(q.name.clone(), ttl, ip_rdata(ip))])
    } else {
        m
    }
}

// ------------------------------------------------------------------------------------------
// Canned behaviours (unparsable requests get Silence unless stated otherwise)
// ------------------------------------------------------------------------------------------

/// UDP: TC=1 with no answers; TCP: the answer (`ip`, TTL 300).
pub fn tc_over_udp_then_answer_over_tcp(
    ip: IpAddr,
) -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    move |q| match (&q.message, q.proto) {
        (Some(m), Proto::Udp) => Reply::Message(truncated(m)),
        (Some(m), Proto::Tcp) => Reply::Message(answer_for(m, ip, 300)),
        (None, _) => Reply::Silence,
    }
}

/// FORMERR (no OPT) to any request with EDNS; requests without EDNS get the answer (`ip`,
/// TTL 300).
pub fn formerr_to_edns_else_answer(
    ip: IpAddr,
) -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    move |q| match &q.message {
        Some(m) => match formerr_if_edns(m) {
            Some(formerr) => Reply::Message(formerr),
            None => Reply::Message(answer_for(m, ip, 300)),
        },
        None => Reply::Silence,
    }
}

/// Garbage: the request's id and a response header claiming one question and one answer,
/// followed by junk that does not parse. Also for unparsable requests.
pub fn garbage() -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    |q| {
        let mut b = q.id().to_be_bytes().to_vec();
        b.extend_from_slice(&[
            0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0xfd,
        ]);
        Reply::Raw(b)
    }
}

/// A zero-length datagram (TCP: a zero-length frame). Also for unparsable requests.
pub fn zero_length() -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    |_| Reply::Empty
}

/// Never answers.
pub fn silence() -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    |_| Reply::Silence
}

/// REFUSED.
pub fn refused() -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    |q| match &q.message {
        Some(m) => Reply::Message(with_rcode(reply_to(m), ResponseCode::Refused)),
        None => Reply::Silence,
    }
}

/// SERVFAIL carrying one EDE option (`info_code`, `text`); always with an OPT.
pub fn servfail_with_ede(
    info_code: u16,
    text: &str,
) -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    let text = text.to_owned();
    move |q| match &q.message {
        Some(m) => Reply::Message(with_ede(
            with_rcode(reply_to(m), ResponseCode::ServFail),
            info_code,
            &text,
        )),
        None => Reply::Silence,
    }
}

/// Answers every question with `ip` (A for IPv4 / AAAA for IPv6; NODATA for other types).
pub fn answer_a(ip: IpAddr, ttl: u32) -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static {
    move |q| match &q.message {
        Some(m) => Reply::Message(answer_for(m, ip, ttl)),
        None => Reply::Silence,
    }
}

/// `inner`, but every reply delayed by `delay`.
pub fn delayed<F>(
    delay: Duration,
    inner: F,
) -> impl Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static
where
    F: Fn(&ScriptedQuery) -> Reply + Send + Sync + 'static,
{
    move |q| Reply::Delay(delay, Box::new(inner(q)))
}
