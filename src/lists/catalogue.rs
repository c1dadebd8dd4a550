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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::lists::name;

/// The tracker catalogue shipped with pixelguard (`blocklists/trackers.toml`).
pub const BUILTIN_TRACKERS: &str = include_str!("../../blocklists/trackers.toml");

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

/// The keys allowed in a `[vendor.<id>]` table: `name` plus every category id. Kept in sync with
/// [`Category::ALL`] by a test; serde's "unknown field" error needs a `'static` list.
const VENDOR_KEYS: &[&str] = &[
    "name",
    "advertising",
    "analytics",
    "social",
    "session_replay",
    "tag_manager",
    "marketing_automation",
    "monitoring",
    "ab_testing",
    "whole_service",
    "do_not_block",
];

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
    /// a parent of a `shared` one; no host is listed twice as `block`/`caution`/`shared`;
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
    /// never blocked at DNS"). Same item shape as [`Catalogue::blockable`].
    pub fn all_hosts(&self) -> impl Iterator<Item = (&str, usize, Category, HostStatus)> + '_ {
        self.hosts_where(|_| true)
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
        self.vendors.iter().enumerate().flat_map(move |(vi, v)| {
            v.categories.iter().flat_map(move |c| {
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

/// Renders a TOML error as "line L, column C: message".
fn toml_error(text: &str, err: &toml::de::Error) -> CatalogueError {
    let message = err.message().trim_end().replace('\n', "; ");
    match err.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = text.get(..start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
            CatalogueError::Toml(format!("line {line}, column {column}: {message}"))
        }
        None => CatalogueError::Toml(message),
    }
}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> CatalogueError {
    CatalogueError::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A TOML key as it would be written in a dotted path: bare when possible, else quoted.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (serde) shape of the file.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    schema_version: Option<u32>,
    #[serde(rename = "match")]
    match_kind: Option<String>,
    #[allow(dead_code)] // informational only
    generated: Option<String>,
    #[serde(default)]
    sources: BTreeMap<String, String>,
    #[serde(default)]
    vendor: Ordered<Sectioned<VendorHead, RawCategory>>,
    cname_cloak: Option<RawCloak>,
    #[serde(default)]
    canary: Ordered<RawCanary>,
    doh: Option<Sectioned<DohHead, RawDohGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    #[serde(default)]
    block: Vec<String>,
    #[serde(default)]
    caution: Vec<String>,
    #[serde(default)]
    shared: Vec<String>,
    #[serde(default)]
    shared_paths: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
    notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloak {
    #[serde(default)]
    sources: Vec<String>,
    #[allow(dead_code)] // documentation for readers of the TOML file
    notes: Option<String>,
    #[serde(default)]
    targets: Ordered<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanary {
    #[serde(default)]
    names: Vec<String>,
    answer: String,
    #[serde(default)]
    sources: Vec<String>,
    notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDohGroup {
    #[serde(default)]
    sources: Vec<String>,
    #[allow(dead_code)] // documentation for readers of the TOML file
    notes: Option<String>,
    #[serde(default)]
    doh: Vec<String>,
    #[serde(default)]
    dot: Vec<String>,
}

/// A TOML table kept in file order (serde maps would sort or hash the keys).
struct Ordered<V>(Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    entries.push((k, map.next_value::<V>()?));
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

/// Describes a table holding one string-valued `KEY` plus sub-tables.
trait Head {
    /// The string-valued key (`name` for vendors, `notes` for `[doh]`).
    const KEY: &'static str;
    /// All allowed keys (including `KEY`), or `None` when any sub-table id is allowed.
    const KEYS: Option<&'static [&'static str]>;
}

struct VendorHead;
impl Head for VendorHead {
    const KEY: &'static str = "name";
    const KEYS: Option<&'static [&'static str]> = Some(VENDOR_KEYS);
}

struct DohHead;
impl Head for DohHead {
    const KEY: &'static str = "notes";
    const KEYS: Option<&'static [&'static str]> = None;
}

/// A table of one string-valued head key plus sub-tables in file order, e.g. `[vendor.meta]`
/// (`name` and category tables) or `[doh]` (`notes` and group tables).
struct Sectioned<H, V> {
    head: Option<String>,
    sections: Vec<(String, V)>,
    _head: PhantomData<H>,
}

impl<'de, H: Head, V: Deserialize<'de>> Deserialize<'de> for Sectioned<H, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SectionedVisitor<H, V>(PhantomData<(H, V)>);
        impl<'de, H: Head, V: Deserialize<'de>> Visitor<'de> for SectionedVisitor<H, V> {
            type Value = Sectioned<H, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a table with `{}` and sub-tables", H::KEY)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut head = None;
                let mut sections = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if k == H::KEY {
                        head = Some(map.next_value::<String>()?);
                    } else if H::KEYS.is_some_and(|keys| !keys.contains(&k.as_str())) {
                        return Err(de::Error::unknown_field(&k, H::KEYS.unwrap_or(&[])));
                    } else {
                        sections.push((k, map.next_value::<V>()?));
                    }
                }
                Ok(Sectioned {
                    head,
                    sections,
                    _head: PhantomData,
                })
            }
        }
        deserializer.deserialize_map(SectionedVisitor(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Where a vendor host was first seen.
struct Seen {
    path: String,
    status: HostStatus,
}

impl RawCatalogue {
    fn validate(self) -> Result<Catalogue, CatalogueError> {
        if let Some(v) = self.schema_version
            && v != 1
        {
            return Err(invalid(
                "schema_version",
                format!("unsupported version {v}; expected 1"),
            ));
        }
        if let Some(m) = &self.match_kind
            && m != "suffix"
        {
            return Err(invalid(
                "match",
                format!("unsupported match {m:?}; expected \"suffix\""),
            ));
        }
        for (tag, text) in &self.sources {
            if text.trim().is_empty() {
                return Err(invalid(
                    format!("sources.{}", key(tag)),
                    "empty description",
                ));
            }
        }
        let sources = &self.sources;

        let mut vendors = Vec::with_capacity(self.vendor.0.len());
        let mut seen: HashMap<String, Seen> = HashMap::new();
        for (id, raw) in self.vendor.0 {
            let vpath = format!("vendor.{}", key(&id));
            check_id(&vpath, &id)?;
            let name = match raw.head {
                Some(n) if !n.trim().is_empty() => n,
                Some(_) => return Err(invalid(format!("{vpath}.name"), "empty name")),
                None => return Err(invalid(format!("{vpath}.name"), "missing vendor name")),
            };
            if raw.sections.is_empty() {
                return Err(invalid(vpath, "vendor has no category table"));
            }
            let mut categories = Vec::with_capacity(raw.sections.len());
            for (cat_id, c) in raw.sections {
                let cpath = format!("{vpath}.{cat_id}");
                let category = Category::from_id(&cat_id).ok_or_else(|| {
                    invalid(
                        &cpath,
                        format!("unknown category; expected one of {VENDOR_KEYS:?}"),
                    )
                })?;
                check_sources(&format!("{cpath}.sources"), &c.sources, sources)?;
                if c.block.is_empty() && c.caution.is_empty() && c.shared.is_empty() {
                    return Err(invalid(cpath, "no block, caution or shared hosts"));
                }
                for (status, hosts) in [
                    (HostStatus::Block, &c.block),
                    (HostStatus::Caution, &c.caution),
                    (HostStatus::Shared, &c.shared),
                ] {
                    for (i, host) in hosts.iter().enumerate() {
                        let path = format!("{cpath}.{status}[{i}]");
                        check_host(&path, host)?;
                        record(&mut seen, host, path, status)?;
                    }
                }
                for (i, p) in c.shared_paths.iter().enumerate() {
                    if !p.starts_with('/') {
                        return Err(invalid(
                            format!("{cpath}.shared_paths[{i}]"),
                            format!("path {p:?} must start with '/'"),
                        ));
                    }
                }
                if !c.shared_paths.is_empty() && c.shared.is_empty() {
                    return Err(invalid(
                        format!("{cpath}.shared_paths"),
                        "shared_paths without any shared host",
                    ));
                }
                categories.push(VendorCategory {
                    category,
                    block: c.block,
                    caution: c.caution,
                    shared: c.shared,
                    shared_paths: c.shared_paths,
                    sources: c.sources,
                    notes: c.notes,
                });
            }
            vendors.push(Vendor {
                id,
                name,
                categories,
            });
        }
        check_shared_not_covered(&seen)?;

        let mut cloak = Vec::new();
        if let Some(raw) = self.cname_cloak {
            if !raw.targets.0.is_empty() || !raw.sources.is_empty() {
                check_sources("cname_cloak.sources", &raw.sources, sources)?;
            }
            let mut targets: HashMap<String, String> = HashMap::new();
            for (name, hosts) in raw.targets.0 {
                let tpath = format!("cname_cloak.targets.{}", key(&name));
                if name.trim().is_empty() {
                    return Err(invalid(tpath, "empty vendor name"));
                }
                if hosts.is_empty() {
                    return Err(invalid(tpath, "no target hosts"));
                }
                for (i, host) in hosts.iter().enumerate() {
                    let path = format!("{tpath}[{i}]");
                    check_host(&path, host)?;
                    if let Some(first) = targets.insert(host.clone(), path.clone()) {
                        return Err(invalid(
                            path,
                            format!("{host:?} is already listed at {first}"),
                        ));
                    }
                }
                cloak.push(CloakVendor { name, hosts });
            }
        }

        let mut canaries = Vec::with_capacity(self.canary.0.len());
        let mut canary_names: HashMap<String, String> = HashMap::new();
        for (id, c) in self.canary.0 {
            let cpath = format!("canary.{}", key(&id));
            check_id(&cpath, &id)?;
            if c.names.is_empty() {
                return Err(invalid(format!("{cpath}.names"), "no names"));
            }
            if c.answer.trim().is_empty() {
                return Err(invalid(format!("{cpath}.answer"), "empty answer"));
            }
            check_sources(&format!("{cpath}.sources"), &c.sources, sources)?;
            for (i, n) in c.names.iter().enumerate() {
                let path = format!("{cpath}.names[{i}]");
                check_host(&path, n)?;
                if let Some(first) = canary_names.insert(n.clone(), path.clone()) {
                    return Err(invalid(path, format!("{n:?} is already listed at {first}")));
                }
            }
            canaries.push(Canary {
                id,
                names: c.names,
                answer: c.answer,
                sources: c.sources,
                notes: c.notes,
            });
        }

        let mut doh_hosts = Vec::new();
        if let Some(doh) = self.doh {
            let mut doh_seen: HashMap<String, String> = HashMap::new();
            for (id, g) in doh.sections {
                let gpath = format!("doh.{}", key(&id));
                check_id(&gpath, &id)?;
                check_sources(&format!("{gpath}.sources"), &g.sources, sources)?;
                if g.doh.is_empty() && g.dot.is_empty() {
                    return Err(invalid(gpath, "no doh or dot hosts"));
                }
                for (list, hosts) in [("doh", g.doh), ("dot", g.dot)] {
                    for (i, host) in hosts.into_iter().enumerate() {
                        let path = format!("{gpath}.{list}[{i}]");
                        check_host(&path, &host)?;
                        if let Some(canary) = canary_names.get(&host) {
                            return Err(invalid(
                                path,
                                format!("{host:?} is a canary ({canary}), not a DoH endpoint"),
                            ));
                        }
                        if let Some(first) = doh_seen.insert(host.clone(), path.clone()) {
                            return Err(invalid(
                                path,
                                format!("{host:?} is already listed at {first}"),
                            ));
                        }
                        doh_hosts.push(host);
                    }
                }
            }
        }

        Ok(Catalogue {
            sources: self.sources,
            vendors,
            cloak,
            canaries,
            doh_hosts,
        })
    }
}

/// Vendor, canary and DoH group ids: lower-case ASCII letters, digits and `_`, starting with a
/// letter (they appear in metric labels and explanations).
fn check_id(path: &str, id: &str) -> Result<(), CatalogueError> {
    let ok = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("id {id:?} must be lower-case letters, digits and '_', starting with a letter"),
        ))
    }
}

