//! DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484, HTTP/2) to one upstream, on
//! hickory-net's TLS and HTTPS client exchanges (rustls with ring).
//!
//! One connection per upstream, reused by every query and opened on first use. Queries on it
//! are multiplexed, at most [`MAX_IN_FLIGHT_PER_CONNECTION`] at a time (a semaphore here, and the
//! same cap given to hickory's multiplexer instead of its default 32). A connection that breaks
//! (closed by the server, reset) is dropped and the query is sent once more on a fresh one within
//! the same try; a connection on which [`TIMEOUTS_BEFORE_RECONNECT`] queries in a row timed out
//! is dropped too (a silently dead peer). Connecting runs in a task of its own, bounded by the
//! per-try timeout and shared by every query waiting for it, which records its outcome even
//! when those queries have given up. A failed connect (TCP, TLS handshake, certificate
//! verification, timeout) fails the waiting tries at once and the upstream is not dialled again
//! for [`CONNECT_BACKOFF`], so queries fail over to the next upstream without waiting.
//!
//! The reply is the message as the upstream sent it; TC has no meaning on a stream and is not
//! acted on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use hickory_net::NetError;
use hickory_net::h2::HttpsClientStream;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tls::tls_exchange;
use hickory_net::xfer::{DnsExchange, DnsHandle, FirstAnswer};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message, ResponseCode};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::sync::Semaphore;

use super::{MAX_IN_FLIGHT_PER_CONNECTION, Question, TryError, answers_question, build_query};
use crate::config::{UpstreamConfig, UpstreamProtocol, UpstreamServer};

/// After a failed connect, the upstream is not dialled again for this long.
pub const CONNECT_BACKOFF: Duration = Duration::from_secs(1);
/// Timeouts in a row on one connection after which it is replaced.
pub const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;

type Exchange = DnsExchange<TokioRuntimeProvider>;
type Connecting = Shared<BoxFuture<'static, Result<(u64, Exchange), TryError>>>;

enum Kind {
    Tls(ServerName<'static>),
    Https { name: Arc<str>, path: Arc<str> },
}

/// One DoT or DoH upstream with its (reused) connection.
pub(super) struct StreamUpstream {
    spec: UpstreamServer,
    kind: Kind,
    tls: Result<Arc<ClientConfig>, super::tls::TlsSetupError>,
    ca: Vec<CertificateDer<'static>>,
    timeout: Duration,
    /// Owns the connections' background tasks: kept for the upstream's life (notes P1).
    provider: TokioRuntimeProvider,
    slot: Mutex<Slot>,
    permits: Semaphore,
    timeouts_in_row: AtomicU32,
}

#[derive(Default)]
struct Slot {
    current: Option<(u64, Exchange)>,
    generation: u64,
    down: Option<(Instant, TryError)>,
    connecting: Option<Connecting>,
}

impl StreamUpstream {
    /// An upstream for a `tls://` or `https://` server (not connected yet).
    pub(super) fn new(spec: &UpstreamServer, cfg: &UpstreamConfig) -> Self {
        let kind = match &spec.protocol {
            UpstreamProtocol::Https { name, path } => Kind::Https {
                name: Arc::from(name.as_str()),
                path: Arc::from(path.as_str()),
            },
            // Validation checked the name; without one the IP address is verified (IP SAN).
            UpstreamProtocol::Tls { name } => Kind::Tls(
                ServerName::try_from(name.clone())
                    .unwrap_or_else(|_| ServerName::IpAddress(spec.addr.ip().into())),
            ),
            UpstreamProtocol::Plain => Kind::Tls(ServerName::IpAddress(spec.addr.ip().into())),
        };
        let tls = super::tls::client_config(&cfg.ca_certs).map(Arc::new);
        if let Err(e) = &tls {
            tracing::error!(upstream = %spec, "TLS client setup failed, this upstream will fail every try: {e}");
        }
        Self {
            spec: spec.clone(),
            kind,
            tls,
            ca: cfg.ca_certs.clone(),
            timeout: cfg.timeout,
            provider: TokioRuntimeProvider::new(),
            slot: Mutex::new(Slot::default()),
            permits: Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION),
            timeouts_in_row: AtomicU32::new(0),
        }
    }

