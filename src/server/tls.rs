//! The TLS side of the encrypted listeners (DoT, RFC 7858; DoH, RFC 8484): binding their TCP
//! listeners, the rustls server configuration, and the handshake. What runs inside the TLS
//! stream is the plain TCP connection loop (DoT, `server::tcp_connection`) or the HTTP server
//! (DoH, `doh`).
//!
//! The certificate is read from the running snapshot's config at each handshake
//! ([`FromSnapshot`]): a SIGHUP reload that validates a new `tls_cert` / `tls_key` serves it to
//! new connections while established ones keep theirs; a reload whose certificate is bad fails
//! as a whole (config validation), so the running one stays.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::bind::bind_tcp;
use crate::pipeline::Pipeline;

/// ALPN of DNS over TLS (RFC 7858 §3.2; the "dot" identifier of RFC 9461).
pub const ALPN_DOT: &[u8] = b"dot";
/// ALPN of DNS over HTTPS: HTTP/2 first, HTTP/1.1 for older clients.
pub const ALPN_DOH: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TCP listeners of the encrypted ports, bound before anything is served.
pub struct EncryptedBound {
    /// DoT listeners.
    pub tls: Vec<TcpListener>,
    /// DoH listeners.
    pub https: Vec<TcpListener>,
}

impl EncryptedBound {
    /// Binds every DoT and DoH address (port 0: a free port, for tests).
    pub fn bind(tls: &[SocketAddr], https: &[SocketAddr]) -> std::io::Result<EncryptedBound> {
        Ok(EncryptedBound {
            tls: tls.iter().map(|&a| bind_tcp(a)).collect::<Result<_, _>>()?,
            https: https
                .iter()
                .map(|&a| bind_tcp(a))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The addresses actually bound: (DoT, DoH).
    pub fn addrs(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let a = |v: &[TcpListener]| v.iter().filter_map(|l| l.local_addr().ok()).collect();
        (a(&self.tls), a(&self.https))
    }
}

/// Serves the certificate of the running config, or the one the listeners started with when
/// the running config has none.
struct FromSnapshot {
    pipeline: Arc<Pipeline>,
    initial: Option<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for FromSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromSnapshot")
    }
}

impl ResolvesServerCert for FromSnapshot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let snap = self.pipeline.snapshot.load();
        match &snap.config.server.tls {
            Some(t) => Some(t.certified.clone()),
            None => self.initial.clone(),
        }
    }
}

/// A TLS acceptor offering `alpn`, with the certificate of the running config.
pub fn acceptor(pipeline: &Arc<Pipeline>, alpn: &[&[u8]]) -> Option<TlsAcceptor> {
    let initial = pipeline
        .snapshot
        .load()
        .config
        .server
        .tls
        .as_ref()
        .map(|t| t.certified.clone());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "TLS: no usable protocol version; encrypted listeners are OFF");
            return None;
        }
    };
    let mut cfg = builder
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FromSnapshot {
            pipeline: pipeline.clone(),
            initial,
        }));
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Some(TlsAcceptor::from(Arc::new(cfg)))
}

/// The TLS handshake on an accepted connection, bounded by `timeout`; `None` when it fails
/// (the client gave up, spoke no TLS, or refused the certificate).
pub async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Option<TlsStream<TcpStream>> {
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}
