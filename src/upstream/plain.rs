//! Plain DNS to one upstream: UDP, then TCP when the answer is truncated. Each UDP try uses a
//! fresh socket on a random port, connected to the server (as Unbound does per query), so only
//! that server's replies are read (Kaminsky defence: random port + random id + question check);
//! the query is sent before the socket is registered with the reactor, for reading only
//! (`crate::sock`). Written on tokio sockets
//! and hickory-proto's codec rather than hickory-net's UDP exchange, which ignores a zero-length
//! reply and waits out the timeout instead of failing over.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::{Question, TryError, answers_question};
use crate::wire;

/// One upstream, all the retries it deserves: TC → TCP, FORMERR to EDNS → without EDNS.
pub(super) async fn try_server(
    server: SocketAddr,
    q: &Question,
    time: Duration,
) -> Result<Message, TryError> {
    // Checked: a duration too large for an `Instant` (validation bounds it; this cannot panic
    // either way) means no deadline of our own, only `time` per exchange.
    let deadline = Instant::now().checked_add(time);
    let left = || deadline.map_or(time, |d| d.saturating_duration_since(Instant::now()));
    let mut edns = true;
    let mut tcp = false;
    for _ in 0..3 {
        let (id, bytes) = encode_query(q, edns)?;
        let reply = if tcp {
            tcp_exchange(server, &bytes, id, &q.query, left()).await?
        } else {
            udp_exchange(server, &bytes, id, &q.query, left()).await?
        };
        if reply.metadata.truncation && !tcp {
            tcp = true;
            continue;
        }
        if edns && reply.metadata.response_code == ResponseCode::FormErr {
            edns = false;
            continue;
        }
        return Ok(reply);
    }
    Err(TryError::Malformed)
}

