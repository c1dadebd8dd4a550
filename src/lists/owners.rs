//! The two list formats that carry a domain's owner: Disconnect's `services.json` (categories →
//! entities → domains, the list behind Firefox's tracking protection) and DuckDuckGo Tracker
//! Radar's JSON files (an entity file: an owner and its `properties`; a domain file: a tracker
//! `domain` and its `owner`; or a JSON array of either, e.g. `jq -s . entities/*.json`).
//!
//! Both parse into [`Owned`] entries: a domain, its owner's display name, a category label and
//! whether the list blocks it. Disconnect blocks every category except `Content` (as Firefox's
//! standard protection does) and only names the owner of the rest; a Tracker Radar entity file
//! lists every domain a company owns, trackers or not, so it only names owners, while a domain
//! file describes one tracker domain, which it blocks.

use std::sync::Arc;

use serde_json::Value;

use super::catalogue::HostStatus;
use super::parse::ParseReport;
use super::{Attr, CompiledList, code, name, payload, slug};
use crate::config::{ListFormat, ListSource};
use crate::matcher::{Matcher, MatcherBuilder};

/// One domain of an ownership list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// Canonical domain (suffix match).
    pub domain: String,
    /// The owner's display name, e.g. `comScore`.
    pub owner: String,
    /// Category label (a metric label): see [`disconnect_category`] and [`radar_category`].
    pub category: &'static str,
    /// True when the list blocks the domain; false when it only names its owner.
    pub block: bool,
}

/// The result of parsing an ownership list: entries plus the items that were skipped.
#[derive(Debug, Default)]
pub struct OwnedList {
    /// Valid entries, in file order.
    pub entries: Vec<Owned>,
    /// Skipped items (a bad domain, an entity without a name), with a reason.
    pub skipped: Vec<String>,
}

impl OwnedList {
    fn push(&mut self, domain: &str, owner: &str, category: &'static str, block: bool) {
        match name::normalize(domain) {
            Ok(d) if d.contains('.') => self.entries.push(Owned {
                domain: d.into_owned(),
                owner: owner.to_owned(),
                category,
                block,
            }),
            Ok(_) => self
                .skipped
                .push(format!("{domain:?} ({owner}): not a domain")),
            Err(e) => self.skipped.push(format!("{domain:?} ({owner}): {e}")),
        }
    }
}

/// Why a file is not an ownership list at all.
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON of another shape.
    #[error("{0}")]
    Shape(String),
}

/// The category label of a Disconnect category.
pub fn disconnect_category(c: &str) -> &'static str {
    match c {
        "Advertising" => "advertising",
        "Analytics" => "analytics",
        "Social" => "social",
        "Content" => "content",
        "Email" | "EmailAggressive" => "email",
        "FingerprintingInvasive" | "FingerprintingGeneral" => "fingerprinting",
        "Cryptomining" => "cryptomining",
        "ConsentManagers" => "consent",
        "Anti-fraud" => "anti_fraud",
        _ => "other",
    }
}

/// The category label of a Tracker Radar domain file (its first category), `other` when none.
pub fn radar_category(c: &str) -> &'static str {
    match c {
        "Advertising" | "Ad Motivated Tracking" | "Action Pixels" => "advertising",
        "Analytics" | "Audience Measurement" => "analytics",
        "Session Replay" => "session_replay",
        "Social - Comment" | "Social - Share" | "Social Network" => "social",
        "Tag Manager" => "tag_manager",
        "Third-Party Analytics Marketing" | "Marketing" => "marketing_automation",
        "Consent Management Platform" => "consent",
        _ => "other",
    }
}

