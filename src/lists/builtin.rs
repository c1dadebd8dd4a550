//! Lists built from the built-in catalogue for zones that need them beyond `[lists]`: the whole
//! catalogue for a zone's `block_vendors` (when no configured list is it), and one category,
//! every status, for `watch = ["catalogue:server_side"]`.

use std::sync::Arc;

use super::catalogue::{self, Catalogue, HostStatus};
use super::parse::ParseReport;
use super::{Attr, CompiledList, code, compile_catalogue, merge, payload};
use crate::config::{ListFormat, ListSource};
use crate::matcher::{Matcher, MatcherBuilder};

/// The built-in catalogue compiled as a list named `name` (the hosts of a zone's `block_vendors`
/// when the zone does not block the catalogue whole).
pub fn builtin_catalogue(name: &str) -> CompiledList {
    let source = ListSource::Builtin("trackers".into());
    match Catalogue::builtin() {
        Ok(c) => compile_catalogue(Arc::from(name), source, &c),
        Err(e) => CompiledList {
            name: Arc::from(name),
            source,
            format: ListFormat::Catalogue,
            matcher: Matcher::empty(),
            cloak: Matcher::empty(),
            attrs: Vec::new(),
            report: ParseReport::default(),
            error: Some(format!("builtin:trackers: {e}")),
            stamp: None,
            base: None,
        },
    }
}

/// The built-in catalogue's hosts of one category, whatever their status, as a list named `name`
/// whose every rule matches (a zone's `watch = ["catalogue:server_side"]`).
pub fn builtin_category(name: &str, category: catalogue::Category) -> CompiledList {
    let mut list = builtin_catalogue(name);
    let Ok(c) = Catalogue::builtin() else {
        return list;
    };
    let mut attrs: Vec<Attr> = Vec::new();
    let mut b = MatcherBuilder::new();
    let mut rules = 0u64;
    for (host, vendor, cat, _) in c.category_hosts(category) {
        let vid = c.vendors.get(vendor).map_or("other", |v| v.id.as_str());
        let attr = match attrs.iter().position(|a| &*a.vendor == vid) {
            Some(i) => i,
            None => {
                attrs.push(Attr {
                    vendor: Arc::from(vid),
                    category: cat.as_str(),
                    status: HostStatus::Block,
                });
                attrs.len() - 1
            }
        };
        b.insert(
            host,
            payload(code::BLOCK, code::BLOCK, Some(attr as u32)),
            merge,
        );
        rules += 1;
    }
    list.matcher = b.build();
    list.cloak = Matcher::empty();
    list.attrs = attrs;
    list.report = ParseReport {
        rules,
        lines: rules,
        ..ParseReport::default()
    };
    list
}
