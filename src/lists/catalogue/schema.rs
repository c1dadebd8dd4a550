//! The TOML file's raw (serde) shape, as read before validation: unknown keys are rejected here,
//! tables that must keep file order ([`Ordered`], [`Sectioned`]) are read in order, and TOML
//! errors are rendered with their line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::CatalogueError;
#[cfg(doc)]
use super::Category;

/// The keys allowed in a `[vendor.<id>]` table: `name` plus every category id. Kept in sync with
/// [`Category::ALL`] by a test; serde's "unknown field" error needs a `'static` list.
pub(super) const VENDOR_KEYS: &[&str] = &[
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
    "server_side",
];

/// Renders a TOML error as "line L, column C: message".
pub(super) fn toml_error(text: &str, err: &toml::de::Error) -> CatalogueError {
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

// ---------------------------------------------------------------------------------------------
// Raw (serde) shape of the file.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalogue {
    pub(super) schema_version: Option<u32>,
    #[serde(rename = "match")]
    pub(super) match_kind: Option<String>,
    #[allow(dead_code)] // informational only
    generated: Option<String>,
    #[serde(default)]
    pub(super) sources: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) vendor: Ordered<Sectioned<VendorHead, RawCategory>>,
    pub(super) cname_cloak: Option<RawCloak>,
    #[serde(default)]
    pub(super) canary: Ordered<RawCanary>,
    pub(super) doh: Option<Sectioned<DohHead, RawDohGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCategory {
    #[serde(default)]
    pub(super) block: Vec<String>,
    #[serde(default)]
    pub(super) caution: Vec<String>,
    #[serde(default)]
    pub(super) shared: Vec<String>,
    #[serde(default)]
    pub(super) shared_paths: Vec<String>,
    #[serde(default)]
    pub(super) sources: Vec<String>,
    pub(super) notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCloak {
    #[serde(default)]
    pub(super) sources: Vec<String>,
    #[allow(dead_code)] // documentation for readers of the TOML file
    notes: Option<String>,
    #[serde(default)]
    pub(super) targets: Ordered<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    #[serde(default)]
    pub(super) names: Vec<String>,
    pub(super) answer: String,
    #[serde(default)]
    pub(super) sources: Vec<String>,
    pub(super) notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDohGroup {
    #[serde(default)]
    pub(super) sources: Vec<String>,
    #[allow(dead_code)] // documentation for readers of the TOML file
    notes: Option<String>,
    #[serde(default)]
    pub(super) doh: Vec<String>,
    #[serde(default)]
    pub(super) dot: Vec<String>,
}

/// A TOML table kept in file order (serde maps would sort or hash the keys).
pub(super) struct Ordered<V>(pub(super) Vec<(String, V)>);

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

pub(super) struct VendorHead;
impl Head for VendorHead {
    const KEY: &'static str = "name";
    const KEYS: Option<&'static [&'static str]> = Some(VENDOR_KEYS);
}

pub(super) struct DohHead;
impl Head for DohHead {
    const KEY: &'static str = "notes";
    const KEYS: Option<&'static [&'static str]> = None;
}

/// A table of one string-valued head key plus sub-tables in file order, e.g. `[vendor.meta]`
/// (`name` and category tables) or `[doh]` (`notes` and group tables).
pub(super) struct Sectioned<H, V> {
    pub(super) head: Option<String>,
    pub(super) sections: Vec<(String, V)>,
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
