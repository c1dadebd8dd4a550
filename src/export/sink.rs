//! One export writer: a thread behind a bounded queue that keeps a connection to its collector
//! and writes what the queue holds. The request path only calls [`Sink::try_send`]; a full
//! queue drops the event (counted in `pixelguard_export_dropped_total{sink}`, warned about at
//! most every [`crate::querylog::DROP_WARN_INTERVAL`], through the query log's [`Drops`]).
//!
//! Connections: a Unix or TCP stream for dnstap (with the Frame Streams handshake), UDP, TCP or
//! TLS (rustls) for syslog. Every socket has read and write timeouts, so a collector that
//! accepts and never reads fails the write instead of hanging the thread: the connection is
//! dropped (its unconfirmed batch counted as dropped) and retried with exponential back-off
//! from [`BACKOFF_MIN`] to [`BACKOFF_MAX`]. While there is no connection the queue fills, and
//! what no longer fits is dropped: the newest events are lost, the oldest wait for the
//! collector.

use std::io::{self, BufWriter, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntCounter;

use super::{Item, dnstap, framestream, syslog};
use crate::config::{DnstapConfig, DnstapTarget, SyslogConfig, SyslogTransport};
use crate::metrics::Metrics;
use crate::querylog::{Drops, Next, Pace};

/// First retry delay after a failed connection.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Connect, read and write timeout of a collector connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Events written between flushes at most.
const BATCH: usize = 256;
/// Buffer of a stream connection: a batch goes out in few writes.
const STREAM_BUF: usize = 64 * 1024;
/// How often an idle writer looks at its stop flag (a busy one polls every
/// [`crate::querylog::Pace`] interval).
const TICK: Duration = Duration::from_millis(50);

/// A byte stream to a collector.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A sink's protocol: how to connect and what an item becomes.
trait Protocol: Send + 'static {
    /// Connects (handshake included).
    fn connect(&mut self) -> io::Result<()>;
    /// Whether a connection is open.
    fn connected(&self) -> bool;
    /// Writes an item (buffered); `Ok(false)` when the item means nothing to this sink.
    fn write(&mut self, item: &Item) -> io::Result<bool>;
    /// Flushes what is buffered.
    fn flush(&mut self) -> io::Result<()>;
    /// Whether written items wait in a buffer until [`Protocol::flush`] (streams), rather than
    /// leave at once (datagrams).
    fn buffers(&self) -> bool {
        true
    }
    /// Forgets the connection (after an error).
    fn drop_connection(&mut self);
    /// Ends the connection politely (dnstap: STOP / FINISH).
    fn close(&mut self);
}

/// The sending side of one sink.
pub(super) struct Sink {
    name: &'static str,
    tx: SyncSender<Item>,
    drops: Drops,
    stop: Arc<AtomicBool>,
    done: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("name", &self.name).finish()
    }
}