/// A host must be a valid name already in canonical form.
fn check_host(path: &str, host: &str) -> Result<(), CatalogueError> {
    match name::normalize(host) {
        Err(e) => Err(invalid(path, format!("invalid host {host:?}: {e}"))),
        Ok(canonical) if canonical != host => Err(invalid(
            path,
            format!("host {host:?} is not in canonical form; write {canonical:?}"),
        )),
        Ok(_) => Ok(()),
    }
}

fn check_sources(
    path: &str,
    tags: &[String],
    defined: &BTreeMap<String, String>,
) -> Result<(), CatalogueError> {
    if tags.is_empty() {
        return Err(invalid(path, "at least one source tag is required"));
    }
    let mut seen = HashSet::new();
    for (i, tag) in tags.iter().enumerate() {
        if !defined.contains_key(tag) {
            return Err(invalid(
                format!("{path}[{i}]"),
                format!("source tag {tag:?} is not defined in [sources]"),
            ));
        }
        if !seen.insert(tag.as_str()) {
            return Err(invalid(
                format!("{path}[{i}]"),
                format!("source tag {tag:?} repeated"),
            ));
        }
    }
    Ok(())
}

/// Records a vendor host; a host may appear only once across all vendors and statuses. A clash
/// between a blocked (`block`/`caution`) and a `shared` entry is reported at the blocked entry.
fn record(
    seen: &mut HashMap<String, Seen>,
    host: &str,
    path: String,
    status: HostStatus,
) -> Result<(), CatalogueError> {
    let Some(first) = seen.get(host) else {
        seen.insert(host.to_owned(), Seen { path, status });
        return Ok(());
    };
    let shared_clash = (first.status == HostStatus::Shared) != (status == HostStatus::Shared);
    if shared_clash {
        let (blocked_path, blocked_status, shared_path) = if status == HostStatus::Shared {
            (first.path.clone(), first.status, path)
        } else {
            (path, status, first.path.clone())
        };
        return Err(invalid(
            blocked_path,
            format!(
                "{host:?} is listed as {blocked_status} but is also shared at {shared_path}; \
                 a shared host is never blocked"
            ),
        ));
    }
    Err(invalid(
        path,
        format!("{host:?} is already listed at {}", first.path),
    ))
}

