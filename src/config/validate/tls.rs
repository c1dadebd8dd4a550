//! Checks of the encrypted listeners in `[server]`: `tls_listen` (DoT) and `https_listen` (DoH)
//! addresses, and, when either is set, `tls_cert`, `tls_key` (PEM files, read and parsed here:
//! a chain with the leaf first, a key that matches the leaf) and `tls_name` (a DNS name, the
//! target of the DDR answers). Each error names the key's file:line and what was expected.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use toml::Spanned;

use super::super::TlsIdentity;
use super::super::raw::RawServer;
use super::{Ctx, parse_socket_addr};

/// `(tls_listen, https_listen, identity)`; the identity is `Some` when a listener is set and
/// its certificate, key and name are all valid.
pub(super) fn encrypted(
    cx: &mut Ctx<'_>,
    raw: &RawServer,
    base: &Path,
) -> (Vec<SocketAddr>, Vec<SocketAddr>, Option<TlsIdentity>) {
    let tls_listen = addresses(cx, "server.tls_listen", &raw.tls_listen, "0.0.0.0:853");
    let https_listen = addresses(cx, "server.https_listen", &raw.https_listen, "0.0.0.0:443");
    if raw.tls_listen.is_empty() && raw.https_listen.is_empty() {
        return (tls_listen, https_listen, None);
    }
    // The listener key the errors point at when a key is missing altogether.
    let anchor = raw
        .tls_listen
        .first()
        .or(raw.https_listen.first())
        .map(Spanned::span);
    let name = match &raw.tls_name {
        None => {
            cx.at(
                anchor.clone(),
                "server.tls_name: missing; an encrypted listener (tls_listen / https_listen) needs \
                 the DNS name its certificate is for, such as \"dns.example.org\"",
            );
            None
        }
        Some(n) => match dns_name(n.get_ref()) {
            Some(name) => Some(name),
            None => {
                cx.spanned(
                    n,
                    format!(
                        "server.tls_name: invalid DNS name {:?}; expected a host name such as \"dns.example.org\"",
                        n.get_ref()
                    ),
                );
                None
            }
        },
    };
    let cert = file(
        cx,
        "server.tls_cert",
        raw.tls_cert.as_ref(),
        base,
        anchor.clone(),
    );
    let key = file(cx, "server.tls_key", raw.tls_key.as_ref(), base, anchor);
    let (Some(name), Some((cert, cert_at)), Some((key, key_at))) = (name, cert, key) else {
        return (tls_listen, https_listen, None);
    };
    let chain = match read_chain(&cert) {
        Ok(chain) => chain,
        Err(e) => {
            cx.at(
                Some(cert_at),
                format!("server.tls_cert: {}: {e}", cert.display()),
            );
            return (tls_listen, https_listen, None);
        }
    };
    let private = match PrivateKeyDer::from_pem_file(&key) {
        Ok(k) => k,
        Err(e) => {
            cx.at(
                Some(key_at),
                format!(
                    "server.tls_key: {}: {}; expected a PEM private key (PKCS#8, PKCS#1 or SEC1)",
                    key.display(),
                    pem_error(&e)
                ),
            );
            return (tls_listen, https_listen, None);
        }
    };
    let certified = match certified_key(chain, private) {
        Ok(c) => c,
        Err(e) => {
            cx.at(
                Some(key_at),
                format!("server.tls_key: {}: {e}", key.display()),
            );
            return (tls_listen, https_listen, None);
        }
    };
    let identity = TlsIdentity {
        name,
        cert,
        key,
        certified: Arc::new(certified),
    };
    (tls_listen, https_listen, Some(identity))
}

/// A list of `IP:PORT` listen addresses.
fn addresses(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: &[Spanned<String>],
    example: &str,
) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        match parse_socket_addr(l.get_ref()) {
            Some(a) if out.contains(&a) => {
                cx.spanned(l, format!("{key}[{i}]: {a} is listed twice"))
            }
            Some(a) => out.push(a),
            None => cx.spanned(
                l,
                format!(
                    "{key}[{i}]: invalid address {:?}; expected IP:PORT such as \"{example}\"",
                    l.get_ref()
                ),
            ),
        }
    }
    out
}

/// A required file key, relative to the config's folder: its path and the span to report at.
fn file(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: Option<&Spanned<String>>,
    base: &Path,
    anchor: Option<std::ops::Range<usize>>,
) -> Option<(PathBuf, std::ops::Range<usize>)> {
    match raw {
        None => {
            cx.at(
                anchor,
                format!(
                    "{key}: missing; an encrypted listener (tls_listen / https_listen) needs a PEM file"
                ),
            );
            None
        }
        Some(p) if p.get_ref().trim().is_empty() => {
            cx.spanned(p, format!("{key}: empty; expected the path of a PEM file"));
            None
        }
        Some(p) => Some((base.join(p.get_ref()), p.span())),
    }
}

/// Every certificate of a PEM file, leaf first; an error when there is none or one is bad.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| pem_error(&e))?;
    let mut chain = Vec::new();
    for c in iter {
        chain.push(c.map_err(|e| pem_error(&e))?);
    }
    if chain.is_empty() {
        return Err(
            "no certificate in the file; expected a PEM certificate chain \
             (-----BEGIN CERTIFICATE-----), the server's certificate first"
                .to_owned(),
        );
    }
    Ok(chain)
}

/// The chain and key as rustls serves them; an error when the key does not match the leaf.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("unusable private key ({e})"))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(
            "the key does not match the certificate in server.tls_cert (the first certificate of \
             the chain must be the one this key signs for)"
                .to_owned(),
        ),
        Err(e) => Err(format!(
            "cannot check the key against server.tls_cert's certificate ({e})"
        )),
    }
}

/// A readable message for a PEM reading error.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => format!("cannot read the file ({io})"),
        E::NoItemsFound => "no PEM item of the expected kind in the file".to_owned(),
        other => format!("invalid PEM ({other:?})"),
    }
}

/// A host name (lower case, no trailing dot): labels of letters, digits and hyphens.
fn dns_name(s: &str) -> Option<String> {
    let n = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(n)
}
