//! The typed `[zones.NAME]` sections: a zone's networks, lists, [`Mode`], [`BlockResponse`],
//! catalogue strictness, vendor-level block and allow, watched lists, query-log overrides and
//! per-client [`RateLimit`].

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::{ClientMode, DEFAULT_RATE_BURST, DEFAULT_RATE_QPS, RecordMode};

/// The `watch` entry naming the built-in catalogue's server-to-server endpoints.
pub const WATCH_SERVER_SIDE: &str = "catalogue:server_side";

/// What a zone does with a policy hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer with the block response; the name never reaches an upstream.
    Enforce,
    /// Resolve normally; record "would block".
    Log,
    /// No policy at all.
    Off,
}

impl Mode {
    /// The config keyword (also the `mode` metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Log => "log",
            Self::Off => "off",
        }
    }
}

/// The answer a blocked client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockResponse {
    /// NXDOMAIN with a synthetic SOA.
    Nxdomain,
    /// REFUSED.
    Refused,
    /// NOERROR, no answer, synthetic SOA.
    Nodata,
    /// 0.0.0.0 / :: for A / AAAA, NODATA for other types.
    Null,
    /// These addresses for A / AAAA (by family), NODATA for other types.
    Addresses(Vec<IpAddr>),
}

impl BlockResponse {
    /// A short description for start-up lines and explain.
    pub fn describe(&self) -> String {
        match self {
            Self::Nxdomain => "nxdomain".into(),
            Self::Refused => "refused".into(),
            Self::Nodata => "nodata".into(),
            Self::Null => "null".into(),
            Self::Addresses(a) => {
                let v: Vec<String> = a.iter().map(|i| i.to_string()).collect();
                format!("[{}]", v.join(", "))
            }
        }
    }
}

/// How much of the catalogue a zone blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogueMode {
    /// `block` hosts only.
    Block,
    /// `block` and `caution` hosts.
    Strict,
}

/// `[zones.NAME]`.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's name (a metric label).
    pub name: String,
    /// Its client networks.
    pub networks: Vec<IpNet>,
    /// Block lists, by name.
    pub block: Vec<String>,
    /// Lists on trial (`{ list = "NAME", mode = "log" }` in `block`): would-block only.
    pub trial: Vec<String>,
    /// Allow lists, by name.
    pub allow: Vec<String>,
    /// Catalogue vendors blocked (`block_vendors`).
    pub block_vendors: Vec<String>,
    /// Catalogue vendors never blocked (`allow_vendors`).
    pub allow_vendors: Vec<String>,
    /// Watched lists (`watch`): a list name or [`WATCH_SERVER_SIDE`].
    pub watch: Vec<String>,
    /// enforce / log / off.
    pub mode: Mode,
    /// The block response.
    pub response: BlockResponse,
    /// TTL of block responses.
    pub block_ttl: Duration,
    /// Catalogue strictness.
    pub catalogue: CatalogueMode,
    /// Answer bypass canaries locally.
    pub canaries: bool,
    /// Check answer targets (CNAME cloaking).
    pub uncloak: bool,
    /// `query_log`: overrides `[query_log] record` for this zone.
    pub query_log: Option<RecordMode>,
    /// `query_log_client`: overrides `[query_log] client` for this zone.
    pub query_log_client: Option<ClientMode>,
    /// Per-client rate limit.
    pub rate_limit: RateLimit,
}

/// A zone's per-client rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained queries per second per client; 0 = no limit.
    pub qps: f32,
    /// Queries a client may send at once.
    pub burst: f32,
    /// Drop over-limit queries instead of answering REFUSED.
    pub drop: bool,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            qps: DEFAULT_RATE_QPS,
            burst: DEFAULT_RATE_BURST,
            drop: false,
        }
    }
}
