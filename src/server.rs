//! Listeners: they move bytes and nothing else; every answer is built by the pipeline.
//!
//! UDP: one SO_REUSEPORT socket per receive thread on every listen address, so the kernel spreads
//! load without a shared queue. Each thread runs the pipeline's fast path on the datagram and
//! sends the answer itself; a query that must wait on an upstream becomes a task on the full path,
//! on that thread's own runtime (`udp`). With `udp_path = "hickory"` (kept for comparison) every datagram takes the full path as a task.
//!
//! TCP: our own accept loop, because hickory-server has no connection cap and answers the queries
//! of one connection strictly in turn (head-of-line blocking, notes P4). Here a semaphore caps
//! concurrent connections, an idle timeout closes quiet ones, and the queries of one connection
//! are handled concurrently, with answers written back as they complete (RFC 7766 §6.2.1.1).
//!
//! PROXY protocol v2 (`proxy`): from a peer in `server.proxy_protocol` a header precedes every
//! datagram and every connection, and names the client; from any other peer a header is dropped.
//! A trusted proxy carries many clients, so it is not held to the per-client TCP cap at accept
//! (the global cap still applies); the cap applies to the client its header names.
//!
//! DoT and DoH (`tls`, `doh`): the same accept loop, caps (shared with TCP), per-client limit,
//! idle timeout and PROXY v2 header (before the TLS handshake), then a TLS handshake; a DoT
//! connection then runs the TCP connection loop over the TLS stream, a DoH connection an HTTP
//! server whose requests go through the same pipeline.
//!
//! A panic while one query is answered loses that query only (`contain`): the receive thread,
//! the connection and the process go on, the client gets SERVFAIL, and
//! `pixelguard_internal_errors_total` counts it.

mod bind;
mod contain;
mod doh;
mod limits;
mod mmsg;
mod proxy;
mod tls;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::pipeline::Handler;
pub use bind::{Bound, bind_all};
use contain::{Containment, Where, servfail};
use limits::TcpLimits;
use proxy::Proxies;
pub use tls::EncryptedBound;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Serve UDP through the receive threads' fast path (answers that need no upstream are
    /// written on the thread), instead of a task per datagram on the full path.
    pub udp_fast_path: bool,
    /// UDP sockets per address.
    pub udp_sockets: usize,
    /// TCP idle timeout.
    pub tcp_idle_timeout: Duration,
    /// Concurrent TCP connections.
    pub tcp_max_connections: usize,
    /// Concurrent TCP connections of one client address.
    pub tcp_max_connections_per_client: usize,
    /// Peers that must send a PROXY v2 header (`server.proxy_protocol`).
    pub proxy_protocol: Vec<ipnet::IpNet>,
}

/// A running set of listeners.
pub struct Running {
    udp_tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_tcp: watch::Sender<bool>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_udp: watch::Sender<Option<Duration>>,
    udp_threads: Vec<std::thread::JoinHandle<()>>,
}

/// What runs on an accepted stream connection.
#[derive(Clone)]
enum Kind {
    /// DNS over TCP (RFC 7766).
    Plain,
    /// DNS over TLS: the TCP loop inside TLS.
    Dot(tokio_rustls::TlsAcceptor),
    /// DNS over HTTPS.
    Doh(tokio_rustls::TlsAcceptor),
}

/// Starts serving on bound sockets.
pub fn serve(
    bound: Vec<Bound>,
    encrypted: EncryptedBound,
    handler: Handler,
    cfg: &ListenConfig,
) -> Running {
    let mut udp_tasks = Vec::new();
    let (stop_tcp, stop_rx) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(cfg.tcp_max_connections.max(1)));
    let per_client: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
        Arc::default();
    let mut tcp_tasks = Vec::new();
    let (stop_udp, stop_udp_rx) = watch::channel(None);
    let mut udp_threads = Vec::new();
    let contain = Containment::new(handler.0.recorder.metrics());
    let proxies = Proxies::new(&cfg.proxy_protocol, handler.0.recorder.metrics());
    let limits = TcpLimits {
        total: limit,
        per_client,
        per_client_max: cfg.tcp_max_connections_per_client.max(1),
        idle: cfg.tcp_idle_timeout,
        contain: contain.clone(),
        proxies: proxies.clone(),
    };
    for b in bound {
        for s in b.udp {
            if !cfg.udp_fast_path {
                udp_tasks.push(tokio::spawn(udp::tasks_loop(
                    Arc::new(s),
                    handler.clone(),
                    (contain.clone(), proxies.clone()),
                    stop_rx.clone(),
                )));
                continue;
            }
            let ctx = (contain.clone(), proxies.clone());
            match udp::spawn(s, handler.clone(), ctx, stop_udp_rx.clone()) {
                Ok(t) => udp_threads.push(t),
                Err(e) => tracing::error!(error = %e, "cannot start a UDP receive thread"),
            }
        }
        tcp_tasks.push(tokio::spawn(tcp_accept(
            (b.tcp, Kind::Plain),
            handler.clone(),
            limits.clone(),
            stop_rx.clone(),
        )));
    }
    let dot = tls::acceptor(&handler.0, &[tls::ALPN_DOT]).map(Kind::Dot);
    let doh = tls::acceptor(&handler.0, &tls::ALPN_DOH).map(Kind::Doh);
    let listeners = (encrypted.tls.into_iter().map(|l| (l, dot.clone())))
        .chain(encrypted.https.into_iter().map(|l| (l, doh.clone())));
    for (l, kind) in listeners {
        if let Some(kind) = kind {
            let (h, lim) = (handler.clone(), limits.clone());
            tcp_tasks.push(tokio::spawn(tcp_accept((l, kind), h, lim, stop_rx.clone())));
        }
    }
    Running {
        udp_tasks,
        stop_tcp,
        tcp_tasks,
        stop_udp,
        udp_threads,
    }
}

