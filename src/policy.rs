//! Name policy: given a zone and a query name (or an answer target), which rule decides, and what
//! it asks for. Pure and synchronous: no I/O, no allocation on a miss; runs on every query.
//!
//! Order inside a zone: the zone's allow lists first (any hit allows), then its block lists, where
//! an allow rule inside a block list (adblock `@@`, RPZ passthru) also allows; otherwise the most
//! specific matching block rule over all the zone's block lists wins (ties: the first list in the
//! zone's order). Catalogue `caution` hosts count only in zones with `catalogue = "strict"`.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BlockResponse, CatalogueMode, Mode};
use crate::lists::catalogue::HostStatus;
use crate::lists::{Action, CompiledList, payload_action, payload_attr};
use crate::matcher::{Hit, Matcher, QueryName};
use crate::outcome::Verdict;

/// A zone's compiled policy.
#[derive(Debug, Clone)]
pub struct ZonePolicy {
    /// Zone name (metric label).
    pub name: Arc<str>,
    /// Indices of allow lists.
    pub allow: Vec<u16>,
    /// Indices of block lists.
    pub block: Vec<u16>,
    /// enforce / log / off.
    pub mode: Mode,
    /// The block response.
    pub response: BlockResponse,
    /// TTL of block responses.
    pub block_ttl: Duration,
    /// Catalogue strictness.
    pub catalogue: CatalogueMode,
    /// Answer canaries locally.
    pub canaries: bool,
    /// Check answer targets.
    pub uncloak: bool,
    /// Per-client rate limit.
    pub rate_limit: crate::config::RateLimit,
}

impl ZonePolicy {
    /// TTL of block responses, in seconds.
    pub fn block_ttl_secs(&self) -> u32 {
        u32::try_from(self.block_ttl.as_secs()).unwrap_or(u32::MAX)
    }
}

/// What a rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// The zone's configured block response.
    Block,
    /// NXDOMAIN whatever the zone says (RPZ `CNAME .`).
    Nxdomain,
    /// NODATA whatever the zone says (RPZ `CNAME *.`).
    Nodata,
}

/// A policy decision for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An allow rule matched (the verdict says which); never blocked.
    Allow(Verdict),
    /// A block rule matched.
    Block(Verdict, RuleAction),
}

#[derive(Clone, Copy)]
struct Candidate {
    list: u16,
    hit: Hit,
    action: Action,
}

fn applicable(list: &CompiledList, zone: &ZonePolicy, hit: Hit, cloak: bool) -> Option<Action> {
    let action = payload_action(hit.payload, hit.exact)?;
    if zone.catalogue == CatalogueMode::Block {
        let attrs = &list.attrs;
        if let Some(a) = payload_attr(hit.payload).and_then(|i| attrs.get(i))
            && a.status == HostStatus::Caution
            && !cloak
        {
            return None;
        }
    }
    Some(action)
}

fn first_hit(
    list: &CompiledList,
    m: &Matcher,
    zone: &ZonePolicy,
    q: &QueryName,
    cloak: bool,
    idx: u16,
) -> Option<Candidate> {
    m.find(q, |hit| match applicable(list, zone, hit, cloak) {
        Some(action) => ControlFlow::Break(Candidate {
            list: idx,
            hit,
            action,
        }),
        None => ControlFlow::Continue(()),
    })
}

fn verdict(lists: &[Arc<CompiledList>], q: &QueryName, c: Candidate, allowed: bool) -> Verdict {
    let list = &lists[usize::from(c.list)];
    let attr = payload_attr(c.hit.payload).and_then(|i| list.attrs.get(i));
    let name = q.as_str();
    Verdict {
        list: c.list,
        list_name: list.name.clone(),
        rule: name.get(c.hit.start..).unwrap_or(name).to_owned(),
        vendor: attr.map(|a| a.vendor.clone()),
        category: attr.map(|a| a.category),
        cloaked_via: None,
        allowed,
    }
}

/// Decides a query name for a zone. `None` = no rule matched.
pub fn decide(lists: &[Arc<CompiledList>], zone: &ZonePolicy, q: &QueryName) -> Option<Decision> {
    decide_inner(lists, zone, q, false)
}

/// Decides an answer target (CNAME / SVCB alias) for a zone: like [`decide`], plus the catalogue's
/// cloak-target section.
pub fn decide_target(
    lists: &[Arc<CompiledList>],
    zone: &ZonePolicy,
    q: &QueryName,
) -> Option<Decision> {
    decide_inner(lists, zone, q, true)
}

fn decide_inner(
    lists: &[Arc<CompiledList>],
    zone: &ZonePolicy,
    q: &QueryName,
    target: bool,
) -> Option<Decision> {
    for &i in &zone.allow {
        let Some(list) = lists.get(usize::from(i)) else {
            continue;
        };
        let hit = first_hit(list, &list.matcher, zone, q, false, i).or_else(|| {
            if target {
                first_hit(list, &list.cloak, zone, q, true, i)
            } else {
                None
            }
        });
        if let Some(c) = hit {
            return Some(Decision::Allow(verdict(lists, q, c, true)));
        }
    }
    let mut best: Option<Candidate> = None;
    for &i in &zone.block {
        let Some(list) = lists.get(usize::from(i)) else {
            continue;
        };
        let mut consider = |c: Candidate| {
            let better = match best {
                None => true,
                Some(b) => {
                    c.hit.start < b.hit.start
                        || (c.hit.start == b.hit.start
                            && c.action == Action::Allow
                            && b.action != Action::Allow)
                }
            };
            if better {
                best = Some(c);
            }
        };
        if let Some(c) = first_hit(list, &list.matcher, zone, q, false, i) {
            consider(c);
        }
        if target && let Some(c) = first_hit(list, &list.cloak, zone, q, true, i) {
            consider(c);
        }
    }
    let c = best?;
    let action = match c.action {
        Action::Allow => return Some(Decision::Allow(verdict(lists, q, c, true))),
        Action::Nxdomain => RuleAction::Nxdomain,
        Action::Nodata => RuleAction::Nodata,
        Action::Block => RuleAction::Block,
    };
    Some(Decision::Block(verdict(lists, q, c, false), action))
}

/// A name answered locally so that clients cannot silently bypass the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canary {
    /// `use-application-dns.net`: NXDOMAIN keeps Firefox's default DoH off.
    FirefoxDoh,
    /// `mask.icloud.com`, `mask-h2.icloud.com`: NXDOMAIN makes iCloud Private Relay fall back.
    PrivateRelay,
    /// `_dns.resolver.arpa`: NODATA, so no Designated Resolver (DDR) upgrade (with encrypted
    /// listeners: pixelguard's own endpoints, `respond::ddr_endpoints`).
    Ddr,
}

impl Canary {
    /// The bypass kind (its label is `kind` of `pixelguard_bypass_attempts_total`).
    pub fn kind(self) -> crate::outcome::Bypass {
        match self {
            Self::FirefoxDoh => crate::outcome::Bypass::Canary,
            Self::PrivateRelay => crate::outcome::Bypass::PrivateRelay,
            Self::Ddr => crate::outcome::Bypass::Ddr,
        }
    }

    /// Recognises a canary name (lower case, no trailing dot). Exact names only.
    pub fn of(name: &str) -> Option<Canary> {
        match name {
            "use-application-dns.net" => Some(Self::FirefoxDoh),
            "mask.icloud.com" | "mask-h2.icloud.com" => Some(Self::PrivateRelay),
            "_dns.resolver.arpa" => Some(Self::Ddr),
            _ => None,
        }
    }
}
