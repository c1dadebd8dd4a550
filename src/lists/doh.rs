//! Public DoH / DoT endpoint names of the built-in catalogue, for counting bypass attempts
//! (`kind="doh_host"` of `pixelguard_bypass_attempts_total`): a query for one of these names is
//! answered as usual, but it says a client may be about to leave the filter for encrypted DNS.

use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::lists::catalogue::Catalogue;
use crate::matcher::{Matcher, MatcherBuilder, QueryName};

/// The catalogue's public DoH / DoT host names, matched as suffixes, behind a cheap prefilter on
/// the last two labels (most queries are not for these, and the full match hashes every suffix).
pub struct DohHosts {
    matcher: Matcher,
    tails: HashSet<Box<str>, foldhash::fast::RandomState>,
}

impl std::fmt::Debug for DohHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DohHosts")
            .field("tails", &self.tails.len())
            .finish()
    }
}

fn last_two_labels(name: &str) -> &str {
    match name.rmatch_indices('.').nth(1) {
        Some((i, _)) => &name[i + 1..],
        None => name,
    }
}

impl DohHosts {
    /// The host names of the built-in catalogue (none when it cannot be read).
    pub fn builtin() -> Self {
        let hosts = Catalogue::builtin()
            .map(|c| c.doh_hosts)
            .unwrap_or_default();
        let mut b = MatcherBuilder::new();
        let mut tails = HashSet::default();
        for h in &hosts {
            b.insert(h, 1, |a, _| a);
            tails.insert(Box::from(last_two_labels(h)));
        }
        Self {
            matcher: b.build(),
            tails,
        }
    }

    /// True when `qname` (lower case, no trailing dot) is one of the hosts or below one.
    pub fn matches(&self, qname: &str) -> bool {
        if qname.is_empty() || !self.tails.contains(last_two_labels(qname)) {
            return false;
        }
        let q = QueryName::new(qname.as_bytes());
        self.matcher.find(&q, |_| ControlFlow::Break(())).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doh_hosts_match_as_suffixes() {
        let d = DohHosts::builtin();
        assert!(d.matches("dns.google"));
        assert!(d.matches("abc123.dns.nextdns.io"));
        assert!(!d.matches("google"));
        assert!(!d.matches("www.example.test"));
        assert!(!d.matches(""));
    }
}