/// No `shared` host may lie under a `block` entry: suffix matching would block it in every zone.
/// (A `caution` parent is allowed: a strict zone that blocks a whole service blocks it all.)
fn check_shared_not_covered(seen: &HashMap<String, Seen>) -> Result<(), CatalogueError> {
    let mut shared: Vec<(&String, &Seen)> = seen
        .iter()
        .filter(|(_, s)| s.status == HostStatus::Shared)
        .collect();
    shared.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    for (host, s) in shared {
        let mut rest = host.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(p) = seen.get(parent)
                && p.status == HostStatus::Block
            {
                return Err(invalid(
                    &p.path,
                    format!(
                        "blocking {parent:?} would also block {host:?}, which is shared at {}",
                        s.path
                    ),
                ));
            }
            rest = parent;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Catalogue {
        match Catalogue::builtin() {
            Ok(c) => c,
            Err(e) => panic!("built-in catalogue is invalid: {e}"),
        }
    }

    fn vendor<'a>(c: &'a Catalogue, id: &str) -> &'a Vendor {
        c.vendors
            .iter()
            .find(|v| v.id == id)
            .unwrap_or_else(|| panic!("vendor {id} missing"))
    }

    fn vendor_hosts(c: &Catalogue, id: &str, status: HostStatus) -> Vec<String> {
        let vi = c
            .vendors
            .iter()
            .position(|v| v.id == id)
            .unwrap_or(usize::MAX);
        c.all_hosts()
            .filter(|&(_, i, _, s)| i == vi && s == status)
            .map(|(h, ..)| h.to_owned())
            .collect()
    }

    /// Parses `text` and returns the `Invalid` error's (path, reason).
    fn invalid_of(text: &str) -> (String, String) {
        match Catalogue::parse(text) {
            Err(CatalogueError::Invalid { path, reason }) => (path, reason),
            Err(e) => panic!("expected Invalid, got {e}"),
            Ok(_) => panic!("expected an error for:\n{text}"),
        }
    }

    fn toml_err_of(text: &str) -> String {
        match Catalogue::parse(text) {
            Err(CatalogueError::Toml(m)) => m,
            Err(e) => panic!("expected Toml error, got {e}"),
            Ok(_) => panic!("expected an error for:\n{text}"),
        }
    }

    const MINIMAL: &str = r#"
