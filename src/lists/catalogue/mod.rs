//! The typed, validated tracker catalogue: vendors, their tracking hosts per [`Category`] with a
//! [`HostStatus`] (block / caution / shared), CNAME-cloak targets, encrypted-DNS bypass canaries
//! and public DoH/DoT endpoints.
//!
//! The built-in catalogue lives in `blocklists/trackers.toml` and is compiled into the binary
//! ([`BUILTIN_TRACKERS`]); the file's header comment documents the format and its semantics.
//! [`Catalogue::parse`] rejects anything questionable (unknown keys, invalid or non-canonical
//! host names, undefined source tags, a host that is both blocked and `shared`, ...) with an error
//! naming the offending entry, so a bad edit fails `cargo test` rather than a resolver at start-up.
//! Matching (suffix, most specific entry wins) is not done here; this module only supplies the
//! entries.
//!
//! Here: the [`Catalogue`] itself, its loading ([`Catalogue::parse`], [`Catalogue::builtin`]) and
//! lookups ([`Catalogue::blockable`], [`host_line`], ...). `entries` holds the entry types,
//! `schema` the TOML file's serde shape and `validate` the checks that turn it into a catalogue.

#[cfg(test)]
mod breadth_tests;
pub mod check;
mod entries;
mod schema;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;

#[cfg(doc)]
use crate::lists::name;

pub use entries::{Canary, Category, CloakVendor, HostStatus, Vendor, VendorCategory};
use schema::{RawCatalogue, toml_error};

/// The tracker catalogue shipped with pixelguard (`blocklists/trackers.toml`).
pub const BUILTIN_TRACKERS: &str = include_str!("../../../blocklists/trackers.toml");

/// The parsed, validated tracker catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Source tag to description (URL, version, licence).
    pub sources: BTreeMap<String, String>,
    /// Vendors, in file order.
    pub vendors: Vec<Vendor>,
    /// CNAME-cloak target companies, in file order.
    pub cloak: Vec<CloakVendor>,
    /// Bypass canaries, in file order.
    pub canaries: Vec<Canary>,
    /// Public DoH and DoT host names (all groups, DoH before DoT per group), without duplicates.
    pub doh_hosts: Vec<String>,
}

/// Why a catalogue was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// Not valid TOML, or the wrong shape (unknown key, wrong type, missing field). The text
    /// carries the line and column.
    #[error("tracker catalogue: {0}")]
    Toml(String),
    /// Well-formed but semantically wrong; `path` names the entry, e.g.
    /// `vendor.meta.advertising.block[1]`.
    #[error("tracker catalogue: {path}: {reason}")]
    Invalid {
        /// Dotted path of the offending entry.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Catalogue {
    /// Parses and validates a catalogue: every host is a valid name already in canonical form
    /// (see [`name::normalize`]); every vendor has a name and at least one category; every
    /// category has at least one host and one source; every source tag is defined in
    /// `[sources]`; no `block` or `caution` host equals a `shared` host, and no `block` host is
    /// a parent of a `shared` one; no `block` or `caution` host lies under a `do_not_block` host;
    /// no host is listed twice as `block`/`caution`/`shared`;
    /// category ids are in the closed set of [`Category`]; canary names and DoH hosts are
    /// distinct. Unknown keys are errors.
    pub fn parse(text: &str) -> Result<Catalogue, CatalogueError> {
        let raw: RawCatalogue = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        raw.validate()
    }

    /// Parses the built-in catalogue, [`BUILTIN_TRACKERS`].
    pub fn builtin() -> Result<Catalogue, CatalogueError> {
        Catalogue::parse(BUILTIN_TRACKERS)
    }

    /// Hosts to block for a zone: every `block` host, plus the `caution` hosts when `strict`.
    /// Yields (host, index into [`Catalogue::vendors`], category, status), in file order.
    pub fn blockable(
        &self,
        strict: bool,
    ) -> impl Iterator<Item = (&str, usize, Category, HostStatus)> + '_ {
        self.hosts_where(move |status| match status {
            HostStatus::Block => true,
            HostStatus::Caution => strict,
            HostStatus::Shared => false,
        })
    }

    /// Every vendor host of every status (for explanations such as "this host is shared:
    /// never blocked at DNS"), the watched `server_side` endpoints excepted (they repeat hosts
    /// of other categories). Same item shape as [`Catalogue::blockable`].
    pub fn all_hosts(&self) -> impl Iterator<Item = (&str, usize, Category, HostStatus)> + '_ {
        self.hosts_where(|_| true)
    }

    /// The hosts of one category, every status (`server_side` included). Same item shape as
    /// [`Catalogue::blockable`].
    pub fn category_hosts(
        &self,
        category: Category,
    ) -> impl Iterator<Item = (&str, usize, Category, HostStatus)> + '_ {
        self.hosts_in(move |c| c == category, |_| true)
    }

    /// CNAME-cloak targets: (host, index into [`Catalogue::cloak`]). Match these only against
    /// names inside an upstream CNAME chain, never against plain query names.
    pub fn cloak_targets(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.cloak
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.hosts.iter().map(move |h| (h.as_str(), i)))
    }

    fn hosts_where(
        &self,
        keep: impl Fn(HostStatus) -> bool + Copy + 'static,
    ) -> impl Iterator<Item = (&str, usize, Category, HostStatus)> + '_ {
        self.hosts_in(|c| c != Category::ServerSide, keep)
    }

    fn hosts_in(
        &self,
        category: impl Fn(Category) -> bool + Copy + 'static,
        keep: impl Fn(HostStatus) -> bool + Copy + 'static,
    ) -> impl Iterator<Item = (&str, usize, Category, HostStatus)> + '_ {
        self.vendors.iter().enumerate().flat_map(move |(vi, v)| {
            v.categories
                .iter()
                .filter(move |c| category(c.category))
                .flat_map(move |c| {
                    [
                        (HostStatus::Block, &c.block),
                        (HostStatus::Caution, &c.caution),
                        (HostStatus::Shared, &c.shared),
                    ]
                    .into_iter()
                    .filter(move |(status, _)| keep(*status))
                    .flat_map(move |(status, hosts)| {
                        hosts
                            .iter()
                            .map(move |h| (h.as_str(), vi, c.category, status))
                    })
                })
        })
    }
}

/// The 1-based line of catalogue `text` on which `host` first appears as a quoted string outside
/// a comment, e.g. to point a user at the entry in `blocklists/trackers.toml`.
pub fn host_line(text: &str, host: &str) -> Option<u32> {
    let quoted = format!("\"{host}\"");
    text.lines()
        .position(|line| !line.trim_start().starts_with('#') && line.contains(&quoted))
        .and_then(|i| u32::try_from(i + 1).ok())
}
