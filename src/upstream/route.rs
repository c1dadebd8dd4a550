//! Forward rules (`[forward.NAME]`): the routing table that sends the names under a rule's
//! domains to the rule's own server group instead of `[upstream]`.
//!
//! Representation: one hash map from every configured domain (lower case, no trailing dot) to
//! its rule, built once per snapshot, and a bit set of the label counts the domains have. A
//! lookup walks the name itself, then each parent suffix in turn (`a.corp.example`,
//! `corp.example`, `example`), so the first hit is the longest matching domain and label
//! boundaries hold by construction (`xcorp.example` never probes `corp.example`). It hashes
//! only the suffixes whose label count some domain has, so it costs at most one hash probe per
//! label, and typically one or two (AD domains are mostly of one or two depths). With no rule
//! the map is empty and a lookup returns before looking at the name.
//!
//! Each rule is an [`Upstreams`] of its own, built from `[upstream]`'s settings with the rule's
//! servers, timeout, deadline and strategy, always in forward mode (also when `[upstream]`
//! recurses): the same failover, health, coalescing and faithful forwarding. Connections and
//! health carry over from the previous snapshot's rule of the same name.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{ForwardRule, UpstreamConfig, UpstreamMode};

use super::Upstreams;

/// One forward rule with its server group.
pub struct Group {
    /// The rule's name (the `group` metric label).
    pub name: Arc<str>,
    /// Its domains, as configured (normalised).
    pub domains: Vec<String>,
    /// Its servers.
    pub upstreams: Upstreams,
}

/// Where a name goes: the rule, and which of its domains matched.
#[derive(Clone, Copy)]
pub struct Route<'a> {
    /// The rule.
    pub group: &'a Group,
    /// The longest of the rule's domains that the name is, or is under.
    pub domain: &'a str,
}

/// The forward rules of one snapshot.
#[derive(Default)]
pub struct Forwards {
    groups: Vec<Group>,
    /// Domain → index into `groups`.
    table: HashMap<Box<str>, u16, foldhash::fast::RandomState>,
    /// Bit `n` set: some domain has `n` labels (a DNS name has at most 127).
    depths: u128,
}

impl Forwards {
    /// The table of `rules`, their groups built on `base` (`[upstream]`); connections and health
    /// are taken over from `previous`'s rule of the same name.
    pub fn build(
        rules: &[ForwardRule],
        base: &UpstreamConfig,
        previous: Option<&Forwards>,
    ) -> Self {
        let mut groups = Vec::with_capacity(rules.len());
        let mut table = HashMap::default();
        let mut depths = 0u128;
        for r in rules {
            let Ok(index) = u16::try_from(groups.len()) else {
                // Validation bounds the number of rules far below this.
                break;
            };
            let cfg = UpstreamConfig {
                servers: r.servers.clone(),
                timeout: r.timeout,
                deadline: r.deadline,
                strategy: r.strategy,
                mode: UpstreamMode::Forward,
                ..base.clone()
            };
            let old = previous
                .and_then(|p| p.groups.iter().find(|g| *g.name == *r.name))
                .map(|g| &g.upstreams);
            for d in &r.domains {
                depths |= 1u128 << labels(d).min(127);
                table.insert(Box::from(d.as_str()), index);
            }
            groups.push(Group {
                name: Arc::from(r.name.as_str()),
                domains: r.domains.clone(),
                upstreams: Upstreams::from_config(&cfg, old),
            });
        }
        Self {
            groups,
            table,
            depths,
        }
    }

