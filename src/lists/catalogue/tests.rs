//! Tests of the catalogue: the built-in data, parsing, and every validation rule.

use std::collections::HashSet;

use super::schema::VENDOR_KEYS;
use super::*;
use crate::lists::name;

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

#[test]
fn server_side_endpoints_are_watched_never_blocked() {
    let c = builtin();
    let server_side: Vec<(&str, &str)> = c
        .category_hosts(Category::ServerSide)
        .map(|(h, vi, _, s)| {
            assert_eq!(s, HostStatus::Shared, "{h}");
            (h, c.vendors[vi].id.as_str())
        })
        .collect();
    for want in [
        ("graph.facebook.com", "meta"),
        ("www.google-analytics.com", "google"),
        ("googleads.googleapis.com", "google"),
        ("business-api.tiktok.com", "tiktok"),
        ("api.linkedin.com", "linkedin"),
    ] {
        assert!(server_side.contains(&want), "{want:?}");
    }
    // Never blocked as such: business-api.tiktok.com is no block host of any category.
    assert!(
        !c.blockable(true)
            .any(|(h, ..)| h == "business-api.tiktok.com")
    );
    // all_hosts (explain's "shared" lookup) leaves the repeated server_side entries out.
    assert!(
        !c.all_hosts()
            .any(|(_, _, cat, _)| cat == Category::ServerSide)
    );
}
