//! The closed set of things that can happen to a query, and the verdict that explains a policy
//! decision. Every answer carries exactly one [`Outcome`]; metrics labels, query-log entries and
//! the EDE code all derive from it, so they can never disagree.

use std::sync::Arc;

/// What happened to one query. `as_str` values are metric label values: keep them stable.
/// Declaration order is [`Outcome::ALL`] order, which [`Outcome::index`] relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered from an upstream (no policy hit, or an allow rule won).
    Forwarded,
    /// Answered from the cache (no policy hit, or an allow rule won).
    Cached,
    /// Answered by the policy (enforce mode); never sent upstream.
    Blocked,
    /// A policy hit in log mode: answered normally, recorded as "would block".
    WouldBlock,
    /// Answered locally (bypass canaries, DDR).
    Local,
    /// The client is in no zone (or the request was refused for another reason).
    Refused,
    /// Every upstream failed; the client got SERVFAIL.
    Failed,
    /// A request pixelguard could not serve: FORMERR, NOTIMP, BADVERS.
    Invalid,
    /// Over the client's rate limit: REFUSED or dropped.
    RateLimited,
    /// A watched name (`watch`): answered normally, recorded as watched; never blocked.
    Watched,
}

impl Outcome {
    /// Every variant, for pre-registering metric series.
    pub const ALL: &'static [Outcome] = &[
        Self::Forwarded,
        Self::Cached,
        Self::Blocked,
        Self::WouldBlock,
        Self::Local,
        Self::Refused,
        Self::Failed,
        Self::Invalid,
        Self::RateLimited,
        Self::Watched,
    ];

    /// The position in [`Outcome::ALL`], for arrays indexed by outcome.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Forwarded => "forwarded",
            Self::Cached => "cached",
            Self::Blocked => "blocked",
            Self::WouldBlock => "would_block",
            Self::Local => "local",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Invalid => "invalid",
            Self::RateLimited => "rate_limited",
            Self::Watched => "watched",
        }
    }
}

/// A kind of attempt to bypass the filter (`kind` of `pixelguard_bypass_attempts_total`). The
/// canaries are answered locally (`policy::Canary::kind`); `DohHost` is a query for a public
/// DoH / DoT endpoint of the catalogue, counted but answered as usual. `as_str` values are metric
/// label values: keep them stable. Declaration order is [`Bypass::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bypass {
    /// `use-application-dns.net` (Firefox's DoH canary).
    Canary,
    /// `mask.icloud.com`, `mask-h2.icloud.com` (iCloud Private Relay).
    PrivateRelay,
    /// `_dns.resolver.arpa` (Discovery of Designated Resolvers).
    Ddr,
    /// A public DoH / DoT endpoint name of the catalogue.
    DohHost,
}

impl Bypass {
    /// Every variant, for pre-registering metric series.
    pub const ALL: &'static [Bypass] =
        &[Self::Canary, Self::PrivateRelay, Self::Ddr, Self::DohHost];

    /// The position in [`Bypass::ALL`], for arrays indexed by kind.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::PrivateRelay => "private_relay",
            Self::Ddr => "ddr",
            Self::DohHost => "doh_host",
        }
    }
}

impl std::fmt::Display for Bypass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Bypass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a name was blocked (or would have been, or was allowed against a block rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Index of the list in the snapshot.
    pub list: u16,
    /// The list's name.
    pub list_name: Arc<str>,
    /// The rule's name as listed (the suffix of the query name that matched).
    pub rule: String,
    /// Catalogue vendor id, `None` for plain lists ("other" in metrics).
    pub vendor: Option<Arc<str>>,
    /// Catalogue category label, `None` for plain lists.
    pub category: Option<&'static str>,
    /// The answer target through which a cloaked tracker was found (CNAME uncloaking).
    pub cloaked_via: Option<String>,
    /// True when an allow rule matched (the verdict explains why the name was *not* blocked).
    pub allowed: bool,
    /// The label of the exception that lifted this block rule (then `allowed` is true).
    pub exception: Option<Arc<str>>,
}

impl Verdict {
    /// The EDE extra text: `pixelguard: trackers (meta/advertising)`.
    pub fn ede_text(&self) -> String {
        let mut s = format!("pixelguard: {}", self.list_name);
        if let Some(v) = &self.vendor {
            s.push_str(&format!(" ({v}/{})", self.category.unwrap_or("other")));
        }
        if let Some(c) = &self.cloaked_via {
            s.push_str(&format!(" via {c}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(
                o.index(),
                i,
                "{o:?}: handles are built in Outcome::ALL order"
            );
        }
        for (i, b) in Bypass::ALL.iter().enumerate() {
            assert_eq!(
                b.index(),
                i,
                "{b:?}: handles are built in Bypass::ALL order"
            );
        }
    }

    #[test]
    fn bypass_labels_are_stable() {
        let labels: Vec<&str> = Bypass::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(labels, ["canary", "private_relay", "ddr", "doh_host"]);
        assert_eq!(Bypass::Ddr.to_string(), "ddr");
        assert_eq!(serde_json::json!(Bypass::PrivateRelay), "private_relay");
    }
}