/// The query sent upstream for `q` in wire form, with its random id: the message
/// `build_query` (in `upstream`) describes, written directly (header, question, OPT) rather than built as a
/// hickory `Message` and serialised, which was a twentieth of a miss's time on the receive
/// thread. `build_query`'s serialisation is the reference in the tests.
pub fn encode_query(q: &Question, edns: bool) -> Result<(u16, Vec<u8>), TryError> {
    let id: u16 = rand::random();
    let mut out = Vec::with_capacity(512);
    // RD, AD (see `build_query`), CD as the client set it; with `edns` one additional record,
    // the OPT.
    let flags: u16 = 0x0100 | 0x0020 | if q.checking_disabled { 0x0010 } else { 0 };
    let header = (id, flags, u16::from(edns));
    let (qtype, qclass) = (q.query.query_type(), q.query.query_class());
    let name = q.query.name().iter();
    if !wire::put_header_question(&mut out, header, name, qtype.into(), qclass.into()) {
        return Err(TryError::Malformed);
    }
    if edns {
        // Owner root, type OPT, class = payload size, TTL = extended rcode 0, version 0, DO
        // as the client set it, no options.
        out.push(0);
        out.extend_from_slice(&wire::OPT.to_be_bytes());
        out.extend_from_slice(&super::UPSTREAM_EDNS_PAYLOAD.to_be_bytes());
        out.extend_from_slice(&[0, 0, if q.dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    Ok((id, out))
}

/// Reads a datagram from the upstream's address as the reply to the query with `id` for `q`:
/// `Ok(None)` when the id is another (late or spoofed: keep waiting), an error when it is not a
/// DNS message or does not answer exactly `q`. The miss path's parse (`benches/miss_path.rs`).
pub fn read_reply(bytes: &[u8], id: u16, q: &Query) -> Result<Option<Message>, TryError> {
    let Ok(m) = Message::from_vec(bytes) else {
        return Err(TryError::Malformed);
    };
    if m.metadata.id != id {
        return Ok(None);
    }
    if !answers_question(&m, q) {
        return Err(TryError::Malformed);
    }
    Ok(Some(m))
}

/// A fresh non-blocking UDP socket connected to `server`. No bind: connecting an unbound socket
/// binds it to a random ephemeral port (the kernel's choice, as for a bind to port 0), one system
/// call fewer per try; the socket is created non-blocking and close-on-exec in one call.
fn connected_socket(server: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(server);
    let ty = socket2::Type::DGRAM.nonblocking().cloexec();
    let sock = socket2::Socket::new(domain, ty, Some(socket2::Protocol::UDP))?;
    // Non-blocking UDP connect completes at once (no handshake: it sets the peer and the port).
    sock.connect(&server.into())?;
    Ok(sock.into())
}

thread_local! {
    /// The datagram buffer of this thread's upstream tries: allocated and zeroed once per thread,
    /// not per try; only borrowed inside one receive call, never across an await.
    static REPLY: RefCell<Vec<u8>> = RefCell::new(vec![0; 65_535]);
}

async fn udp_exchange(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
    time: Duration,
) -> Result<Message, TryError> {
    let sock = connected_socket(server).map_err(|_| TryError::Network)?;
    // Sent before the socket is registered, which is then for reading only (`crate::sock`): a
    // fresh socket has room for one datagram, and a tokio socket would first wait for the
    // reactor to say so. A send that would block anyway fails the try like any network error.
    sock.send(bytes).map_err(|_| TryError::Network)?;
    let sock = crate::sock::register(sock, Interest::READABLE).map_err(|_| TryError::Network)?;
    let recv = async {
        loop {
            let read = sock.async_io(Interest::READABLE, |s| {
                REPLY.with_borrow_mut(|buf| {
                    let n = s.recv(buf)?;
                    if n == 0 {
                        return Ok(Err(TryError::Empty));
                    }
                    // A reply with another id is not ours (late or spoofed): keep waiting.
                    Ok(read_reply(&buf[..n], id, q))
                })
            });
            match read.await.map_err(|_| TryError::Network)?? {
                Some(m) => return Ok(m),
                None => continue,
            }
        }
    };
    let reply = tokio::time::timeout(time, recv).await;
    // Closed after the client is answered on a thread that defers closes (`crate::sock`).
    crate::sock::close_later(sock);
    reply.map_err(|_| TryError::Timeout)?
}

async fn tcp_exchange(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
    time: Duration,
) -> Result<Message, TryError> {
    let work = async {
        let mut s = TcpStream::connect(server)
            .await
            .map_err(|_| TryError::Network)?;
        let len = u16::try_from(bytes.len()).map_err(|_| TryError::Malformed)?;
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        s.write_all(&out).await.map_err(|_| TryError::Network)?;
        let mut lb = [0u8; 2];
        s.read_exact(&mut lb).await.map_err(|_| TryError::Network)?;
        let n = usize::from(u16::from_be_bytes(lb));
        if n == 0 {
            return Err(TryError::Empty);
        }
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf)
            .await
            .map_err(|_| TryError::Network)?;
        let m = Message::from_vec(&buf).map_err(|_| TryError::Malformed)?;
        if m.metadata.id != id || !answers_question(&m, q) {
            return Err(TryError::Malformed);
        }
        Ok(m)
    };
    tokio::time::timeout(time, work)
        .await
        .map_err(|_| TryError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{DNSClass, Name, RecordType};

    /// The hand-written query is byte for byte what hickory serialises for `build_query`'s
    /// message, id aside, for every combination of flags, and for names of several shapes.
    #[test]
    fn encoded_query_is_build_query_serialised() {
        let names = [
            "example.com.",
            "Mixed.Case.Example.",
            ".",
            "a.b",
            "x1-2_3.test.",
        ];
        let types = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::HTTPS,
            RecordType::PTR,
        ];
        for name in names {
            for qtype in types {
                for bits in 0..8u8 {
                    let mut query = Query::query(Name::from_ascii(name).unwrap(), qtype);
                    query.set_query_class(DNSClass::IN);
                    let q = Question {
                        query,
                        dnssec_ok: bits & 1 != 0,
                        checking_disabled: bits & 2 != 0,
                    };
                    let edns = bits & 4 != 0;
                    let (id, ours) = encode_query(&q, edns).unwrap();
                    let mut reference = super::super::build_query(&q, edns);
                    reference.metadata.id = id;
                    let theirs = reference.to_vec().unwrap();
                    assert_eq!(ours, theirs, "{name} {qtype} bits {bits}");
                }
            }
        }
    }
}
