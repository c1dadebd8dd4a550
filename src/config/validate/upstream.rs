//! Checks of `[upstream]`: the mode, the servers (and `"system"`: the nameservers of
//! /etc/resolv.conf, minus our own listeners), timeouts (bounded), the CA file, root hints, recursion ports
//! and the strategy. The CA-file and root-hints readers live here too.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::super::raw::RawUpstream;
use super::super::{self as d, Overrides, Strategy, UpstreamConfig, UpstreamMode, UpstreamServer};
use super::bounds::{self, duration, size};
use super::{Ctx, parse_socket_addr};

/// `[upstream]`; `--upstream` replaces `upstream.servers`. `listen` (the server's addresses)
/// keeps `"system"` from pointing pixelguard at itself.
pub(super) fn upstream(
    cx: &mut Ctx<'_>,
    raw: &RawUpstream,
    base: &Path,
    overrides: &Overrides,
    listen: &[SocketAddr],
) -> UpstreamConfig {
    let mode = match &raw.mode {
        None => UpstreamMode::Forward,
        Some(m) => match m.get_ref().as_str() {
            "forward" => UpstreamMode::Forward,
            "recursive" => UpstreamMode::Recursive,
            other => {
                cx.spanned(
                    m,
                    format!("upstream.mode: unknown mode {other:?}; expected forward (to upstream.servers) or recursive (from the root servers)"),
                );
                UpstreamMode::Forward
            }
        },
    };
    let mut servers = Vec::new();
    if mode == UpstreamMode::Recursive {
        for s in &raw.servers {
            cx.spanned(
                s,
                "upstream.servers: not used when mode = \"recursive\"; remove it, or set mode = \"forward\"",
            );
        }
        if !overrides.upstream.is_empty() {
            cx.at(
                None,
                "--upstream: not used when upstream.mode = \"recursive\" in the config",
            );
        }
    } else if overrides.upstream.is_empty() {
        for s in &raw.servers {
            add_upstream(cx, &mut servers, listen, s.get_ref(), Some(s.span()));
        }
        if raw.servers.is_empty() {
            add_upstream(cx, &mut servers, listen, "system", None);
        }
    } else {
        for s in &overrides.upstream {
            add_upstream(cx, &mut servers, listen, s, None);
        }
    }
    let timeout = duration(
        cx,
        "upstream.timeout",
        raw.timeout.as_ref(),
        d::DEFAULT_UPSTREAM_TIMEOUT,
        bounds::UPSTREAM_TIMEOUT,
    );
    let deadline = duration(
        cx,
        "upstream.deadline",
        raw.deadline.as_ref(),
        d::DEFAULT_UPSTREAM_DEADLINE,
        bounds::UPSTREAM_DEADLINE,
    );
    if timeout.is_zero() || deadline.is_zero() {
        cx.at(None, "upstream: timeout and deadline must be above zero");
    }
    let (ca_file, ca_certs) = match &raw.ca_file {
        None => (None, Vec::new()),
        Some(f) => {
            let path = base.join(f.get_ref());
            match load_ca_file(&path) {
                Ok(certs) => (Some(path), certs),
                Err(e) => {
                    cx.spanned(f, format!("upstream.ca_file: {}: {e}", path.display()));
                    (Some(path), Vec::new())
                }
            }
        }
    };
    let (root_hints, roots) = match &raw.root_hints {
        None => (
            None,
            super::super::BUILTIN_ROOT_HINTS
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
        ),
        Some(f) => {
            let path = base.join(f.get_ref());
            match load_root_hints(&path) {
                Ok(r) => (Some(path), r),
                Err(e) => {
                    cx.spanned(f, format!("upstream.root_hints: {}: {e}", path.display()));
                    (Some(path), Vec::new())
                }
            }
        }
    };
    let mut recursion_ports = Vec::new();
    for p in &raw.recursion_ports {
        match parse_socket_addr(p.get_ref()) {
            Some(a) => recursion_ports.push(a),
            None => cx.spanned(
                p,
                format!(
                    "upstream.recursion_ports: invalid entry {:?}; expected \"IP:PORT\"",
                    p.get_ref()
                ),
            ),
        }
    }
    let (dnssec, trust_anchor) = dnssec(cx, raw, base);
    UpstreamConfig {
        dnssec,
        trust_anchor,
        servers,
        timeout,
        deadline: deadline.max(timeout),
        mode,
        ca_file,
        ca_certs,
        root_hints,
        roots,
        qname_minimization: raw.qname_minimization,
        recursion_ports,
        max_inflight: size(
            cx,
            "upstream.max_inflight",
            raw.max_inflight.as_ref(),
            d::DEFAULT_MAX_INFLIGHT,
            bounds::MAX_INFLIGHT,
        )
        .max(1),
        strategy: match raw.strategy.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("ordered") => Strategy::Ordered,
            Some("fastest") => Strategy::Fastest,
            Some(other) => {
                if let Some(s) = &raw.strategy {
                    cx.spanned(s, format!("upstream.strategy: unknown strategy {other:?}; expected ordered or fastest"));
                }
                Strategy::Ordered
            }
        },
    }
}

