//! Answers, as data and as bytes: the [`Answer`] a stage decides on (a blocked name, a local
//! canary answer, pixelguard's own DDR endpoints (SVCB), a locally served zone's answer, RFC 8482 for ANY, an upstream answer fresh or cached or stale, a bare code), and
//! [`encode`], the one encoder that turns it into the bytes a client gets, on every path (UDP
//! fast and full, TCP). The same answer therefore leaves as the same bytes whichever path served
//! it, names compressed against the question.
//!
//! Building an answer is separate from sending it: nothing here touches a socket. Rules kept
//! here: RA=1; AD only when the upstream set it and the client set DO or AD; DNSSEC records
//! only for DO clients (see [`crate::wire::keep_for_client`]); the response OPT carries the
//! client's payload clamped to 512..=1232, its DO bit, the extended rcode bits, upstream EDE
//! (passed through) and our EDE (RFC 8914: 15 Blocked, 17 Filtered, 3 Stale), and the request's
//! EDNS Client Subnet echoed with scope 0 (RFC 7871); never an A record for a non-A query.

mod ddr;
mod encode;

use std::sync::Arc;

use hickory_proto::op::ResponseCode;

pub use ddr::{
    DDR_TTL, DOH_PATH_TEMPLATE, endpoints as ddr_endpoints, is_own_name as is_own_ddr_name,
};
pub use encode::{encode, formerr_for};

use crate::cache::CachedAnswer;
use crate::config::BlockResponse;
use crate::policy::RuleAction;
pub use crate::wire::{EDE_CODE, MAX_UDP_PAYLOAD};

/// EDE info code "Blocked".
pub const EDE_BLOCKED: u16 = 15;
/// EDE info code "Filtered" (used for local canary answers).
pub const EDE_FILTERED: u16 = 17;
/// EDE info code "Stale Answer".
pub const EDE_STALE: u16 = 3;
/// TTL of local canary answers.
pub const CANARY_TTL: u32 = 300;
/// TTL of the RFC 8482 answer to ANY.
pub const ANY_TTL: u32 = 3600;
/// TTL cap of a stale answer (RFC 8767 recommends 30 s).
pub const STALE_TTL: u32 = 30;
/// TTL of every record of a locally served zone (RFC 6303 section 3: the SOA's TTL and
/// MINIMUM, 10800).
pub const LOCAL_TTL: u32 = 10_800;
/// EDE text of canary answers.
pub const CANARY_TEXT: &str = "pixelguard: bypass canary";
/// EDE text of stale answers.
pub const STALE_TEXT: &str = "pixelguard: upstreams unreachable; serving a stale answer";

/// What the client gets, before encoding. Borrows the snapshot (the zone's block response).
#[derive(Debug, Clone)]
pub enum Answer<'a> {
    /// Nothing is sent (rate limit with `action = "drop"`, or a response sent to us).
    Drop,
    /// A bare response code (REFUSED, SERVFAIL, NOTIMP, FORMERR, BADVERS), question echoed.
    Code(ResponseCode),
    /// A blocked name: the zone's block response, or what the rule asks for.
    Blocked(Blocked<'a>),
    /// A bypass canary: NXDOMAIN (or NODATA for DDR) with a SOA at the name, EDE 17.
    Canary {
        /// NXDOMAIN, else NODATA.
        nxdomain: bool,
    },
    /// DDR (RFC 9462): SVCB records (their rdata) announcing pixelguard's encrypted listeners,
    /// owned by the question's name.
    Svcb(Arc<[Vec<u8>]>),
    /// ANY (RFC 8482): one HINFO "RFC8482" record.
    Any,
    /// A locally served zone (RFC 6303 reverse zones, special-use names): AA=1, its records or
    /// a negative answer with the zone's SOA.
    Local(Local),
    /// An upstream answer, fresh or from the cache, aged by `age` seconds, TTLs capped.
    Upstream {
        /// The answer (fresh answers are wrapped the same way cached ones are stored).
        entry: Arc<CachedAnswer>,
        /// Seconds since it was received.
        age: u32,
        /// The cache's TTL cap.
        max_ttl: u32,
    },
    /// An expired answer served because every upstream failed (RFC 8767): TTLs at most
    /// [`STALE_TTL`], the upstream's EDE replaced by EDE 3.
    Stale(Arc<CachedAnswer>),
    /// `explain` without `--resolve` on a cache miss: what the upstream would say is unknown.
    /// Never produced for a client.
    Unresolved,
}