/// Parses Disconnect's `services.json`. Categories other than `Content` block; duplicates (a
/// domain in several categories) keep the first blocking entry.
pub fn parse_disconnect(bytes: &[u8]) -> Result<OwnedList, OwnersError> {
    let v: Value = serde_json::from_slice(bytes)?;
    let cats = v
        .get("categories")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            OwnersError::Shape("no \"categories\" object (Disconnect services.json)".into())
        })?;
    let mut out = OwnedList::default();
    for (cat, entities) in cats {
        let category = disconnect_category(cat);
        let block = cat != "Content";
        let Some(entities) = entities.as_array() else {
            out.skipped.push(format!("category {cat:?}: not an array"));
            continue;
        };
        for entity in entities {
            let Some(entity) = entity.as_object() else {
                out.skipped
                    .push(format!("category {cat:?}: an entity that is not an object"));
                continue;
            };
            for (owner, urls) in entity {
                // { "Owner": { "https://owner.example/": ["domain", ...], "session-replay": "true" } }
                for domains in urls.as_object().into_iter().flat_map(|m| m.values()) {
                    for d in domains.as_array().into_iter().flatten() {
                        match d.as_str() {
                            Some(d) => out.push(d, owner, category, block),
                            None => out
                                .skipped
                                .push(format!("{owner}: a domain that is not a string")),
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Parses Tracker Radar JSON: an entity file, a domain file, or an array of them.
pub fn parse_tracker_radar(bytes: &[u8]) -> Result<OwnedList, OwnersError> {
    let v: Value = serde_json::from_slice(bytes)?;
    let items: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = OwnedList::default();
    for (i, item) in items.into_iter().enumerate() {
        let display = |o: &Value| {
            o.get("displayName")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .or_else(|| o.get("name").and_then(Value::as_str))
                .map(str::to_owned)
        };
        if let Some(domain) = item.get("domain").and_then(Value::as_str) {
            let Some(owner) = item.get("owner").and_then(display) else {
                out.skipped.push(format!("item {i} ({domain}): no owner"));
                continue;
            };
            let category = item
                .get("categories")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .and_then(Value::as_str)
                .map_or("other", radar_category);
            out.push(domain, &owner, category, true);
        } else if let Some(props) = item.get("properties").and_then(Value::as_array) {
            let Some(owner) = display(item) else {
                out.skipped
                    .push(format!("item {i}: an entity without a name"));
                continue;
            };
            for p in props {
                match p.as_str() {
                    Some(d) => out.push(d, &owner, "other", false),
                    None => out
                        .skipped
                        .push(format!("{owner}: a property that is not a string")),
                }
            }
        } else {
            return Err(OwnersError::Shape(format!(
                "item {i} is neither a Tracker Radar entity (\"properties\") nor a domain file (\"domain\")"
            )));
        }
    }
    Ok(out)
}

/// True when the start of a JSON file looks like Disconnect's `services.json`.
pub fn looks_like_disconnect(head: &str) -> bool {
    head.trim_start().starts_with('{') && head.contains("\"categories\"")
}

/// True when the start of a JSON file looks like Tracker Radar.
pub fn looks_like_tracker_radar(head: &str) -> bool {
    let t = head.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && (head.contains("\"properties\"") || head.contains("\"owner\""))
}

/// Compiles a Disconnect or Tracker Radar list: every domain carries its owner; domains the list
/// only names (Disconnect `Content`, Tracker Radar entity properties) have no action.
pub(super) fn compile(
    name: Arc<str>,
    source: ListSource,
    format: ListFormat,
    bytes: &[u8],
    path: &std::path::Path,
) -> CompiledList {
    let parsed = if format == ListFormat::Disconnect {
        parse_disconnect(bytes)
    } else {
        parse_tracker_radar(bytes)
    };
    let (list, error) = match parsed {
        Ok(l) => (l, None),
        Err(e) => (
            OwnedList::default(),
            Some(format!("{}: {e}", path.display())),
        ),
    };
    let mut attrs: Vec<Attr> = Vec::new();
    let mut index: std::collections::HashMap<(String, &'static str), u32> = Default::default();
    let mut b = MatcherBuilder::with_capacity(list.entries.len());
    for o in &list.entries {
        let vendor = slug(&o.owner);
        let key = (vendor, o.category);
        let next = attrs.len();
        let attr = *index.entry(key.clone()).or_insert_with(|| {
            attrs.push(Attr {
                vendor: Arc::from(if key.0.is_empty() {
                    "other"
                } else {
                    key.0.as_str()
                }),
                category: o.category,
                status: HostStatus::Block,
            });
            u32::try_from(next).unwrap_or(u32::MAX)
        });
        let action = if o.block { code::BLOCK } else { code::NONE };
        // A blocking entry beats a naming-only one for the same domain.
        b.insert(
            &o.domain,
            payload(action, action, Some(attr)),
            |old, new| {
                if old & 0xff == 0 { new } else { old }
            },
        );
    }
    let mut report = ParseReport {
        rules: list.entries.len() as u64,
        lines: (list.entries.len() + list.skipped.len()) as u64,
        ..ParseReport::default()
    };
    if !list.skipped.is_empty() {
        report
            .skipped_by_reason
            .insert("invalid_entry", list.skipped.len() as u64);
    }
    CompiledList {
        name,
        source,
        format,
        matcher: b.build(),
        cloak: Matcher::empty(),
        attrs,
        report,
        error,
        stamp: None,
        base: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISCONNECT: &[u8] =
        include_bytes!("../../tests/data/owners/disconnect-services-sample.json");
    const TR_ENTITY: &[u8] =
        include_bytes!("../../tests/data/owners/tracker-radar/comScore, Inc.json");
    const TR_DOMAIN: &[u8] =
        include_bytes!("../../tests/data/owners/tracker-radar/mouseflow.com.json");

    fn find<'a>(l: &'a OwnedList, d: &str) -> Vec<&'a Owned> {
        l.entries.iter().filter(|o| o.domain == d).collect()
    }

    #[test]
    fn disconnect_sample_parses_with_owner_category_and_block() {
        let l = match parse_disconnect(DISCONNECT) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert!(l.skipped.is_empty(), "{:?}", l.skipped);
        let ttd = find(&l, "adsrvr.org");
        assert_eq!(ttd.len(), 1);
        assert_eq!(
            (ttd[0].owner.as_str(), ttd[0].category, ttd[0].block),
            ("The Trade Desk", "advertising", true)
        );
        let si = find(&l, "siteimproveanalytics.io");
        assert_eq!(
            (si[0].owner.as_str(), si[0].category),
            ("SiteImprove", "analytics")
        );
        // the Content category names owners without blocking
        let cf = find(&l, "cloudflare.com");
        assert_eq!((cf[0].owner.as_str(), cf[0].block), ("Cloudflare", false));
        // an entity with an extra string field ("session-replay": "true") still parses
        assert_eq!(find(&l, "fullstory.com")[0].owner, "Fullstory");
        assert!(l.entries.len() > 30, "{}", l.entries.len());
    }

    #[test]
    fn tracker_radar_entity_names_owners_and_domain_file_blocks() {
        let e = match parse_tracker_radar(TR_ENTITY) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        let sc = find(&e, "scorecardresearch.com");
        assert_eq!((sc[0].owner.as_str(), sc[0].block), ("comScore", false));
        assert_eq!(e.entries.len(), 6);
        let d = match parse_tracker_radar(TR_DOMAIN) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(d.entries.len(), 1);
        assert_eq!(
            (
                d.entries[0].domain.as_str(),
                d.entries[0].owner.as_str(),
                d.entries[0].block
            ),
            ("mouseflow.com", "Mouseflow", true)
        );
        // an array of both, as `jq -s .` makes it
        let mut both = b"[".to_vec();
        both.extend_from_slice(TR_ENTITY);
        both.push(b',');
        both.extend_from_slice(TR_DOMAIN);
        both.push(b']');
        let a = match parse_tracker_radar(&both) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(a.entries.len(), 7);
    }

    #[test]
    fn bad_input_is_an_error_or_skipped_never_a_panic() {
        assert!(matches!(
            parse_disconnect(b"not json"),
            Err(OwnersError::Json(_))
        ));
        assert!(matches!(
            parse_disconnect(b"{\"x\": 1}"),
            Err(OwnersError::Shape(_))
        ));
        assert!(matches!(
            parse_tracker_radar(b"{\"x\": 1}"),
            Err(OwnersError::Shape(_))
        ));
        let l = parse_disconnect(
            br#"{"categories": {"Advertising": [{"Acme": {"https://a/": ["ok.example", "bad host", 7]}}, 3]}}"#,
        );
        let Ok(l) = l else { panic!("{l:?}") };
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.skipped.len(), 3, "{:?}", l.skipped);
        assert!(looks_like_disconnect(
            std::str::from_utf8(DISCONNECT).unwrap_or("")
        ));
        assert!(looks_like_tracker_radar(
            std::str::from_utf8(TR_ENTITY).unwrap_or("")
        ));
    }
}