impl Running {
    /// Stops accepting, lets in-flight queries finish (bounded by `grace`).
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop_tcp.send(true);
        let _ = self.stop_udp.send(Some(grace));
        let threads = std::mem::take(&mut self.udp_threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        for t in std::mem::take(&mut self.udp_tasks) {
            let _ = tokio::time::timeout(grace, t).await;
        }
        for t in self.tcp_tasks {
            let _ = tokio::time::timeout(grace, t).await;
        }
    }
}

async fn tcp_accept(
    (listener, kind): (TcpListener, Kind),
    handler: Handler,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        // Take a connection slot first: when all are in use, new connections wait in the kernel
        // backlog instead of being accepted and starved.
        let permit = tokio::select! {
            p = limits.total.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // One client may not hold every connection: past its own cap it is closed at once. A
        // trusted proxy is held to the cap of the client its header names, once it is read.
        let proxied = limits.proxies.trusts(src.ip());
        let slot = if proxied {
            None
        } else {
            match limits.slot(src.ip()) {
                Some(s) => Some(s),
                None => continue,
            }
        };
        let handler = handler.clone();
        let stop = stop.clone();
        let lim = limits.clone();
        let kind = kind.clone();
        conns.spawn(async move {
            let mut stream = stream;
            let (client, slot) = if proxied {
                let Some(client) = lim.proxies.tcp_header(&mut stream, src, lim.idle).await else {
                    return;
                };
                let Some(slot) = lim.slot(client.ip()) else {
                    return;
                };
                (client, Some(slot))
            } else {
                (src, slot)
            };
            let ctx = (handler, lim.contain.clone(), lim.proxies.clone());
            match kind {
                Kind::Plain => {
                    let _ = stream.set_nodelay(true);
                    let io = stream.into_split();
                    tcp_connection(io, (client, !proxied), ctx, lim.idle, stop).await;
                }
                Kind::Dot(acceptor) => {
                    if let Some(s) = tls::handshake(&acceptor, stream, lim.idle).await {
                        let io = tokio::io::split(s);
                        tcp_connection(io, (client, false), ctx, lim.idle, stop).await;
                    }
                }
                Kind::Doh(acceptor) => {
                    if let Some(s) = tls::handshake(&acceptor, stream, lim.idle).await {
                        let (h, c) = (ctx.0, ctx.1);
                        doh::connection(s, client, (h, c), lim.idle, stop).await;
                    }
                }
            }
            drop(slot);
            drop(permit);
        });
        while conns.try_join_next().is_some() {}
    }
    // Drain: connections see the stop signal and finish their in-flight queries.
    while conns.join_next().await.is_some() {}
}

/// Serves one connection (plain TCP, or DoT inside TLS); `src` is the client, and `sniff` drops a PROXY header from an
/// untrusted peer where the first message would start.
async fn tcp_connection<R, W>(
    (mut rd, mut wr): (R, W),
    (src, mut sniff): (SocketAddr, bool),
    (handler, contain, proxies): (Handler, Containment, Proxies),
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if wr.write_all(&msg).await.is_err() {
                break;
            }
        }
    });
    let mut queries = tokio::task::JoinSet::new();
    loop {
        let mut len = [0u8; 2];
        let read = tokio::select! {
            r = tokio::time::timeout(idle, rd.read_exact(&mut len)) => r,
            _ = stop.changed() => break,
        };
        match read {
            Ok(Ok(_)) => {}
            _ => break, // idle timeout, EOF or error
        }
        let buf = if std::mem::take(&mut sniff) {
            match proxies.first_message(&mut rd, len, idle).await {
                Some(buf) => buf,
                None => break,
            }
        } else {
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            match tokio::time::timeout(idle, rd.read_exact(&mut buf)).await {
                Ok(Ok(_)) => buf,
                _ => break,
            }
        };
        let h = handler.clone();
        let tx = tx.clone();
        let c = contain.clone();
        queries.spawn(async move {
            handle_tcp_message(buf, src, h, tx, c).await;
        });
        while queries.try_join_next().is_some() {}
    }
    while queries.join_next().await.is_some() {}
    drop(tx);
    let _ = writer.await;
}

async fn handle_tcp_message(
    buf: Vec<u8>,
    src: SocketAddr,
    handler: Handler,
    tx: mpsc::Sender<Vec<u8>>,
    contain: Containment,
) {
    let answer = handler.0.answer(&buf, src, true, false);
    let reply = match contain.run_async(Where::Tcp, answer).await {
        Some(reply) => reply,
        None => servfail(&buf),
    };
    if let Some(reply) = reply {
        let _ = tx.send(framed(reply)).await;
    }
}

fn framed(msg: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&(msg.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}