/// One `upstream.servers` entry (or `--upstream`) into `servers`.
fn add_upstream(
    cx: &mut Ctx<'_>,
    servers: &mut Vec<UpstreamServer>,
    listen: &[SocketAddr],
    s: &str,
    span: Option<Range<usize>>,
) {
    if s == "system" {
        // No nameserver found is not an error: pixelguard still starts (blocking works, cache
        // misses get SERVFAIL) and the start-up summary says so.
        let found = resolv_conf_nameservers(Path::new("/etc/resolv.conf"), listen);
        servers.extend(found.into_iter().map(UpstreamServer::plain));
    } else {
        match UpstreamServer::parse(s) {
            Ok(u) => servers.push(u),
            Err(e) => cx.at(
                span,
                format!("upstream.servers: invalid upstream {s:?}: {e}; expected \"IP:PORT\", \"IP\", \"tls://IP:PORT#NAME\", \"https://IP:PORT/dns-query#NAME\" or \"system\""),
            ),
        }
    }
}

/// Why `upstream.ca_file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// The file cannot be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// A PEM block is broken.
    #[error("not a PEM certificate file: {0}")]
    Pem(#[source] rustls::pki_types::pem::Error),
    /// A certificate that cannot be a trust anchor (1-based position in the file).
    #[error("certificate {index} is not usable as a CA: {source}")]
    NotACa {
        /// 1-based position in the file.
        index: usize,
        /// What rustls said.
        source: rustls::Error,
    },
    /// No certificate at all.
    #[error("no \"BEGIN CERTIFICATE\" block found; expected PEM CA certificates")]
    Empty,
}

/// The certificates of a PEM file, each checked to be a usable trust anchor.
pub fn load_ca_file(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, CaFileError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bytes = std::fs::read(path).map_err(CaFileError::Read)?;
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&bytes) {
        let c = c.map_err(CaFileError::Pem)?;
        let mut store = rustls::RootCertStore::empty();
        store.add(c.clone()).map_err(|source| CaFileError::NotACa {
            index: certs.len() + 1,
            source,
        })?;
        certs.push(c);
    }
    if certs.is_empty() {
        return Err(CaFileError::Empty);
    }
    Ok(certs)
}

/// Why `upstream.root_hints` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RootHintsError {
    /// The file cannot be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// Not parseable as a zone file.
    #[error("not a zone-file style hints file: {0}")]
    Parse(#[source] hickory_proto::serialize::txt::ParseError),
    /// Parsed, but without an address.
    #[error("no A or AAAA record: no root server address")]
    NoAddress,
}

/// The root server addresses of a hints file in zone-file form (the `named.root` format: NS
/// records for `.` and A / AAAA records for their names); every A / AAAA record counts.
pub fn load_root_hints(path: &Path) -> Result<Vec<IpAddr>, RootHintsError> {
    use hickory_proto::rr::{Name, RData};
    use hickory_proto::serialize::txt::Parser;
    let text = std::fs::read_to_string(path).map_err(RootHintsError::Read)?;
    let (_, sets) = Parser::new(text, Some(path.to_path_buf()), Some(Name::root()))
        .parse()
        .map_err(RootHintsError::Parse)?;
    let mut out = Vec::new();
    for set in sets.values() {
        for r in set.records_without_rrsigs() {
            let ip = match &r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    if out.is_empty() {
        return Err(RootHintsError::NoAddress);
    }
    Ok(out)
}

/// The nameservers of a resolv.conf, skipping any that would point back at one of our own
/// listeners (a loop), and keeping their order.
pub fn resolv_conf_nameservers(path: &Path, own: &[SocketAddr]) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = it.next() else { continue };
        // Link-local IPv6 addresses may carry a zone index ("fe80::1%eth0"); drop it.
        let addr = addr.split('%').next().unwrap_or(addr);
        let Ok(ip) = addr.parse::<IpAddr>() else {
            continue;
        };
        let sa = SocketAddr::new(ip, 53);
        let loops = own.iter().any(|l| {
            l.port() == 53 && (l.ip() == ip || (l.ip().is_unspecified() && ip.is_loopback()))
        });
        if !loops && !out.contains(&sa) {
            out.push(sa);
        }
    }
    out
}

/// `upstream.dnssec` ("validate", the default, or "off") and `upstream.trust_anchor` (a file of
/// DNSKEY records, read here so a bad one is a file:line error).
fn dnssec(cx: &mut Ctx<'_>, raw: &RawUpstream, base: &Path) -> (bool, Option<PathBuf>) {
    let on = match raw.dnssec.as_ref().map(|d| (d, d.get_ref().as_str())) {
        None | Some((_, "validate")) => true,
        Some((_, "off")) => false,
        Some((d, other)) => {
            cx.spanned(
                d,
                format!(
                    "upstream.dnssec: unknown value {other:?}; expected \"validate\" or \"off\""
                ),
            );
            true
        }
    };
    let anchor = raw.trust_anchor.as_ref().map(|f| {
        let path = base.join(f.get_ref());
        match hickory_proto::dnssec::TrustAnchors::from_file(&path) {
            Ok(a) if a.is_empty() => cx.spanned(
                f,
                format!(
                    "upstream.trust_anchor: {}: no DNSKEY record; expected DNSKEY records in zone-file form",
                    path.display()
                ),
            ),
            Ok(_) => {}
            Err(e) => cx.spanned(
                f,
                format!(
                    "upstream.trust_anchor: {}: {e}; expected DNSKEY records in zone-file form",
                    path.display()
                ),
            ),
        }
        path
    });
    (on, anchor)
}