[sources]
EP = "EasyPrivacy"

[vendor.acme]
name = "Acme"

[vendor.acme.advertising]
block = ["pixel.acme.example"]
shared = ["www.acme.example"]
sources = ["EP"]
"#;

    #[test]
    fn builtin_parses_and_validates() {
        let c = builtin();
        assert!(c.vendors.len() >= 20, "{} vendors", c.vendors.len());
        assert!(c.cloak.len() >= 50);
        assert!(c.canaries.len() >= 4);
        assert!(c.doh_hosts.len() >= 50);
        assert!(c.blockable(false).count() >= 70);
    }

    #[test]
    fn minimal_parses() {
        let c = match Catalogue::parse(MINIMAL) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.vendors.len(), 1);
        assert!(c.cloak.is_empty() && c.canaries.is_empty() && c.doh_hosts.is_empty());
        let all: Vec<_> = c.all_hosts().collect();
        assert_eq!(
            all,
            [
                (
                    "pixel.acme.example",
                    0,
                    Category::Advertising,
                    HostStatus::Block
                ),
                (
                    "www.acme.example",
                    0,
                    Category::Advertising,
                    HostStatus::Shared
                ),
            ]
        );
    }

    #[test]
    fn every_host_is_valid_and_canonical() {
        let c = builtin();
        let hosts = c
            .all_hosts()
            .map(|(h, ..)| h)
            .chain(c.cloak_targets().map(|(h, _)| h))
            .chain(
                c.canaries
                    .iter()
                    .flat_map(|k| k.names.iter().map(String::as_str)),
            )
            .chain(c.doh_hosts.iter().map(String::as_str));
        let mut n = 0;
        for h in hosts {
            assert_eq!(
                name::normalize(h).map(|c| c.into_owned()),
                Ok(h.to_owned()),
                "{h}"
            );
            n += 1;
        }
        assert!(n > 250, "{n}");
    }

    #[test]
    fn every_vendor_has_a_category_and_sources() {
        let c = builtin();
        for v in &c.vendors {
            assert!(!v.name.is_empty(), "{}", v.id);
            assert!(!v.categories.is_empty(), "{}", v.id);
            for cat in &v.categories {
                assert!(!cat.sources.is_empty(), "{}.{}", v.id, cat.category);
                for s in &cat.sources {
                    assert!(c.sources.contains_key(s), "{s}");
                }
            }
        }
    }

    #[test]
    fn no_blocked_host_is_shared() {
        let c = builtin();
        let shared: HashSet<&str> = c
            .all_hosts()
            .filter(|&(.., s)| s == HostStatus::Shared)
            .map(|(h, ..)| h)
            .collect();
        assert!(shared.contains("www.facebook.com"));
        for (h, ..) in c.blockable(true) {
            assert!(!shared.contains(h), "{h}");
        }
        // and no `block` entry is a parent of a shared host
        for (h, ..) in c.blockable(false) {
            let suffix = format!(".{h}");
            assert!(!shared.iter().any(|s| s.ends_with(&suffix)), "{h}");
        }
    }

    #[test]
    fn every_defined_source_is_used() {
        let c = builtin();
        let used: HashSet<&str> = c
            .vendors
            .iter()
            .flat_map(|v| v.categories.iter().flat_map(|c| c.sources.iter()))
            .chain(c.canaries.iter().flat_map(|k| k.sources.iter()))
            .map(String::as_str)
            .collect();
        for tag in c.sources.keys() {
            // cname_cloak and doh sources are not exposed; look for the quoted tag instead.
            let quoted = format!("\"{tag}\"");
            assert!(
                used.contains(tag.as_str()) || BUILTIN_TRACKERS.matches(&quoted).count() > 0,
                "source {tag} is never used"
            );
        }
    }

    #[test]
    fn key_vendors_and_hosts_from_the_seed() {
        let c = builtin();
        let expect: &[(&str, HostStatus, &str)] = &[
            ("meta", HostStatus::Block, "connect.facebook.net"),
            ("meta", HostStatus::Block, "pixel.facebook.com"),
            ("meta", HostStatus::Shared, "www.facebook.com"),
            ("meta", HostStatus::Caution, "facebook.com"),
            ("google", HostStatus::Block, "google-analytics.com"),
            ("google", HostStatus::Block, "region1.analytics.google.com"),
            ("google", HostStatus::Shared, "analytics.google.com"),
            ("google", HostStatus::Caution, "googletagmanager.com"),
            ("google", HostStatus::Caution, "googleadservices.com"),
            ("tiktok", HostStatus::Block, "analytics.tiktok.com"),
            ("tiktok", HostStatus::Shared, "tiktok.com"),
            ("linkedin", HostStatus::Block, "snap.licdn.com"),
            ("linkedin", HostStatus::Shared, "licdn.com"),
            ("microsoft", HostStatus::Block, "clarity.ms"),
            ("microsoft", HostStatus::Block, "bat.bing.com"),
            ("hotjar", HostStatus::Block, "static.hotjar.com"),
            ("hotjar", HostStatus::Caution, "hotjar.com"),
            ("adobe", HostStatus::Block, "omtrdc.net"),
            ("adobe", HostStatus::Block, "demdex.net"),
            ("x", HostStatus::Block, "ads-twitter.com"),
            ("x", HostStatus::Shared, "t.co"),
            ("snap", HostStatus::Block, "tr.snapchat.com"),
            ("pinterest", HostStatus::Block, "ct.pinterest.com"),
            ("reddit", HostStatus::Block, "alb.reddit.com"),
            ("yandex", HostStatus::Block, "mc.yandex.ru"),
        ];
        for &(id, status, host) in expect {
            assert!(!vendor(&c, id).name.is_empty());
            assert!(
                vendor_hosts(&c, id, status).iter().any(|h| h == host),
                "{id}: {host} not {status}"
            );
        }
        let clarity = vendor(&c, "microsoft")
            .categories
            .iter()
            .find(|k| k.category == Category::SessionReplay)
            .map(|k| k.block.clone());
        assert_eq!(clarity, Some(vec!["clarity.ms".to_owned()]));
        let adobe_cloak = c
            .cloak
            .iter()
            .position(|v| v.name == "Adobe Experience Cloud");
        assert!(adobe_cloak.is_some());
        assert!(
            c.cloak_targets()
                .any(|t| t == ("sc.omtrdc.net", adobe_cloak.unwrap_or(0)))
        );
        assert!(
            c.doh_hosts
                .iter()
                .any(|h| h == "mozilla.cloudflare-dns.com")
        );
        assert!(c.doh_hosts.iter().any(|h| h == "one.one.one.one"));
    }

    #[test]
    fn canaries() {
        let c = builtin();
        let names: Vec<&str> = c
            .canaries
            .iter()
            .flat_map(|k| k.names.iter().map(String::as_str))
            .collect();
        for n in [
            "use-application-dns.net",
            "mask.icloud.com",
            "mask-h2.icloud.com",
            "_dns.resolver.arpa",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        let firefox = c.canaries.iter().find(|k| k.id == "firefox_doh");
        assert_eq!(firefox.map(|k| k.answer.as_str()), Some("NXDOMAIN"));
    }

    #[test]
    fn strict_adds_caution_hosts_only() {
        let c = builtin();
        let lax: Vec<_> = c.blockable(false).collect();
        let strict: Vec<_> = c.blockable(true).collect();
        assert!(lax.iter().all(|&(.., s)| s == HostStatus::Block));
        assert!(strict.len() > lax.len());
        assert!(strict.iter().all(|&(.., s)| s != HostStatus::Shared));
        assert!(strict.iter().any(|&(h, ..)| h == "googletagmanager.com"));
        assert!(!lax.iter().any(|&(h, ..)| h == "googletagmanager.com"));
        let all = c.all_hosts().count();
        let shared = c
            .all_hosts()
            .filter(|&(.., s)| s == HostStatus::Shared)
            .count();
        assert_eq!(all, strict.len() + shared);
    }

    #[test]
    fn category_ids_round_trip() {
        assert_eq!(VENDOR_KEYS.len(), Category::ALL.len() + 1);
        for (c, k) in Category::ALL.iter().zip(&VENDOR_KEYS[1..]) {
            assert_eq!(c.as_str(), *k);
            assert_eq!(Category::from_id(k), Some(*c));
            assert_eq!(c.to_string(), *k);
        }
        assert_eq!(Category::from_id("name"), None);
    }

    #[test]
    fn host_line_points_at_the_entry() {
        let line = host_line(BUILTIN_TRACKERS, "connect.facebook.net");
        let Some(n) = line else { panic!("not found") };
        let text = BUILTIN_TRACKERS.lines().nth(n as usize - 1).unwrap_or("");
        assert!(
            text.starts_with("block = [\"connect.facebook.net\""),
            "{text}"
        );
        assert_eq!(host_line(BUILTIN_TRACKERS, "not-there.example"), None);
    }

    #[test]
    fn bad_host_is_rejected_with_its_path() {
        let text = MINIMAL.replace(
            r#"block = ["pixel.acme.example"]"#,
            r#"block = ["ok.example", "bad host.example"]"#,
        );
        let (path, reason) = invalid_of(&text);
        assert_eq!(path, "vendor.acme.advertising.block[1]");
        assert!(reason.contains("invalid host"), "{reason}");

        let text = MINIMAL.replace("pixel.acme.example", "Pixel.Acme.example");
        let (path, reason) = invalid_of(&text);
        assert_eq!(path, "vendor.acme.advertising.block[0]");
        assert!(reason.contains("canonical"), "{reason}");
    }

    #[test]
    fn undefined_source_tag_is_rejected() {
        let text = MINIMAL.replace(r#"sources = ["EP"]"#, r#"sources = ["EP", "NOPE"]"#);
        let (path, reason) = invalid_of(&text);
        assert_eq!(path, "vendor.acme.advertising.sources[1]");
        assert!(reason.contains("NOPE"), "{reason}");

        let text = MINIMAL.replace(r#"sources = ["EP"]"#, "sources = []");
        assert_eq!(invalid_of(&text).0, "vendor.acme.advertising.sources");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        // in a category table
        let text = MINIMAL.replace(
            "sources = [\"EP\"]",
            "sources = [\"EP\"]\nblok = [\"x.example\"]",
        );
        let m = toml_err_of(&text);
        assert!(m.contains("blok") && m.contains("line 12"), "{m}");
        // an unknown category id
        let text = format!("{MINIMAL}\n[vendor.acme.crypto_mining]\nblock = [\"m.example\"]\n");
        let m = toml_err_of(&text);
        assert!(m.contains("crypto_mining") && m.contains("line "), "{m}");
        // at top level
        let m = toml_err_of(&format!("extra = 1\n{MINIMAL}"));
        assert!(m.contains("extra") && m.contains("line 1"), "{m}");
        // in a canary
        let text = format!(
            "{MINIMAL}\n[canary.c]\nnames = [\"a.example\"]\nanswer = \"NXDOMAIN\"\nsources = [\"EP\"]\nttl = 5\n"
        );
        assert!(toml_err_of(&text).contains("ttl"));
    }

    #[test]
    fn block_equal_to_shared_is_rejected() {
        let text = format!(
            "{MINIMAL}\n[vendor.other]\nname = \"Other\"\n\n[vendor.other.analytics]\nshared = [\"pixel.acme.example\"]\nsources = [\"EP\"]\n"
        );
        let (path, reason) = invalid_of(&text);
        assert_eq!(path, "vendor.acme.advertising.block[0]");
        assert!(
            reason.contains("vendor.other.analytics.shared[0]"),
            "{reason}"
        );
        // shared listed first, caution later: still reported at the blocked entry
        let text = format!(
            "{MINIMAL}\n[vendor.other]\nname = \"Other\"\n\n[vendor.other.analytics]\ncaution = [\"www.acme.example\"]\nsources = [\"EP\"]\n"
        );
        assert_eq!(invalid_of(&text).0, "vendor.other.analytics.caution[0]");
    }

    #[test]
    fn other_semantic_errors() {
        // the same block host in two vendors
        let text = format!(
            "{MINIMAL}\n[vendor.other]\nname = \"Other\"\n\n[vendor.other.analytics]\nblock = [\"pixel.acme.example\"]\nsources = [\"EP\"]\n"
        );
        let (path, reason) = invalid_of(&text);
        assert_eq!(path, "vendor.other.analytics.block[0]");
        assert!(
            reason.contains("vendor.acme.advertising.block[0]"),
            "{reason}"
        );
        // a block entry covering a shared host
        let text = MINIMAL.replace("pixel.acme.example", "acme.example");
        assert_eq!(invalid_of(&text).0, "vendor.acme.advertising.block[0]");
        // missing vendor name
        let text = MINIMAL.replace("name = \"Acme\"", "");
        assert_eq!(invalid_of(&text).0, "vendor.acme.name");
        // vendor without categories
        let text = format!("{MINIMAL}\n[vendor.empty]\nname = \"Empty\"\n");
        assert_eq!(invalid_of(&text).0, "vendor.empty");
        // a DoH host that is really a canary
        let text = format!(
            "{MINIMAL}\n[canary.ff]\nnames = [\"use-application-dns.net\"]\nanswer = \"NXDOMAIN\"\nsources = [\"EP\"]\n\n[doh.x]\nsources = [\"EP\"]\ndoh = [\"use-application-dns.net\"]\n"
        );
        assert_eq!(invalid_of(&text).0, "doh.x.doh[0]");
        // a cloak target with a bad name, quoted key in the path
        let text = format!(
            "{MINIMAL}\n[cname_cloak]\nsources = [\"EP\"]\n[cname_cloak.targets]\n\"Big Co\" = [\"-x.example\"]\n"
        );
        assert_eq!(invalid_of(&text).0, "cname_cloak.targets.\"Big Co\"[0]");
        // unsupported schema version
        assert_eq!(
            invalid_of(&format!("schema_version = 2\n{MINIMAL}")).0,
            "schema_version"
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let m = toml_err_of("[sources]\nEP = \"x\"\n[vendor.a\n");
        assert!(m.starts_with("line 3, column"), "{m}");
    }
}