impl Sink {
    fn start(
        name: &'static str,
        buffer: usize,
        proto: impl Protocol,
        m: &Metrics,
    ) -> io::Result<Sink> {
        let (tx, rx) = sync_channel(buffer.max(1));
        let dropped = m.export_dropped.with_label_values(&[name]);
        let sent = m.export_sent.with_label_values(&[name]);
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let w = Writer {
            name,
            proto,
            rx,
            sent,
            dropped: dropped.clone(),
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name(format!("pixelguard-{name}"))
            .spawn(move || {
                w.run();
                let _ = done_tx.send(());
            })?;
        Ok(Sink {
            name,
            tx,
            drops: Drops::new(dropped),
            stop,
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// Queues an item without waiting; drops (and counts) it when the queue is full.
    pub(super) fn try_send(&self, item: Item) {
        match self.tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped(),
        }
    }

    fn dropped(&self) {
        if let Some(w) = self.drops.record() {
            tracing::warn!(
                sink = self.name,
                dropped = w.dropped,
                total = w.total,
                "export: the collector is behind or unreachable; events dropped (DNS answers are not delayed)"
            );
        }
    }

    /// Asks the writer to finish; resolves when it has.
    pub(super) fn stop(&self) -> impl std::future::Future<Output = ()> + use<> {
        self.stop.store(true, Ordering::Relaxed);
        let done = match self.done.lock() {
            Ok(mut d) => d.take(),
            Err(p) => p.into_inner().take(),
        };
        async move {
            if let Some(d) = done {
                let _ = d.await;
            }
        }
    }
}

struct Writer<P> {
    name: &'static str,
    proto: P,
    rx: Receiver<Item>,
    sent: IntCounter,
    dropped: IntCounter,
    stop: Arc<AtomicBool>,
}

impl<P: Protocol> Writer<P> {
    fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut next_try = Instant::now();
        let mut failing = false;
        let mut pace = Pace::default();
        loop {
            let stopping = self.stop.load(Ordering::Relaxed);
            if !self.proto.connected() {
                if stopping {
                    break;
                }
                let now = Instant::now();
                if now < next_try {
                    std::thread::sleep((next_try - now).min(TICK));
                    continue;
                }
                match self.proto.connect() {
                    Ok(()) => {
                        if failing {
                            tracing::info!(sink = self.name, "export: connected to the collector");
                        }
                        failing = false;
                        backoff = BACKOFF_MIN;
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(
                                sink = self.name,
                                "export: cannot reach the collector: {e}; retrying with back-off"
                            );
                        }
                        failing = true;
                        next_try = Instant::now() + backoff;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
            // Polls while events flow (no wake-up syscall on the request path), blocks for at
            // most TICK once idle; either way the stop flag is seen within TICK.
            let first = match pace.next(&self.rx, TICK) {
                Next::Item(i) => i,
                Next::Empty if stopping => break,
                Next::Empty => continue,
                Next::Closed => break,
            };
            // n: items written since the last flush; a failed write loses its own item too.
            let mut n = 0u64;
            let mut r = self.proto.write(&first).map(|w| n += u64::from(w));
            let mut batch = 1;
            while r.is_ok() && batch < BATCH {
                let Ok(i) = self.rx.try_recv() else { break };
                r = self.proto.write(&i).map(|w| n += u64::from(w));
                batch += 1;
            }
            let failed_write = r.is_err();
            match r.and_then(|()| self.proto.flush()) {
                Ok(()) => self.sent.inc_by(n),
                Err(e) => {
                    // Buffered (stream) items never reached the collector; datagrams did.
                    let (lost, sent) = if self.proto.buffers() { (n, 0) } else { (0, n) };
                    self.sent.inc_by(sent);
                    self.dropped.inc_by(lost + u64::from(failed_write));
                    tracing::warn!(
                        sink = self.name,
                        "export: lost the collector: {e}; reconnecting"
                    );
                    failing = true;
                    self.proto.drop_connection();
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        if self.proto.connected() {
            self.proto.close();
        }
    }
}

fn tcp(addr: std::net::SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

// ------------------------------------------------------------------------------------------
// dnstap
// ------------------------------------------------------------------------------------------

struct Dnstap {
    cfg: DnstapConfig,
    conn: Option<BufWriter<Box<dyn Stream>>>,
    enc: dnstap::Encoder,
}

pub(super) fn start_dnstap(cfg: DnstapConfig, m: &Metrics) -> io::Result<Sink> {
    let buffer = cfg.buffer;
    Sink::start(
        "dnstap",
        buffer,
        Dnstap {
            cfg,
            conn: None,
            enc: dnstap::Encoder::default(),
        },
        m,
    )
}

impl Protocol for Dnstap {
    fn connect(&mut self) -> io::Result<()> {
        let mut s: Box<dyn Stream> = match &self.cfg.target {
            DnstapTarget::Tcp(a) => Box::new(tcp(*a)?),
            DnstapTarget::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                Box::new(s)
            }
        };
        framestream::open_writer(&mut s, framestream::DNSTAP_CONTENT_TYPE)?;
        self.conn = Some(BufWriter::with_capacity(STREAM_BUF, s));
        Ok(())
    }
    fn connected(&self) -> bool {
        self.conn.is_some()
    }
    fn write(&mut self, item: &Item) -> io::Result<bool> {
        let (Item::Query(ev), Some(c)) = (item, self.conn.as_mut()) else {
            return Ok(false);
        };
        self.enc.write(ev, &self.cfg, c)?;
        Ok(true)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.conn.as_mut().map_or(Ok(()), Write::flush)
    }
    fn drop_connection(&mut self) {
        self.conn = None;
    }
    fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.flush();
            if let Ok(mut s) = c.into_inner() {
                let _ = framestream::close_writer(&mut s);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// syslog
// ------------------------------------------------------------------------------------------

enum SyslogConn {
    Udp(UdpSocket),
    Stream(BufWriter<Box<dyn Stream>>),
}

struct Syslog {
    cfg: SyslogConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<SyslogConn>,
    /// The message being written, reused from event to event.
    msg: String,
}

pub(super) fn start_syslog(cfg: SyslogConfig, m: &Metrics) -> io::Result<Sink> {
    let tls = match &cfg.transport {
        SyslogTransport::Tls(_) => Some(Arc::new(
            crate::upstream::tls::client_config(&cfg.ca_certs)
                .map_err(|e| io::Error::other(e.to_string()))?,
        )),
        _ => None,
    };
    let buffer = cfg.buffer;
    let p = Syslog {
        cfg,
        tls,
        conn: None,
        msg: String::with_capacity(1024),
    };
    Sink::start("syslog", buffer, p, m)
}

impl Protocol for Syslog {
    fn connect(&mut self) -> io::Result<()> {
        let a = self.cfg.server;
        let conn = match &self.cfg.transport {
            SyslogTransport::Udp => {
                let bind: std::net::SocketAddr = if a.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(a)?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                SyslogConn::Udp(s)
            }
            SyslogTransport::Tcp => {
                SyslogConn::Stream(BufWriter::with_capacity(STREAM_BUF, Box::new(tcp(a)?)))
            }
            SyslogTransport::Tls(name) => {
                let cfg = self
                    .tls
                    .clone()
                    .ok_or_else(|| io::Error::other("no TLS configuration"))?;
                let server = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let c = rustls::ClientConnection::new(cfg, server).map_err(io::Error::other)?;
                let mut s = rustls::StreamOwned::new(c, tcp(a)?);
                // Handshake now, so that a bad certificate is a connect error (retried with
                // back-off), not a lost batch.
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                SyslogConn::Stream(BufWriter::with_capacity(STREAM_BUF, Box::new(s)))
            }
        };
        self.conn = Some(conn);
        Ok(())
    }
    fn connected(&self) -> bool {
        self.conn.is_some()
    }
    fn write(&mut self, item: &Item) -> io::Result<bool> {
        if self.conn.is_none() {
            return Ok(false);
        }
        self.msg.clear();
        match item {
            Item::Query(ev) => {
                if !syslog::push_query(&mut self.msg, ev, &self.cfg) {
                    return Ok(false);
                }
            }
            Item::Notice(n) => self.msg.push_str(&syslog::format_notice(n, &self.cfg)),
        }
        let msg = &self.msg;
        match self.conn.as_mut() {
            None => Ok(false),
            // A refused datagram (the ICMP of an earlier one: nobody listening) is an error
            // like any other: counted as dropped, and the socket is made anew after back-off.
            Some(SyslogConn::Udp(s)) => s.send(msg.as_bytes()).map(|_| true),
            // Octet counting (RFC 6587): the length, a space, the message; many messages per
            // write, the buffer going out when full or at the batch's flush.
            Some(SyslogConn::Stream(w)) => {
                write!(w, "{} ", msg.len())?;
                w.write_all(msg.as_bytes())?;
                Ok(true)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.conn.as_mut() {
            Some(SyslogConn::Stream(w)) => w.flush(),
            _ => Ok(()),
        }
    }
    fn buffers(&self) -> bool {
        !matches!(self.conn, Some(SyslogConn::Udp(_)))
    }
    fn drop_connection(&mut self) {
        self.conn = None;
    }
    fn close(&mut self) {
        if let Some(SyslogConn::Stream(mut w)) = self.conn.take() {
            let _ = w.flush();
        }
    }
}
