//! Name policy: given a zone and a query name (or an answer target), which rule decides, and what
//! it asks for. Pure and synchronous: no I/O, no allocation on a miss; runs on every query.
//!
//! Order inside a zone: the zone's allow lists first (any hit allows), then its block lists, where
//! an allow rule inside a block list (adblock `@@`, RPZ passthru) also allows; otherwise the most
//! specific matching block rule over all the zone's block lists (and the catalogue hosts of its
//! `block_vendors`) wins (ties: the first list in the zone's order). Catalogue `caution` hosts
//! count only in zones with `catalogue = "strict"`.
//!
//! A block rule is then lifted, in this order, by the zone's `allow_vendors` (the rule's vendor),
//! by an exception in force (its vendor or a name above the query name), or by a watched list
//! (watched names are never blocked). With no block rule, a watched list marks the name watched,
//! else a list on trial marks it would-block. So the precedence, strongest first: allow lists >
//! allow_vendors > exceptions > watch > block lists and block_vendors > trial lists. The clock is
//! read only when an exception matches, so an exception ends at its `until` without a reload.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BlockResponse, CatalogueMode, Mode, unix};
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
    /// Indices of lists on trial (would-block only).
    pub trial: Vec<u16>,
    /// Indices of watched lists (resolved, recorded as watched, never blocked).
    pub watch: Vec<u16>,
    /// The catalogue list whose hosts of [`ZonePolicy::block_vendors`] block, when the zone does
    /// not block it whole.
    pub vendor_list: Option<u16>,
    /// Catalogue vendors blocked.
    pub block_vendors: Vec<Arc<str>>,
    /// Catalogue vendors never blocked.
    pub allow_vendors: Vec<Arc<str>>,
    /// The exceptions that apply in this zone (expired ones included: they stop matching by
    /// themselves).
    pub exceptions: Vec<Arc<Exception>>,
}

/// An exception as the policy applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// Its label (ticket, or `exceptions[N]`).
    pub label: Arc<str>,
    /// Its index in the config's `[[exceptions]]`.
    pub index: usize,
    /// Vendor ids it lifts.
    pub vendors: Vec<Arc<str>>,
    /// Names (and subdomains) it lifts.
    pub names: Vec<Box<str>>,
    /// End, in Unix seconds (it applies while the clock is before it).
    pub until: u64,
}

impl Exception {
    /// From its config.
    pub fn new(c: &crate::config::ExceptionConfig) -> Self {
        Self {
            label: Arc::from(c.label()),
            index: c.index,
            vendors: c.vendors.iter().map(|v| Arc::from(v.as_str())).collect(),
            names: c.names.iter().map(|n| Box::from(n.as_str())).collect(),
            until: c.until_unix(),
        }
    }

    /// Whether it covers a block verdict for `name`, ignoring time.
    pub fn covers(&self, name: &str, v: &Verdict) -> bool {
        v.vendor
            .as_ref()
            .is_some_and(|vendor| self.vendors.iter().any(|x| x == vendor))
            || self.names.iter().any(|n| under(name, n))
    }
}

/// `name` equals `parent` or lies below it.
fn under(name: &str, parent: &str) -> bool {
    name == parent
        || (name.len() > parent.len()
            && name.ends_with(parent)
            && name.as_bytes()[name.len() - parent.len() - 1] == b'.')
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
    /// A watched list matched: resolved normally, recorded as watched.
    Watch(Verdict),
    /// Only a list on trial matched: resolved normally, recorded as would-block.
    Trial(Verdict),
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
        exception: None,
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
    match decide_lists(lists, zone, q, target) {
        Some(Decision::Block(v, action)) => {
            if let Some(lifted) = lift(zone, q, &v) {
                return Some(Decision::Allow(lifted));
            }
            if !target && let Some(w) = watched(lists, zone, q) {
                return Some(Decision::Watch(w));
            }
            Some(Decision::Block(v, action))
        }
        Some(d) => Some(d),
        None if target => None,
        None => {
            if let Some(w) = watched(lists, zone, q) {
                return Some(Decision::Watch(w));
            }
            let v = zone
                .trial
                .iter()
                .find_map(|&i| match_list(lists, zone, q, i))?;
            Some(match lift(zone, q, &v) {
                Some(lifted) => Decision::Allow(lifted),
                None => Decision::Trial(v),
            })
        }
    }
}

/// A block verdict lifted by `allow_vendors` or by an exception in force (the verdict, marked
/// allowed, with the exception's label); `None` when it stands.
fn lift(zone: &ZonePolicy, q: &QueryName, v: &Verdict) -> Option<Verdict> {
    if let Some(vendor) = &v.vendor
        && zone.allow_vendors.iter().any(|a| a == vendor)
    {
        let mut l = v.clone();
        l.allowed = true;
        return Some(l);
    }
    if zone.exceptions.is_empty() {
        return None;
    }
    let name = q.as_str();
    let mut now = None;
    for e in &zone.exceptions {
        // The clock is read only when an exception covers the name.
        if e.covers(name, v)
            && *now.get_or_insert_with(|| unix(std::time::SystemTime::now())) < e.until
        {
            let mut l = v.clone();
            l.allowed = true;
            l.exception = Some(e.label.clone());
            return Some(l);
        }
    }
    None
}

/// The first watched list's rule for the name.
fn watched(lists: &[Arc<CompiledList>], zone: &ZonePolicy, q: &QueryName) -> Option<Verdict> {
    zone.watch
        .iter()
        .find_map(|&i| match_list(lists, zone, q, i))
}

/// The rule of list `i` for the name, as a (not allowed) verdict.
fn match_list(
    lists: &[Arc<CompiledList>],
    zone: &ZonePolicy,
    q: &QueryName,
    i: u16,
) -> Option<Verdict> {
    let list = lists.get(usize::from(i))?;
    let c = first_hit(list, &list.matcher, zone, q, false, i)?;
    (c.action != Action::Allow).then(|| verdict(lists, q, c, false))
}

/// The allow and block lists (and `block_vendors`) alone.
fn decide_lists(
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
    if let Some(i) = zone.vendor_list
        && let Some(list) = lists.get(usize::from(i))
    {
        let vendor_hit = |m: &Matcher, cloak: bool| {
            m.find(q, |hit| {
                let named = payload_attr(hit.payload)
                    .and_then(|a| list.attrs.get(a))
                    .is_some_and(|a| zone.block_vendors.contains(&a.vendor));
                match applicable(list, zone, hit, cloak) {
                    Some(action) if named => ControlFlow::Break(Candidate {
                        list: i,
                        hit,
                        action,
                    }),
                    _ => ControlFlow::Continue(()),
                }
            })
        };
        let c = vendor_hit(&list.matcher, false).or_else(|| {
            if target {
                vendor_hit(&list.cloak, true)
            } else {
                None
            }
        });
        if let Some(c) = c
            && best.is_none_or(|b| c.hit.start < b.hit.start)
        {
            best = Some(c);
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
