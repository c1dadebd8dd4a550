//! The rustls client configuration of DoT / DoH upstreams: rustls with ring (hickory-net's
//! `tls-ring`), certificates verified against the built-in Mozilla roots (webpki-roots, through
//! hickory-net's `webpki-roots` feature) or, when `[upstream] ca_file` is set, against that
//! file's CA certificates only.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why no TLS client configuration could be built (the upstream then fails every try).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rustls could not be set up with the built-in roots or the protocol versions.
    #[error("TLS setup: {0}")]
    Setup(String),
    /// A certificate of `ca_file` is not a usable trust anchor.
    #[error("ca_file certificate {index}: {source}")]
    CaCertificate {
        /// 1-based position in the file.
        index: usize,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}

/// A client config trusting `ca` (or the built-in roots when `ca` is empty).
pub(crate) fn client_config(ca: &[CertificateDer<'static>]) -> Result<ClientConfig, TlsSetupError> {
    if ca.is_empty() {
        return hickory_net::tls::client_config().map_err(|e| TlsSetupError::Setup(e.to_string()));
    }
    let mut roots = RootCertStore::empty();
    for (i, c) in ca.iter().enumerate() {
        roots
            .add(c.clone())
            .map_err(|source| TlsSetupError::CaCertificate {
                index: i + 1,
                source,
            })?;
    }
    Ok(
        ClientConfig::builder_with_provider(Arc::new(hickory_net::tls::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
