//! Batched datagram I/O for the UDP receive threads: on Linux `recvmmsg(2)` reads the queries
//! waiting on a socket (up to [`BATCH`]) in one system call and `sendmmsg(2)` writes the answers
//! of that batch in one; elsewhere one datagram per call. A receive never waits for a batch to
//! fill (`MSG_DONTWAIT`): at low load a batch is one query, under load it is what the socket
//! holds, and the system call pair per query, the largest per-query cost above the bare-UDP
//! ceiling, is shared by the batch.
//!
//! Hand-written on libc: no maintained crate offers plain batched receive and send without also
//! changing the socket (quinn-udp sets don't-fragment, which turns an answer larger than the path
//! MTU into a send error instead of a fragmented datagram, wrong for DNS). The unsafe code is
//! confined here: each call's headers are rebuilt from the owned buffers just before it, so no
//! pointer outlives the borrow it came from. This module and `crate::sock` are the only ones allowed
//! `unsafe` (`unsafe_code = "deny"` everywhere else).

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Bytes per received datagram. A larger query (none is seen in practice: EDNS sizes bound
/// answers, not queries) arrives truncated and is dropped.
pub const SLOT: usize = 4096;

/// Received datagrams.
pub struct Inbox {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    #[cfg(target_os = "linux")]
    hdrs: Vec<libc::mmsghdr>,
    lens: Vec<(usize, bool)>,
}

impl Inbox {
    /// Room for [`BATCH`] datagrams of [`SLOT`] bytes.
    pub fn new() -> Self {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs; all-zero is valid.
        Self {
            bufs: vec![0u8; BATCH * SLOT],
            addrs: vec![unsafe { zeroed() }; BATCH],
            iovs: vec![unsafe { zeroed() }; BATCH],
            #[cfg(target_os = "linux")]
            hdrs: vec![unsafe { zeroed() }; BATCH],
            lens: vec![(0, false); BATCH],
        }
    }

    /// Reads what is waiting (at least one datagram, or `WouldBlock`); returns how many.
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for (i, chunk) in self.bufs.chunks_exact_mut(SLOT).enumerate() {
            self.iovs[i] = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            self.hdrs[i] = header(
                (&raw mut self.addrs[i]).cast(),
                size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                &raw mut self.iovs[i],
            );
        }
        // SAFETY: `hdrs` holds BATCH headers whose buffers and names are owned by `self` and
        // not otherwise borrowed during the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let h = &self.hdrs[i];
            self.lens[i] = (
                h.msg_len as usize,
                h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            );
        }
        Ok(n)
    }

    /// Reads one waiting datagram (or `WouldBlock`); returns 1.
    #[cfg(not(target_os = "linux"))]
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: the buffer and the address are owned by `self` and sized as passed.
        let n = unsafe {
            libc::recvfrom(
                fd,
                self.bufs.as_mut_ptr().cast(),
                SLOT,
                libc::MSG_DONTWAIT,
                (&raw mut self.addrs[0]).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.lens[0] = ((n as usize).min(SLOT), n as usize > SLOT);
        Ok(1)
    }

    /// The `i`th datagram of the last receive and its sender; `None` when it was truncated or
    /// its sender is not an IP address.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, truncated) = *self.lens.get(i)?;
        if truncated {
            tracing::debug!("dropped a UDP query larger than {SLOT} bytes");
            return None;
        }
        let from = decode(self.addrs.get(i)?)?;
        Some((self.bufs.get(i * SLOT..i * SLOT + len)?, from))
    }
}

/// Answers waiting to be sent, each with its destination.
pub struct Outbox {
    bufs: Vec<Vec<u8>>,
    to: Vec<socket2::SockAddr>,
    queued: usize,
    sent: usize,
    #[cfg(target_os = "linux")]
    iovs: Vec<libc::iovec>,
    #[cfg(target_os = "linux")]
    hdrs: Vec<libc::mmsghdr>,
}

impl Outbox {
    /// Room for [`BATCH`] answers.
    pub fn new() -> Self {
        let any = socket2::SockAddr::from(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        Self {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            to: vec![any; BATCH],
            queued: 0,
            sent: 0,
            // SAFETY: all-zero iovec and mmsghdr are valid.
            #[cfg(target_os = "linux")]
            iovs: vec![unsafe { zeroed() }; BATCH],
            #[cfg(target_os = "linux")]
            hdrs: vec![unsafe { zeroed() }; BATCH],
        }
    }

    /// The buffer the next answer is written into (emptied); [`Outbox::push`] queues it.
    pub fn slot(&mut self) -> &mut Vec<u8> {
        let b = &mut self.bufs[self.queued];
        b.clear();
        b
    }

    /// Queues the answer written into [`Outbox::slot`] for `to`.
    pub fn push(&mut self, to: SocketAddr) {
        self.to[self.queued] = to.into();
        self.queued += 1;
    }

    /// Nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued == self.sent
    }