    /// True if this upstream serves `spec` with the TLS roots and timeout of `cfg`.
    pub(super) fn same_setup(&self, spec: &UpstreamServer, cfg: &UpstreamConfig) -> bool {
        self.spec == *spec && self.ca == cfg.ca_certs && self.timeout == cfg.timeout
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        match self.slot.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Sends one query on the connection (opening it if needed) and returns the reply.
    async fn exchange(self: &Arc<Self>, m: &Message) -> Result<Message, TryError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| TryError::Network)?;
        // Bounded: a fresh connection's failure ends the loop.
        for _ in 0..2 {
            let (generation, ex, fresh) = self.connection().await?;
            let req = DnsRequest::new(m.clone(), DnsRequestOptions::default());
            match ex.send(req).first_answer().await {
                Ok(resp) => {
                    self.timeouts_in_row.store(0, Ordering::Relaxed);
                    return Ok(resp.into_message());
                }
                Err(NetError::Timeout) => {
                    let n = self.timeouts_in_row.fetch_add(1, Ordering::Relaxed) + 1;
                    if n >= TIMEOUTS_BEFORE_RECONNECT {
                        self.discard(generation);
                    }
                    return Err(TryError::Timeout);
                }
                Err(e) => {
                    tracing::debug!(upstream = %self.spec, fresh, "connection failed: {e}");
                    self.discard(generation);
                    if fresh {
                        return Err(TryError::Network);
                    }
                }
            }
        }
        Err(TryError::Network)
    }

    /// The current connection, or a new one (joining a connect already under way):
    /// (generation, exchange, newly opened).
    async fn connection(self: &Arc<Self>) -> Result<(u64, Exchange, bool), TryError> {
        let pending = {
            let mut slot = self.slot();
            if let Some((g, ex)) = &slot.current {
                return Ok((*g, ex.clone(), false));
            }
            if let Some((until, e)) = slot.down {
                if Instant::now() < until {
                    return Err(e);
                }
                slot.down = None;
            }
            match &slot.connecting {
                Some(c) => c.clone(),
                None => {
                    let me = self.clone();
                    let task = tokio::spawn(async move { me.connect_and_record().await });
                    let c: Connecting = async move { task.await.unwrap_or(Err(TryError::Network)) }
                        .boxed()
                        .shared();
                    slot.connecting = Some(c.clone());
                    c
                }
            }
        };
        let (g, ex) = pending.await?;
        Ok((g, ex, true))
    }

    /// Connects (within the per-try timeout) and records the outcome in the slot.
    async fn connect_and_record(self: Arc<Self>) -> Result<(u64, Exchange), TryError> {
        let result = match self.tls.as_ref() {
            Err(_) => Err((TryError::Tls, "no TLS client configuration".to_owned())),
            Ok(tls) => match tokio::time::timeout(self.timeout, self.connect(tls.clone())).await {
                Ok(Ok(ex)) => Ok(ex),
                Ok(Err(e)) => Err((classify(&e), e.to_string())),
                Err(_) => Err((TryError::Timeout, "timed out".to_owned())),
            },
        };
        let mut slot = self.slot();
        slot.connecting = None;
        match result {
            Ok(ex) => {
                slot.generation += 1;
                let g = slot.generation;
                slot.current = Some((g, ex.clone()));
                self.timeouts_in_row.store(0, Ordering::Relaxed);
                Ok((g, ex))
            }
            Err((kind, e)) => {
                if kind == TryError::Tls {
                    tracing::warn!(upstream = %self.spec, "TLS handshake failed (certificate not valid for the configured name, or not issued by a trusted CA?): {e}");
                } else {
                    tracing::warn!(upstream = %self.spec, "cannot connect: {e}");
                }
                let now = Instant::now();
                slot.down = Some((now.checked_add(CONNECT_BACKOFF).unwrap_or(now), kind));
                Err(kind)
            }
        }
    }

    async fn connect(&self, tls: Arc<ClientConfig>) -> Result<Exchange, NetError> {
        let addr: SocketAddr = self.spec.addr;
        match &self.kind {
            Kind::Tls(name) => {
                tls_exchange(
                    addr,
                    name.clone(),
                    (*tls).clone(),
                    self.timeout,
                    Some(MAX_IN_FLIGHT_PER_CONNECTION),
                    self.provider.clone(),
                )
                .await
            }
            Kind::Https { name, path } => {
                let mut b = HttpsClientStream::builder(tls, self.provider.clone());
                b.request_timeout(self.timeout);
                b.exchange(addr, name.clone(), path.clone()).await
            }
        }
    }

    fn discard(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.current.as_ref().is_some_and(|(g, _)| *g == generation) {
            slot.current = None;
        }
    }
}

/// A connect error caused by TLS (handshake, certificate) or something else.
fn classify(e: &NetError) -> TryError {
    match e {
        NetError::Io(io) => {
            let tls = io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if tls {
                TryError::Tls
            } else if io.kind() == std::io::ErrorKind::TimedOut {
                TryError::Timeout
            } else {
                TryError::Network
            }
        }
        NetError::Timeout => TryError::Timeout,
        _ => TryError::Network,
    }
}

/// One try at a DoT / DoH upstream: FORMERR to EDNS → once more without EDNS.
pub(super) async fn try_server(
    up: &Arc<StreamUpstream>,
    q: &Question,
    time: Duration,
) -> Result<Message, TryError> {
    let work = async {
        let mut edns = true;
        // Bounded: at most two sends.
        for _ in 0..2 {
            let reply = up.exchange(&build_query(q, edns)).await?;
            if !answers_question(&reply, &q.query) {
                return Err(TryError::Malformed);
            }
            if edns && reply.metadata.response_code == ResponseCode::FormErr {
                edns = false;
                continue;
            }
            return Ok(reply);
        }
        Err(TryError::Malformed)
    };
    tokio::time::timeout(time, work)
        .await
        .map_err(|_| TryError::Timeout)?
}
