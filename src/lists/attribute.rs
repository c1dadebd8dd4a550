//! Vendor attribution for lists that carry none (domains, hosts, adblock, RPZ): when a snapshot
//! is built, every rule without a vendor is looked up in the owners that the loaded
//! catalogue-like lists know (tracker catalogues, Disconnect, Tracker Radar; most specific
//! domain wins, catalogues before Disconnect before Tracker Radar) and the list is recompiled
//! with the vendor in each rule's payload. The request path then reads the vendor exactly as it
//! reads a catalogue's: attribution costs nothing per query.
//!
//! An attributed list keeps the list it was made from and a key of the owner lists used, so a
//! rebuild with unchanged owner lists reuses it, and a changed owner list re-attributes from the
//! original rules.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;

use super::catalogue::HostStatus;
use super::{Attr, CompiledList, payload_attr};
use crate::config::ListFormat;
use crate::matcher::{Matcher, MatcherBuilder, QueryName};

/// True for the formats whose rules name their owner.
pub fn knows_owners(format: ListFormat) -> bool {
    matches!(
        format,
        ListFormat::Catalogue | ListFormat::Disconnect | ListFormat::TrackerRadar
    )
}

/// The owners known to a set of lists: domain → (vendor, category).
pub struct Owners {
    hosts: Matcher,
    attrs: Vec<(Arc<str>, &'static str)>,
    key: u64,
}

impl Owners {
    /// Collects the owners of every error-free catalogue-like list, in priority order.
    pub fn collect(lists: &[Arc<CompiledList>]) -> Owners {
        let rank = |f: ListFormat| match f {
            ListFormat::Catalogue => 0,
            ListFormat::Disconnect => 1,
            _ => 2,
        };
        let mut sources: Vec<&Arc<CompiledList>> = lists
            .iter()
            .filter(|l| knows_owners(l.format) && l.error.is_none())
            .collect();
        sources.sort_by_key(|l| rank(l.format));
        let mut hasher = DefaultHasher::new();
        let mut b = MatcherBuilder::new();
        let mut attrs: Vec<(Arc<str>, &'static str)> = Vec::new();
        let mut index: HashMap<(Arc<str>, &'static str), u32> = HashMap::new();
        for l in &sources {
            (Arc::as_ptr(l) as usize, &*l.name, l.matcher.len()).hash(&mut hasher);
            for (host, p) in l.matcher.iter() {
                let Some(a) = payload_attr(p).and_then(|i| l.attrs.get(i)) else {
                    continue;
                };
                let key = (a.vendor.clone(), a.category);
                let next = attrs.len();
                let i = *index.entry(key).or_insert_with(|| {
                    attrs.push((a.vendor.clone(), a.category));
                    u32::try_from(next).unwrap_or(u32::MAX)
                });
                b.insert(host, i, |old, _| old);
            }
        }
        Owners {
            hosts: b.build(),
            attrs,
            key: hasher.finish(),
        }
    }

    /// Number of owned domains known.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when no owner is known.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The owner of `host`: (vendor, category) of its most specific known domain.
    pub fn lookup(&self, host: &str) -> Option<(&Arc<str>, &'static str)> {
        let q = QueryName::new(host.as_bytes());
        let i = self.hosts.find(&q, |h| ControlFlow::Break(h.payload))?;
        self.attrs.get(i as usize).map(|(v, c)| (v, *c))
    }
}

/// Attributes every list of a snapshot that carries no owners of its own (see the module doc).
pub fn apply(lists: &mut [Arc<CompiledList>]) {
    let owners = Owners::collect(lists);
    for slot in lists.iter_mut() {
        if knows_owners(slot.format) {
            continue;
        }
        if let Some((_, key)) = &slot.base
            && *key == owners.key
        {
            continue;
        }
        let raw = slot
            .base
            .as_ref()
            .map_or_else(|| slot.clone(), |(b, _)| b.clone());
        *slot = attributed(&raw, &owners).map_or(raw, Arc::new);
    }
}

/// `raw` with an owner on every rule the owners know; `None` when they know none of its rules.
fn attributed(raw: &Arc<CompiledList>, owners: &Owners) -> Option<CompiledList> {
    if owners.is_empty() {
        return None;
    }
    let mut attrs = raw.attrs.clone();
    let mut index: HashMap<(*const u8, &'static str), u32> = HashMap::new();
    let mut b = MatcherBuilder::with_capacity(raw.matcher.len());
    let mut found = 0usize;
    for (host, p) in raw.matcher.iter() {
        let mut payload = p;
        if payload_attr(p).is_none()
            && let Some((vendor, category)) = owners.lookup(host)
        {
            let key = (Arc::as_ptr(vendor).cast::<u8>(), category);
            let next = attrs.len();
            let i = *index.entry(key).or_insert_with(|| {
                attrs.push(Attr {
                    vendor: vendor.clone(),
                    category,
                    status: HostStatus::Block,
                });
                u32::try_from(next).unwrap_or(u32::MAX)
            });
            payload = (p & 0xff) | ((i + 1) << 8);
            found += 1;
        }
        b.insert(host, payload, |old, _| old);
    }
    (found > 0).then(|| CompiledList {
        name: raw.name.clone(),
        source: raw.source.clone(),
        format: raw.format,
        matcher: b.build(),
        cloak: raw.cloak.clone(),
        attrs,
        report: raw.report.clone(),
        error: raw.error.clone(),
        stamp: raw.stamp,
        base: Some((raw.clone(), owners.key)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FetchOpts, ListConfig, ListSource};
    use crate::lists::compile_bytes;

    const DISCONNECT: &[u8] =
        include_bytes!("../../tests/data/owners/disconnect-services-sample.json");

    fn compile(name: &str, format: ListFormat, bytes: &[u8]) -> Arc<CompiledList> {
        let cfg = ListConfig {
            name: name.to_owned(),
            source: ListSource::File(format!("{name}.list").into()),
            format: Some(format),
            fetch: FetchOpts::default(),
        };
        Arc::new(compile_bytes(&cfg, bytes, std::path::Path::new(name)))
    }

    fn vendor_of(l: &CompiledList, host: &str) -> Option<String> {
        let p = l.matcher.get(host)?;
        payload_attr(p)
            .and_then(|i| l.attrs.get(i))
            .map(|a| format!("{}/{}", a.vendor, a.category))
    }

    #[test]
    fn attributes_once_reuses_and_re_attributes_when_owners_change() {
        let plain = compile(
            "plain",
            ListFormat::Domains,
            b"adsrvr.org\nnobody.example\n",
        );
        let owners = compile("dc", ListFormat::Disconnect, DISCONNECT);
        assert!(owners.error.is_none(), "{:?}", owners.error);
        let mut lists = vec![plain.clone(), owners.clone()];
        apply(&mut lists);
        let first = lists[0].clone();
        assert_eq!(
            vendor_of(&first, "adsrvr.org").as_deref(),
            Some("the_trade_desk/advertising")
        );
        assert_eq!(vendor_of(&first, "nobody.example"), None);
        assert!(
            first
                .base
                .as_ref()
                .is_some_and(|(b, _)| Arc::ptr_eq(b, &plain))
        );
        assert!(
            Arc::ptr_eq(&lists[1], &owners),
            "owner lists are left alone"
        );

        // Same owner lists: the attributed list is reused as it is.
        apply(&mut lists);
        assert!(Arc::ptr_eq(&lists[0], &first));

        // A reloaded owner list: re-attributed from the list as compiled, not from the result.
        lists[1] = compile("dc", ListFormat::Disconnect, DISCONNECT);
        apply(&mut lists);
        assert!(!Arc::ptr_eq(&lists[0], &first));
        assert!(
            lists[0]
                .base
                .as_ref()
                .is_some_and(|(b, _)| Arc::ptr_eq(b, &plain))
        );
        assert_eq!(lists[0].attrs.len(), first.attrs.len());

        // No owner lists any more: back to the list as compiled.
        lists.truncate(1);
        apply(&mut lists);
        assert!(Arc::ptr_eq(&lists[0], &plain));
    }
}
