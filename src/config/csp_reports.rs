//! The `[csp_reports]` section: the public listener that takes Content-Security-Policy
//! violation reports from visitors' browsers ([`CspReportsConfig`]), its raw TOML shape
//! ([`RawCspReports`]) and its documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::raw::RawSize;

/// Default largest report body (64 KiB).
pub const DEFAULT_CSP_MAX_BODY: usize = 64 * 1024;
/// Default reports per second per source address.
pub const DEFAULT_CSP_RATE: f32 = 10.0;
/// Default burst of reports per source address.
pub const DEFAULT_CSP_BURST: f32 = 50.0;
/// Most entries in `sites`.
pub const MAX_CSP_SITES: usize = 100;

/// `[csp_reports]`.
#[derive(Debug, Clone)]
pub struct CspReportsConfig {
    /// The listen address (it faces the public: not the admin server's).
    pub listen: SocketAddr,
    /// Document hosts counted under their own `site` label; any other host is `other`.
    pub sites: Vec<String>,
    /// Largest accepted body; a longer one is answered 413.
    pub max_body: usize,
    /// Reports per second per source address; past the burst, 429.
    pub rate: f32,
    /// Burst per source address.
    pub burst: f32,
    /// Certificate chain and private key (PEM) for HTTPS; `None` = plain HTTP (behind the site's
    /// reverse proxy).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// `[csp_reports]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCspReports {
    /// `"IP:PORT"`.
    pub listen: Spanned<String>,
    /// Host names.
    #[serde(default)]
    pub sites: Vec<Spanned<String>>,
    /// A size.
    #[serde(default)]
    pub max_body: Option<Spanned<RawSize>>,
    /// Reports per second per source.
    #[serde(default)]
    pub rate: Option<Spanned<f64>>,
    /// Burst per source.
    #[serde(default)]
    pub burst: Option<Spanned<f64>>,
    /// PEM certificate chain.
    #[serde(default)]
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key.
    #[serde(default)]
    pub tls_key: Option<Spanned<String>>,
}
