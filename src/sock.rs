//! Sockets registered with the tokio reactor for one direction only.
//!
//! tokio's own socket types register for reading and writing. A UDP socket registered for
//! writing reports an edge-triggered "writable" event when it is added and after every send; for a
//! socket that is only ever waited on to read (a UDP receive thread's socket, an upstream try's
//! socket, whose one query leaves before it is registered), each of those events is one more trip
//! through the reactor, and a first `send` on a fresh tokio socket waits for that event before it
//! sends. Profiled at 10k queries per second, the receive thread called `epoll_wait` twice per
//! batch where Unbound calls it once; see BENCHMARKS.md.
//!
//! The one call here is unsafe in tokio's API (the caller vouches that the descriptor stays the
//! same and open while registered). With `server::mmsg`, this is one of the crate's two modules
//! allowed `unsafe` (`unsafe_code = "deny"` everywhere else).

#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::io;
use std::net::UdpSocket;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Registers `sock` with the current runtime's reactor for `interest` only (the runtime of the
/// calling thread; panics outside one, as tokio's sockets do).
pub fn register(sock: UdpSocket, interest: Interest) -> io::Result<AsyncFd<UdpSocket>> {
    // SAFETY: a std `UdpSocket` owns its descriptor: it stays open, and `as_raw_fd` returns the
    // same descriptor, until the socket is dropped, and the `AsyncFd` owns the socket.
    unsafe { AsyncFd::register_with_interest(sock, interest) }.map_err(Into::into)
}

thread_local! {
    /// Whether this thread closes upstream sockets after it has answered ([`close_later`]).
    static DEFERS: Cell<bool> = const { Cell::new(false) };
    /// Sockets waiting to be closed on this thread.
    static LATER: RefCell<Vec<AsyncFd<UdpSocket>>> = const { RefCell::new(Vec::new()) };
}

/// At most this many sockets wait to be closed on one thread.
const LATER_MAX: usize = 64;

/// Makes the calling thread close upstream sockets when it calls [`close_deferred`] (a UDP
/// receive thread, after each answer it sends) rather than when an exchange ends.
pub fn defer_closes() {
    DEFERS.set(true);
}

/// Closes `sock` now, or on a thread that defers closes, at its next [`close_deferred`]: an
/// upstream try's socket is done with once its reply is read, and closing it (deregistering
/// from the reactor, then `close`) before the client's answer is sent put both system calls on
/// the answer's path. Bounded: past [`LATER_MAX`] waiting, all are closed at once.
pub fn close_later(sock: AsyncFd<UdpSocket>) {
    if !DEFERS.get() {
        drop(sock);
        return;
    }
    let full = LATER.with_borrow_mut(|l| {
        l.push(sock);
        l.len() >= LATER_MAX
    });
    if full {
        close_deferred();
    }
}

/// Closes the sockets [`close_later`] kept on this thread.
pub fn close_deferred() {
    // Taken out first: dropping a socket never re-enters, but the borrow stays short anyway.
    let socks = LATER.with_borrow_mut(std::mem::take);
    drop(socks);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket registered for reading wakes a reader; one registered for writing is writable at
    /// once (a fresh UDP socket has room).
    #[tokio::test]
    async fn each_direction_alone() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = a.local_addr().unwrap();
        let a = register(a, Interest::READABLE).unwrap();
        let b = register(b, Interest::WRITABLE).unwrap();
        let mut w = b.writable().await.unwrap();
        w.try_io(|s| s.get_ref().send_to(b"x", to))
            .unwrap()
            .unwrap();
        let mut buf = [0u8; 4];
        let n = a
            .async_io(Interest::READABLE, |s| s.recv(&mut buf))
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"x");
    }

    /// A deferring thread keeps sockets until it closes them, and never more than the bound;
    /// another thread closes at once.
    #[tokio::test]
    async fn closes_deferred_and_bounded() {
        let fresh = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            register(s, Interest::READABLE).unwrap()
        };
        close_later(fresh());
        assert_eq!(LATER.with_borrow(Vec::len), 0);
        defer_closes();
        close_later(fresh());
        close_later(fresh());
        assert_eq!(LATER.with_borrow(Vec::len), 2);
        close_deferred();
        assert_eq!(LATER.with_borrow(Vec::len), 0);
        for _ in 0..LATER_MAX + 3 {
            close_later(fresh());
        }
        assert!(LATER.with_borrow(Vec::len) < LATER_MAX);
        close_deferred();
    }
}
