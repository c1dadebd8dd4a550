//! Binding the listeners' sockets: a SO_REUSEPORT group of UDP sockets and one TCP listener per
//! listen address, all bound before anything is served (an address in use is a start-up error,
//! not a silent half-start).

use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// Binds a UDP socket with SO_REUSEPORT (so several can share the address).
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    // A larger receive buffer absorbs bursts instead of dropping them in the kernel.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// Binds a TCP listener.
pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// Sockets bound for one listen address. Binding happens before the runtime serves anything, so
/// an address in use is a start-up error, not a silent half-start. When the configured port is 0
/// (tests) the UDP port is chosen first and TCP binds the same one.
pub struct Bound {
    /// The address actually bound.
    pub addr: SocketAddr,
    /// UDP sockets (SO_REUSEPORT group).
    pub udp: Vec<UdpSocket>,
    /// The TCP listener.
    pub tcp: TcpListener,
}

/// Binds every listen address. With port 0 (tests), the UDP port is chosen by the kernel and TCP
/// must get the same one; when that port's TCP side is taken, another port is tried (bounded).
pub fn bind_all(addrs: &[SocketAddr], udp_sockets: usize) -> std::io::Result<Vec<Bound>> {
    let mut out = Vec::new();
    for &a in addrs {
        let attempts = if a.port() == 0 { 64 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            match bind_one(a, udp_sockets) {
                Ok(b) => {
                    out.push(b);
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
    }
    Ok(out)
}

fn bind_one(mut a: SocketAddr, udp_sockets: usize) -> std::io::Result<Bound> {
    if a.port() == 0 {
        // With SO_REUSEPORT set, the kernel may hand out a port that another reuse-port socket
        // of this user already holds, and then share its traffic. So take a port nobody holds
        // with a plain socket first, then bind the reuse-port group to it.
        let port = std::net::UdpSocket::bind(a)?.local_addr()?.port();
        a.set_port(port);
    }
    let first = bind_udp(a)?;
    let addr = first.local_addr()?;
    let mut udp = vec![first];
    for _ in 1..udp_sockets.max(1) {
        udp.push(bind_udp(addr)?);
    }
    let tcp = bind_tcp(addr)?;
    Ok(Bound { addr, udp, tcp })
}
