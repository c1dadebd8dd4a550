//! Tests of the catalogue's breadth and sourcing (issue 17): at least 80 vendors, each sourced;
//! hosts cited only from vendor documentation appear in that documentation's description; no
//! host in two vendors; nothing blocked under a `do_not_block` host; every source dated.

use std::collections::HashMap;

use super::*;

/// Source tags that are whole tracker lists (checked against the lists themselves by
/// `pixelguard catalogue check --against`), as opposed to a vendor page quoted in `[sources]`.
const LIST_TAGS: &[&str] = &["EP", "EL", "GT", "TR", "AG", "DC"];

fn builtin() -> Catalogue {
    match Catalogue::builtin() {
        Ok(c) => c,
        Err(e) => panic!("built-in catalogue is invalid: {e}"),
    }
}

/// True when `text` names `host` or a wildcard over a parent of it (`*.example.com`), with no
/// name character directly before it (so `a.example.com` does not count as `xa.example.com`).
fn names_host(text: &str, host: &str) -> bool {
    let mut candidates = vec![host.to_owned()];
    let mut rest = host;
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.contains('.') {
            candidates.push(format!("*.{parent}"));
        }
        rest = parent;
    }
    candidates.iter().any(|c| {
        text.match_indices(c.as_str()).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + c.len()..].chars().next();
            !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == '-' || b == '.')
                && !after.is_some_and(|a| a.is_ascii_alphanumeric() || a == '-')
        })
    })
}

#[test]
fn at_least_80_vendors_each_with_hosts_and_sources() {
    let c = builtin();
    assert!(c.vendors.len() >= 80, "{} vendors", c.vendors.len());
    let with_blockable = c
        .vendors
        .iter()
        .filter(|v| {
            v.categories
                .iter()
                .any(|k| !k.block.is_empty() || !k.caution.is_empty())
        })
        .count();
    assert!(
        with_blockable >= 80,
        "{with_blockable} vendors can be blocked"
    );
    for v in &c.vendors {
        for k in &v.categories {
            assert!(!k.sources.is_empty(), "{}.{}", v.id, k.category);
            assert!(
                k.notes.as_deref().is_some_and(|n| n.len() >= 20),
                "{}.{}: breakage notes missing",
                v.id,
                k.category
            );
        }
    }
    println!(
        "catalogue: {} vendors, {} block hosts, {} more in strict zones",
        c.vendors.len(),
        c.blockable(false).count(),
        c.blockable(true).count() - c.blockable(false).count()
    );
}

#[test]
fn hosts_from_vendor_documentation_appear_in_it() {
    let c = builtin();
    let mut checked = 0;
    for v in &c.vendors {
        for k in &v.categories {
            if k.sources.iter().any(|s| LIST_TAGS.contains(&s.as_str())) {
                continue;
            }
            let cited: Vec<&str> = k
                .sources
                .iter()
                .filter_map(|s| c.sources.get(s).map(String::as_str))
                .collect();
            for h in k.block.iter().chain(&k.caution).chain(&k.shared) {
                assert!(
                    cited.iter().any(|text| names_host(text, h)),
                    "vendor.{}.{}: {h} is not named by its sources {:?}",
                    v.id,
                    k.category,
                    k.sources
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "{checked}"); // Silktide, LogRocket, Adobe Target today
}

#[test]
fn names_host_needs_a_boundary() {
    assert!(names_host(
        "script from analytics.silktide.com;",
        "analytics.silktide.com"
    ));
    assert!(names_host(
        "img-src *.siteimproveanalytics.io",
        "x.siteimproveanalytics.io"
    ));
    assert!(!names_host(
        "img-src *.siteimproveanalytics.io",
        "siteimproveanalytics.io.evil"
    ));
    assert!(!names_host(
        "data.analytics.silktide.com",
        "analytics.silktide.com"
    ));
    assert!(!names_host(
        "analytics.silktide.community",
        "analytics.silktide.com"
    ));
}

#[test]
fn no_host_in_two_vendors() {
    let c = builtin();
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (h, vi, ..) in c.all_hosts() {
        let id = c.vendors[vi].id.as_str();
        if let Some(first) = owner.insert(h, id) {
            panic!("{h} is listed by {first} and {id}");
        }
    }
    assert!(owner.len() > 400, "{}", owner.len());
}

#[test]
fn nothing_is_blocked_under_a_do_not_block_host() {
    let c = builtin();
    let infra: Vec<&str> = c
        .vendors
        .iter()
        .flat_map(|v| &v.categories)
        .filter(|k| k.category == Category::DoNotBlock)
        .flat_map(|k| k.shared.iter().map(String::as_str))
        .collect();
    assert!(infra.contains(&"gstatic.com") && infra.contains(&"cookielaw.org"));
    for (h, vi, ..) in c.blockable(true) {
        for i in &infra {
            assert!(
                h != *i && !h.ends_with(&format!(".{i}")),
                "{}: {h} is under do_not_block {i}",
                c.vendors[vi].id
            );
        }
    }
    // and the validator rejects it, naming the entry
    let text = r#"
[sources]
EP = "EasyPrivacy"

[vendor.acme]
name = "Acme"

[vendor.acme.do_not_block]
shared = ["static.acme.example"]
sources = ["EP"]

[vendor.acme.analytics]
caution = ["beacon.static.acme.example"]
sources = ["EP"]
"#;
    match Catalogue::parse(text) {
        Err(CatalogueError::Invalid { path, reason }) => {
            assert_eq!(path, "vendor.acme.analytics.caution[0]");
            assert!(
                reason.contains("vendor.acme.do_not_block.shared[0]"),
                "{reason}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}