    /// The rule for `name` (lower case, presentation form, trailing dot optional, as
    /// `wire::Query::name` holds it): the one with the longest domain that `name` is or is
    /// under; `None` when no rule covers it (it goes to `[upstream]`).
    #[inline]
    pub fn route(&self, name: &str) -> Option<Route<'_>> {
        if self.table.is_empty() {
            return None;
        }
        let mut rest = name.strip_suffix('.').unwrap_or(name);
        let mut n = labels(rest);
        // Names deeper than 127 labels do not exist; nothing is probed past the bit set's end.
        while n > 0 {
            if n < 128
                && self.depths & (1u128 << n) != 0
                && let Some((k, &i)) = self.table.get_key_value(rest)
            {
                let group = self.groups.get(usize::from(i))?;
                return Some(Route { group, domain: k });
            }
            rest = rest.split_once('.')?.1;
            n -= 1;
        }
        None
    }

    /// True when a forward rule covers `name` (lower case, as `wire::Query::name` holds it):
    /// its lookups go to that rule's servers, and nothing answers them locally instead.
    #[inline]
    pub fn covers(&self, name: &str) -> bool {
        self.route(name).is_some()
    }

    /// The rules, in name order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// No rule at all.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Labels of a name in presentation form without the trailing dot (0 for the root).
fn labels(name: &str) -> usize {
    if name.is_empty() {
        0
    } else {
        name.bytes().filter(|&b| b == b'.').count() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Strategy, UpstreamServer};
    use std::time::Duration;

    fn base() -> UpstreamConfig {
        UpstreamConfig {
            timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(2),
            mode: UpstreamMode::Recursive,
            max_inflight: 16,
            ..UpstreamConfig::default()
        }
    }

    fn rule(name: &str, domains: &[&str], server: &str) -> ForwardRule {
        ForwardRule {
            name: name.into(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            servers: vec![UpstreamServer::parse(server).unwrap()],
            timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(2),
            strategy: Strategy::Ordered,
        }
    }

    #[test]
    fn longest_suffix_on_label_boundaries() {
        let f = Forwards::build(
            &[
                rule(
                    "corp",
                    &["corp.example", "10.in-addr.arpa"],
                    "127.0.0.1:5301",
                ),
                rule("dc", &["_msdcs.corp.example"], "127.0.0.1:5302"),
            ],
            &base(),
            None,
        );
        let name = |n: &str| f.route(n).map(|r| (&*r.group.name, r.domain));
        assert_eq!(name("corp.example"), Some(("corp", "corp.example")));
        assert_eq!(name("corp.example."), Some(("corp", "corp.example")));
        assert_eq!(name("pc1.corp.example"), Some(("corp", "corp.example")));
        assert_eq!(
            name("_ldap._tcp.dc._msdcs.corp.example"),
            Some(("dc", "_msdcs.corp.example"))
        );
        assert_eq!(
            name("7.3.20.10.in-addr.arpa"),
            Some(("corp", "10.in-addr.arpa"))
        );
        assert_eq!(name("xcorp.example"), None);
        assert_eq!(name("example"), None);
        assert_eq!(name("11.in-addr.arpa"), None);
        assert_eq!(name(""), None);
        assert!(f.covers("a.b.corp.example"));
        assert!(!f.covers("www.example.com"));
        // Rules always forward, also when [upstream] recurses.
        assert!(!f.groups()[0].upstreams.is_recursive());
        assert!(Forwards::default().route("corp.example").is_none());
        // Agrees with a naive reference: the longest domain the name is, or ends with
        // ".domain".
        let domains = ["corp.example", "10.in-addr.arpa", "_msdcs.corp.example"];
        let naive = |n: &str| {
            domains
                .iter()
                .filter(|d| n == **d || n.ends_with(&format!(".{d}")))
                .max_by_key(|d| d.len())
                .copied()
        };
        for n in [
            "a.b.c.d.e.f.g.corp.example",
            "x._msdcs.corp.example",
            "_msdcs.corp.example",
            "msdcs.corp.example",
            "in-addr.arpa",
            "1.2.3.10.in-addr.arpa",
            "10.in-addr.arpa.example",
            "corp.example.org",
            "a",
        ] {
            assert_eq!(f.route(n).map(|r| r.domain), naive(n), "{n}");
        }
    }
}
