//! The closed set of things that can happen to a query, and the verdict that explains a policy
//! decision. Every answer carries exactly one [`Outcome`]; metrics labels, query-log entries and
//! the EDE code all derive from it, so they can never disagree.

use std::sync::Arc;

/// What happened to one query. `as_str` values are metric label values: keep them stable.
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
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
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
        }
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