    /// Forgets what is queued.
    pub fn clear(&mut self) {
        self.queued = 0;
        self.sent = 0;
    }

    /// Sends what is queued. `WouldBlock` keeps the rest for the next call; a datagram the
    /// kernel refuses for another reason is skipped (its client gets no answer, as with a lost
    /// packet), so one bad destination does not hold back the batch.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<()> {
        while self.sent < self.queued {
            match self.send_some(fd) {
                Ok(n) => self.sent += n.max(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "udp send failed");
                    self.sent += 1;
                }
            }
        }
        self.clear();
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn send_some(&mut self, fd: RawFd) -> io::Result<usize> {
        let (from, to) = (self.sent, self.queued);
        for i in from..to {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            };
            // sendmmsg only reads the name.
            let name = self.to[i].as_ptr() as *mut libc::c_void;
            self.hdrs[i] = header(name, self.to[i].len(), &raw mut self.iovs[i]);
        }
        // SAFETY: headers from..to point into buffers and addresses owned by `self`.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.hdrs[from..to].as_mut_ptr(),
                (to - from) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    #[cfg(not(target_os = "linux"))]
    fn send_some(&mut self, fd: RawFd) -> io::Result<usize> {
        let i = self.sent;
        // SAFETY: the buffer and the address are owned by `self` and sized as passed.
        let n = unsafe {
            libc::sendto(
                fd,
                self.bufs[i].as_ptr().cast(),
                self.bufs[i].len(),
                libc::MSG_DONTWAIT,
                self.to[i].as_ptr(),
                self.to[i].len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(1)
    }
}

/// The header of one datagram: its address (`name`, `len` bytes) and its one buffer. The
/// pointers must stay valid until the system call the header is passed to returns.
#[cfg(target_os = "linux")]
fn header(name: *mut libc::c_void, len: libc::socklen_t, iov: *mut libc::iovec) -> libc::mmsghdr {
    // SAFETY: zero is a valid msghdr (no name, no buffers, no control data).
    let mut h: libc::msghdr = unsafe { zeroed() };
    h.msg_name = name;
    h.msg_namelen = len;
    h.msg_iov = iov;
    h.msg_iovlen = 1;
    libc::mmsghdr {
        msg_hdr: h,
        msg_len: 0,
    }
}

/// The IP address and port in a socket address the kernel filled in.
fn decode(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(a.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // enough and aligned for.
            let v4 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(v4.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            let port = u16::from_be(v6.sin6_port);
            Some(SocketAddrV6::new(ip, port, v6.sin6_flowinfo, v6.sin6_scope_id).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_of_datagrams_in_and_their_answers_out() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let to = server.local_addr().unwrap();
        for i in 0..5u8 {
            client.send_to(&[i; 3], to).unwrap();
        }
        let mut inbox = Inbox::new();
        let mut outbox = Outbox::new();
        let mut seen = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while seen < 5 {
            assert!(std::time::Instant::now() < deadline, "the datagrams arrive");
            let n = match inbox.recv(server.as_raw_fd()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("recv: {e}"),
            };
            for i in 0..n {
                let (data, from) = inbox.get(i).unwrap();
                assert_eq!(from, client.local_addr().unwrap());
                assert_eq!(data, &[seen as u8; 3]);
                outbox.slot().extend_from_slice(&[data[0] + 100]);
                outbox.push(from);
                seen += 1;
            }
        }
        assert!(!outbox.is_empty());
        outbox.flush(server.as_raw_fd()).unwrap();
        assert!(outbox.is_empty());
        let mut buf = [0u8; 16];
        for i in 0..5u8 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&[i + 100][..], to));
        }
    }

    #[test]
    fn an_oversized_datagram_is_dropped_not_cut() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        client.send_to(&vec![7u8; SLOT + 10], to).unwrap();
        client.send_to(b"ok", to).unwrap();
        let mut inbox = Inbox::new();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 2 {
            assert!(std::time::Instant::now() < deadline, "the datagrams arrive");
            match inbox.recv(server.as_raw_fd()) {
                Ok(n) => got.extend((0..n).map(|i| inbox.get(i).map(|(d, _)| d.to_vec()))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert_eq!(got, vec![None, Some(b"ok".to_vec())]);
    }
}