/// The blocked answer's parts.
#[derive(Debug, Clone)]
pub struct Blocked<'a> {
    /// The zone's block response.
    pub response: &'a BlockResponse,
    /// What the rule asks for (RPZ rules may force NXDOMAIN or NODATA).
    pub action: RuleAction,
    /// TTL of the synthesized records.
    pub ttl: u32,
    /// Labels of the SOA owner: the matched rule (an ancestor of the name, so that RFC 2308
    /// negative caching covers the whole blocked domain), `None` = the query name itself.
    pub soa_labels: Option<usize>,
    /// EDE 15 extra text, naming list and vendor.
    pub ede: String,
}

/// The answer of a locally served zone. The zone is an empty zone as RFC 6303 section 3 writes
/// it (`@ SOA @ nobody.invalid. 1 3600 1200 604800 10800`, `@ NS @`), plus loopback addresses
/// for `localhost.` (RFC 6761); its apex is a suffix of the question name, so every name in it
/// is a compression pointer into the question (the client's case, no copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// NOERROR (the apex, or a name with loopback addresses) or NXDOMAIN.
    pub rcode: ResponseCode,
    /// Labels of the zone's apex: the owner of the SOA and NS, the SOA's MNAME, the NS target.
    pub apex_labels: usize,
    /// The records of the answer section; none: the SOA goes to the authority section
    /// (NXDOMAIN, or NODATA for a type the name does not have).
    pub records: LocalRecords,
}

/// Which records a local answer carries (in this order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalRecords {
    /// The apex SOA.
    pub soa: bool,
    /// The apex NS (naming the apex itself).
    pub ns: bool,
    /// A 127.0.0.1 at the question name.
    pub a: bool,
    /// AAAA ::1 at the question name.
    pub aaaa: bool,
}

impl LocalRecords {
    /// How many records.
    pub fn count(self) -> u16 {
        [self.soa, self.ns, self.a, self.aaaa]
            .into_iter()
            .map(u16::from)
            .sum()
    }
}

/// What a blocked answer comes down to, whichever the zone's response and the rule's action.
pub(crate) enum BlockedShape<'a> {
    /// NXDOMAIN (3) or NODATA (0) with a SOA.
    Negative(u8),
    /// REFUSED.
    Refused,
    /// These addresses (matching the query type); NODATA with a SOA when none matches.
    Addresses(AddrSet<'a>),
}

/// Addresses of a blocked answer.
pub(crate) enum AddrSet<'a> {
    /// 0.0.0.0 / ::.
    Null,
    /// The zone's own addresses.
    Listed(&'a [std::net::IpAddr]),
}

impl Blocked<'_> {
    pub(crate) fn shape(&self) -> BlockedShape<'_> {
        match (self.action, self.response) {
            (RuleAction::Nxdomain, _) | (RuleAction::Block, BlockResponse::Nxdomain) => {
                BlockedShape::Negative(3)
            }
            (RuleAction::Nodata, _) | (RuleAction::Block, BlockResponse::Nodata) => {
                BlockedShape::Negative(0)
            }
            (RuleAction::Block, BlockResponse::Refused) => BlockedShape::Refused,
            (RuleAction::Block, BlockResponse::Null) => BlockedShape::Addresses(AddrSet::Null),
            (RuleAction::Block, BlockResponse::Addresses(a)) => {
                BlockedShape::Addresses(AddrSet::Listed(a))
            }
        }
    }
}

impl Answer<'_> {
    /// The response code the client gets (for recording), before truncation.
    pub fn rcode(&self) -> ResponseCode {
        match self {
            Self::Drop | Self::Unresolved => ResponseCode::NoError,
            Self::Code(c) => *c,
            Self::Blocked(b) => match b.shape() {
                BlockedShape::Negative(3) => ResponseCode::NXDomain,
                BlockedShape::Refused => ResponseCode::Refused,
                _ => ResponseCode::NoError,
            },
            Self::Canary { nxdomain: true } => ResponseCode::NXDomain,
            Self::Canary { nxdomain: false } | Self::Any | Self::Svcb(_) => ResponseCode::NoError,
            Self::Local(l) => l.rcode,
            Self::Upstream { entry, .. } | Self::Stale(entry) => entry.wire.rcode,
        }
    }
}

/// The presentation name of a response code (NXDOMAIN, not "Non-Existent Domain").
pub fn rcode_name(r: ResponseCode) -> String {
    match r {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// Reads the EDE options of a decoded message (tests and explain).
pub fn read_ede(m: &hickory_proto::op::Message) -> Vec<(u16, String)> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let Some(e) = m.edns.as_ref() else {
        return Vec::new();
    };
    e.options()
        .as_ref()
        .iter()
        .filter(|(c, _)| *c == EdnsCode::from(EDE_CODE))
        .filter_map(|(_, o)| match o {
            EdnsOption::Unknown(_, d) if d.len() >= 2 => Some((
                u16::from_be_bytes([d[0], d[1]]),
                String::from_utf8_lossy(&d[2..]).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
