//! The rustls client configuration of DoT / DoH upstreams: rustls with ring (hickory-net's
//! `tls-ring`), certificates verified against the built-in Mozilla roots (webpki-roots, through
//! hickory-net's `webpki-roots` feature) or, when `[upstream] ca_file` is set, against that
//! file's CA certificates only.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// A client config trusting `ca` (or the built-in roots when `ca` is empty).
pub(super) fn client_config(ca: &[CertificateDer<'static>]) -> Result<ClientConfig, String> {
    if ca.is_empty() {
        return hickory_net::tls::client_config().map_err(|e| format!("TLS setup: {e}"));
    }
    let mut roots = RootCertStore::empty();
    for (i, c) in ca.iter().enumerate() {
        roots
            .add(c.clone())
            .map_err(|e| format!("ca_file certificate {}: {e}", i + 1))?;
    }
    Ok(
        ClientConfig::builder_with_provider(Arc::new(hickory_net::tls::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
