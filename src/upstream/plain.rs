//! Plain DNS to one upstream: UDP, then TCP when the answer is truncated. Each UDP try uses a
//! fresh socket on a random port, connected to the server (as Unbound does per query), so only that server's replies are
//! read (Kaminsky defence: random port + random id + question check). Written on tokio sockets
//! and hickory-proto's codec rather than hickory-net's UDP exchange, which ignores a zero-length
//! reply and waits out the timeout instead of failing over.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{Question, TryError, answers_question, build_query};

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

/// The query sent upstream for `q` in wire form, with its random id (see [`build_query`]).
pub fn encode_query(q: &Question, edns: bool) -> Result<(u16, Vec<u8>), TryError> {
    let m = build_query(q, edns);
    let bytes = m.to_vec().map_err(|_| TryError::Malformed)?;
    Ok((m.metadata.id, bytes))
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
fn connected_socket(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(server);
    let ty = socket2::Type::DGRAM.nonblocking().cloexec();
    let sock = socket2::Socket::new(domain, ty, Some(socket2::Protocol::UDP))?;
    // Non-blocking UDP connect completes at once (no handshake: it sets the peer and the port).
    sock.connect(&server.into())?;
    UdpSocket::from_std(sock.into())
}

async fn udp_exchange(
    server: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
    time: Duration,
) -> Result<Message, TryError> {
    let sock = connected_socket(server).map_err(|_| TryError::Network)?;
    sock.send(bytes).await.map_err(|_| TryError::Network)?;
    // Uninitialised capacity filled by `recv_buf`: no 64 KiB memset per try.
    let mut buf = Vec::with_capacity(65_535);
    let recv = async {
        loop {
            buf.clear();
            let n = sock
                .recv_buf(&mut buf)
                .await
                .map_err(|_| TryError::Network)?;
            if n == 0 {
                return Err(TryError::Empty);
            }
            // A reply with another id is not ours (late or spoofed): keep waiting for ours.
            match read_reply(&buf[..n], id, q)? {
                Some(m) => return Ok(m),
                None => continue,
            }
        }
    };
    tokio::time::timeout(time, recv)
        .await
        .map_err(|_| TryError::Timeout)?
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
