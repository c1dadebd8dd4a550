//! Inline-script scanning: host names inside script text (URLs, protocol-relative URLs and quoted
//! bare host names) and the known tracker snippet signatures with their account IDs (Meta Pixel
//! `fbq('init', …)`, Google tag `gtag('config', …)`, `GTM-…`, TikTok `ttq.load`, LinkedIn
//! `_linkedin_partner_id`, Microsoft Clarity and UET, Hotjar `hjid`, X, Snap, Pinterest, Reddit),
//! plus the IDs that tracker URLs carry in their path or query (`facebook.com/tr?id=`,
//! `gtag/js?id=G-…`, `collect?pid=`, …).
//!
//! No regex crate: small hand parsers over bytes, every loop bounded by the input length and by
//! [`MAX_HOSTS_PER_SCRIPT`] / [`MAX_SNIPPETS_PER_SCRIPT`].
//!
//! This module holds the shared types and limits; `scan` finds host mentions and reads JS
//! literals, calls and assignments; `signatures` turns those into tracker snippets and IDs.

mod scan;
mod signatures;
#[cfg(test)]
mod tests;

use url::Url;

use crate::lists::catalogue::Category;

pub use scan::{hosts_in_script, plausible_host};
pub use signatures::{google_id, ids_from_url, snippets_in_script};

/// Most host mentions kept from one script.
pub const MAX_HOSTS_PER_SCRIPT: usize = 500;
/// Most snippet matches kept from one script.
pub const MAX_SNIPPETS_PER_SCRIPT: usize = 100;
/// Longest URL excerpt kept as evidence.
const MAX_EXCERPT: usize = 160;

/// A host name mentioned in script text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHost {
    /// Canonical host name (lower case, no trailing dot).
    pub host: String,
    /// The URL (or quoted host) as it appears, shortened.
    pub excerpt: String,
    /// The URL, when the mention parses as one (for ID extraction).
    pub url: Option<Url>,
}

/// A tracker account or container ID.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TrackerId {
    /// What the ID identifies: `meta_pixel`, `ga4`, `gtm_container`, `google_ads`,
    /// `universal_analytics`, `floodlight`, `tiktok_pixel`, `linkedin_partner`,
    /// `clarity_project`, `uet_tag`, `hotjar_site`, `x_pixel`, `snap_pixel`, `pinterest_tag`,
    /// `reddit_pixel`.
    pub kind: String,
    /// The ID as written.
    pub id: String,
}

impl TrackerId {
    fn new(kind: &str, id: &str) -> TrackerId {
        TrackerId {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }
    }

    /// A short label for tables: `Meta Pixel 1234…`, `GA4 G-ABC…`.
    pub fn label(&self) -> String {
        let what = match self.kind.as_str() {
            "meta_pixel" => "Meta Pixel",
            "ga4" => "GA4",
            "gtm_container" => "GTM",
            "google_ads" => "Google Ads",
            "universal_analytics" => "UA",
            "floodlight" => "Floodlight",
            "tiktok_pixel" => "TikTok Pixel",
            "linkedin_partner" => "LinkedIn partner",
            "clarity_project" => "Clarity",
            "uet_tag" => "UET",
            "hotjar_site" => "Hotjar site",
            "x_pixel" => "X Pixel",
            "snap_pixel" => "Snap Pixel",
            "pinterest_tag" => "Pinterest Tag",
            "reddit_pixel" => "Reddit Pixel",
            other => other,
        };
        if self.id.starts_with("GTM-") || self.id.starts_with("G-") {
            self.id.clone()
        } else {
            format!("{what} {}", self.id)
        }
    }
}

/// A tracker snippet recognised in script text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Catalogue vendor id (`meta`, `google`, ...).
    pub vendor: &'static str,
    /// The category of what the snippet does.
    pub category: Category,
    /// The tracker host the snippet loads or sends to (a catalogue host), which the finding is
    /// attributed to when the page does not reference a host of the vendor itself.
    pub host: &'static str,
    /// The account ID, when the snippet names one.
    pub id: Option<TrackerId>,
    /// The matched text, shortened: `fbq('init', '1234')`.
    pub evidence: String,
}

fn excerpt(s: &str) -> String {
    if s.len() <= MAX_EXCERPT {
        return s.to_owned();
    }
    let mut end = MAX_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
