//! UDP listeners: the receive threads of the fast path, and the task-per-datagram loop of
//! `udp_path = "hickory"` (kept for comparison).
//!
//! One thread per SO_REUSEPORT socket, each with a single-threaded tokio runtime of its own. The
//! thread reads the datagrams waiting on its socket in one batch (`mmsg`), runs the pipeline's
//! fast path on each, and sends the batch's answers itself in one batch; a
//! query that must wait on an upstream becomes a task on the *same* thread's runtime, so a cache
//! miss is received, forwarded, awaited and answered on one thread, its upstream socket
//! registered with that thread's reactor. Handing misses to the shared multi-threaded runtime
//! instead cost a wake-up of another thread and a context switch per miss (the profile in
//! BENCHMARKS.md): that hop was most of what a forwarded query cost above Unbound, which forwards
//! from the thread that received the query.
//!
//! Shutdown: the stop signal carries the grace period; a thread stops reading, lets its
//! in-flight queries finish within the grace, and exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::os::fd::{AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, watch};

use super::contain::{Containment, Where, servfail};
use super::mmsg::{Inbox, Outbox};
use super::proxy::Proxies;
use crate::pipeline::{FastPath, Handler};

/// The stop signal of the receive threads: `Some(grace)` once they must stop.
pub(super) type Stop = watch::Receiver<Option<Duration>>;

/// Starts a receive thread on `sock` (moved off the caller's runtime onto the thread's own).
pub(super) fn spawn(
    sock: UdpSocket,
    handler: Handler,
    (contain, proxies): (Containment, Proxies),
    stop: Stop,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let sock = sock.into_std()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("pixelguard-udp".into())
        .spawn(move || {
            // Upstream sockets are closed after the answer is sent, not before (`crate::sock`).
            crate::sock::defer_closes();
            rt.block_on(run(sock, handler, (contain, proxies), stop));
            // Deregistered while the runtime they were registered with still runs.
            crate::sock::close_deferred();
        })
}

async fn run(
    sock: std::net::UdpSocket,
    handler: Handler,
    (contain, proxies): (Containment, Proxies),
    mut stop: Stop,
) {
    // Registered for reading only (see `crate::sock`); sends are non-blocking and wait for
    // room only when the buffer is full (`wait_writable`).
    let sock = match crate::sock::register(sock, Interest::READABLE) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot start a UDP receive thread");
            return;
        }
    };
    let inflight = InFlight::default();
    // A timer always pending on this thread, due within `HEARTBEAT`: tokio wakes its own reactor
    // (an eventfd write, then one more `epoll_wait`) whenever a new timer is due before every
    // pending one, which without it would be every miss's upstream timeout at a time when no
    // other query is waiting. With it, only a timeout shorter than `HEARTBEAT` does.
    let beat = tokio::spawn(async {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
        }
    });
    let _beat = AbortOnDrop(beat);
    let receive = receive(sock, handler, (contain, proxies), inflight.clone());
    let grace = tokio::select! {
        () = receive => return,
        g = stop.wait_for(Option::is_some) => match g {
            Ok(g) => g.unwrap_or_default(),
            Err(_) => Duration::ZERO,
        },
    };
    let _ = tokio::time::timeout(grace, inflight.drained()).await;
}

