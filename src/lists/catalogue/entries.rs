//! The catalogue's entry types: the closed set of [`Category`] ids, the [`HostStatus`] of a
//! vendor host, and the vendors, CNAME-cloak companies and bypass canaries as parsed.

use std::fmt;

#[cfg(doc)]
use super::Catalogue;

/// What a vendor's hosts are used for. A closed set: the TOML category ids are exactly the
/// [`Category::as_str`] values, and an unknown id is a parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Ad and conversion pixels, retargeting, ad serving.
    Advertising,
    /// Web analytics collectors and SDKs.
    Analytics,
    /// Social-network APIs and widgets.
    Social,
    /// Session recording and heatmaps.
    SessionReplay,
    /// Tag-manager containers (they also deploy non-tracking site features).
    TagManager,
    /// Marketing suites: forms, chat, consent banners, loaders.
    MarketingAutomation,
    /// Real-user performance monitoring.
    Monitoring,
    /// A/B testing and personalisation.
    AbTesting,
    /// A vendor's entire consumer service, for organisations that block it altogether.
    WholeService,
    /// Vendor infrastructure the web depends on; documented as `shared`, never blocked.
    DoNotBlock,
    /// Server-to-server endpoints (conversions APIs, measurement protocols) an organisation's own
    /// servers call; `shared` only (never blocked), watched with `watch = ["catalogue:server_side"]`.
    /// A host here may also be listed in another category (the same host often takes browser
    /// hits too).
    ServerSide,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: &'static [Category] = &[
        Category::Advertising,
        Category::Analytics,
        Category::Social,
        Category::SessionReplay,
        Category::TagManager,
        Category::MarketingAutomation,
        Category::Monitoring,
        Category::AbTesting,
        Category::WholeService,
        Category::DoNotBlock,
        Category::ServerSide,
    ];

    /// The snake_case id used in the TOML file and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Advertising => "advertising",
            Category::Analytics => "analytics",
            Category::Social => "social",
            Category::SessionReplay => "session_replay",
            Category::TagManager => "tag_manager",
            Category::MarketingAutomation => "marketing_automation",
            Category::Monitoring => "monitoring",
            Category::AbTesting => "ab_testing",
            Category::WholeService => "whole_service",
            Category::DoNotBlock => "do_not_block",
            Category::ServerSide => "server_side",
        }
    }

    /// The category whose [`Category::as_str`] id is `id`, if any.
    pub fn from_id(id: &str) -> Option<Category> {
        Category::ALL.iter().copied().find(|c| c.as_str() == id)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the catalogue classifies a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    /// Tracking host; blocking it does not break the vendor's own consumer service.
    Block,
    /// Tracking-related, but blocking also breaks something; blocked only in strict zones.
    Caution,
    /// Never blocked at DNS: the tracker is only a path on a host that also serves the main
    /// service. Listed so that explanations can say so.
    Shared,
}

impl HostStatus {
    /// Lower-case name as used in the TOML file (`block`, `caution`, `shared`).
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Block => "block",
            HostStatus::Caution => "caution",
            HostStatus::Shared => "shared",
        }
    }
}

impl fmt::Display for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tracker vendor (`[vendor.<id>]`).
#[derive(Debug, Clone)]
pub struct Vendor {
    /// The TOML id, e.g. `meta`.
    pub id: String,
    /// Display name, e.g. `Meta Platforms (Facebook, Instagram) - Meta Pixel`.
    pub name: String,
    /// The vendor's categories, in file order; never empty.
    pub categories: Vec<VendorCategory>,
}

/// A vendor's hosts in one category (`[vendor.<id>.<category>]`).
#[derive(Debug, Clone)]
pub struct VendorCategory {
    /// Which category this table is.
    pub category: Category,
    /// Hosts safe to block (suffix match).
    pub block: Vec<String>,
    /// Hosts whose blocking breaks something; blocked only in strict zones.
    pub caution: Vec<String>,
    /// Hosts never blocked at DNS; informational.
    pub shared: Vec<String>,
    /// Tracking paths on the `shared` hosts; informational (DNS never sees paths).
    pub shared_paths: Vec<String>,
    /// Source tags, each defined in [`Catalogue::sources`]; never empty.
    pub sources: Vec<String>,
    /// Breakage notes and caveats.
    pub notes: Option<String>,
}

/// A company whose infrastructure is used as a CNAME-cloaking target.
#[derive(Debug, Clone)]
pub struct CloakVendor {
    /// Display name, e.g. `Adobe Experience Cloud`.
    pub name: String,
    /// Target suffixes, matched only against names inside an upstream CNAME chain.
    pub hosts: Vec<String>,
}

/// A name the filtering resolver must answer itself to stop encrypted-DNS bypass.
#[derive(Debug, Clone)]
pub struct Canary {
    /// The TOML id, e.g. `firefox_doh`.
    pub id: String,
    /// The query names (exact names, not suffixes).
    pub names: Vec<String>,
    /// The answer to give, e.g. `NXDOMAIN` or `NODATA`; details are in `notes`.
    pub answer: String,
    /// Source tags, each defined in [`Catalogue::sources`].
    pub sources: Vec<String>,
    /// Accepted alternatives and caveats.
    pub notes: Option<String>,
}