async fn receive(
    sock: Arc<AsyncFd<std::net::UdpSocket>>,
    handler: Handler,
    (contain, proxies): (Containment, Proxies),
    inflight: InFlight,
) {
    let fd = sock.as_raw_fd();
    let mut inbox = Inbox::new();
    let mut outbox = Outbox::new();
    loop {
        let n = match sock.async_io(Interest::READABLE, |_| inbox.recv(fd)).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        for i in 0..n {
            let Some((data, src)) = inbox.get(i) else {
                continue;
            };
            if src.port() == 0 {
                continue;
            }
            // The DNS message and its client (a PROXY header's source, or the sender).
            let Some((msg, client)) = proxies.datagram(data, src) else {
                continue;
            };
            let out = outbox.slot();
            let fast = contain.run(Where::UdpFastPath, || {
                handler.0.fast_udp(msg, client.ip(), out)
            });
            match fast {
                // An empty answer means "drop" (rate limit with action = "drop").
                Some(FastPath::Answered) if out.is_empty() => {}
                Some(FastPath::Answered) => outbox.push(src),
                Some(FastPath::Full { admitted }) => {
                    // The full path, on this thread: any request shape, upstream queries.
                    let bytes = msg.to_vec();
                    let (h, s, c) = (handler.clone(), sock.clone(), contain.clone());
                    let guard = inflight.enter();
                    tokio::spawn(async move {
                        let answer = h.0.answer(&bytes, client, false, admitted);
                        let reply = match c.run_async(Where::UdpFullPath, answer).await {
                            Some(reply) => reply,
                            None => servfail(&bytes),
                        };
                        if let Some(reply) = reply {
                            send(s.get_ref(), &reply, src).await;
                        }
                        crate::sock::close_deferred();
                        drop(guard);
                    });
                }
                None => {
                    // A bug panicked on this packet: the thread goes on; the answer buffer
                    // may hold half an answer.
                    out.clear();
                    if let Some(reply) = servfail(msg) {
                        out.extend_from_slice(&reply);
                        outbox.push(src);
                    }
                }
            }
        }
        flush(sock.get_ref(), fd, &mut outbox).await;
        crate::sock::close_deferred();
    }
}

/// Sends the batch's answers, waiting for room in the socket's buffer if it is full.
async fn flush(sock: &std::net::UdpSocket, fd: RawFd, outbox: &mut Outbox) {
    while !outbox.is_empty() {
        match outbox.flush(fd) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if wait_writable(sock).await.is_err() {
                    outbox.clear();
                    return;
                }
            }
            Err(_) => {
                outbox.clear();
                return;
            }
        }
    }
}

/// Sends one datagram; when the buffer is full, waits for room once and tries again.
async fn send(sock: &std::net::UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = sock.send_to(bytes, to)
        && e.kind() == std::io::ErrorKind::WouldBlock
        && wait_writable(sock).await.is_ok()
    {
        let _ = sock.send_to(bytes, to);
    }
}

/// Waits until the socket's send buffer has room (rare: a UDP send buffer is seldom full). The
/// socket itself is registered for reading only, so a duplicate of it is registered for writing
/// for as long as the wait lasts, bounded so that a stuck buffer cannot hold a thread forever.
async fn wait_writable(sock: &std::net::UdpSocket) -> std::io::Result<()> {
    let dup = crate::sock::register(sock.try_clone()?, Interest::WRITABLE)?;
    match tokio::time::timeout(SEND_WAIT, dup.writable()).await {
        Ok(ready) => ready.map(drop),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// How long a send waits for room in a full buffer before the datagram is dropped.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// The period of a receive thread's pending timer (see `run`): shorter than the default
/// upstream timeout (2 s); one wake-up a second of an idle thread.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Full-path queries in flight on one receive thread, so that a stop can let them finish.
#[derive(Clone, Default)]
struct InFlight(Arc<(AtomicUsize, Notify)>);

struct Entered(Arc<(AtomicUsize, Notify)>);

impl InFlight {
    fn enter(&self) -> Entered {
        self.0.0.fetch_add(1, Ordering::Relaxed);
        Entered(self.0.clone())
    }

    async fn drained(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.0.0.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

/// `udp_path = "hickory"`: every datagram becomes a task on the full path, on the shared
/// runtime.
pub(super) async fn tasks_loop(
    sock: Arc<UdpSocket>,
    handler: Handler,
    (contain, proxies): (Containment, Proxies),
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, src) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if src.port() == 0 {
            continue;
        }
        let Some((msg, client)) = proxies.datagram(&buf[..n], src) else {
            continue;
        };
        let bytes = msg.to_vec();
        let (h, s, c) = (handler.clone(), sock.clone(), contain.clone());
        tokio::spawn(async move {
            let answer = h.0.answer(&bytes, client, false, false);
            let reply = match c.run_async(Where::UdpFullPath, answer).await {
                Some(reply) => reply,
                None => servfail(&bytes),
            };
            if let Some(reply) = reply {
                let _ = s.send_to(&reply, src).await;
            }
        });
    }
}
