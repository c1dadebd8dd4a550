//! Checks of `[[exceptions]]` and of the catalogue vendor ids that zones and exceptions name:
//! every exception needs `until` (a date or RFC 3339 time) and a `reason`, names at least one
//! known zone and at least one vendor or name; vendor ids must be vendors of the built-in
//! catalogue (`blocklists/trackers.toml`), read here from the same embedded text the lists use.

use std::sync::OnceLock;

use toml::Spanned;

use super::super::ZoneConfig;
use super::super::exceptions::{ExceptionConfig, parse_until};
use super::super::raw::RawConfig;
use super::Ctx;

/// The built-in catalogue (the config layer reads only its vendor ids).
const CATALOGUE: &str = include_str!("../../../blocklists/trackers.toml");

/// The vendor ids of the built-in catalogue, in name order.
pub fn catalogue_vendors() -> &'static [String] {
    static IDS: OnceLock<Vec<String>> = OnceLock::new();
    IDS.get_or_init(|| {
        let table: toml::Table = CATALOGUE.parse().unwrap_or_default();
        let mut ids: Vec<String> = table
            .get("vendor")
            .and_then(|v| v.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    })
}

/// Vendor ids of `key` (a zone's `block_vendors` / `allow_vendors`, an exception's `vendors`):
/// each must be a catalogue vendor.
pub(super) fn check(cx: &mut Ctx<'_>, key: &str, v: &[Spanned<String>]) -> Vec<String> {
    let known = catalogue_vendors();
    let mut out = Vec::new();
    for (i, id) in v.iter().enumerate() {
        let s = id.get_ref().trim().to_ascii_lowercase();
        if known.binary_search(&s).is_ok() {
            if !out.contains(&s) {
                out.push(s);
            }
        } else {
            let near: Vec<&str> = known
                .iter()
                .filter(|k| k.starts_with(s.get(..2).unwrap_or(&s)))
                .map(String::as_str)
                .take(8)
                .collect();
            let hint = if near.is_empty() {
                "see the [vendor.<id>] tables of blocklists/trackers.toml".to_owned()
            } else {
                format!("similar: {}", near.join(", "))
            };
            cx.spanned(
                id,
                format!(
                    "{key}[{i}]: unknown vendor {:?}; expected a catalogue vendor id ({hint})",
                    id.get_ref()
                ),
            );
        }
    }
    out
}

/// A name of an exception: lower case, no trailing dot; `None` when it is not a DNS name.
fn name(s: &str) -> Option<String> {
    let n = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(n)
}

/// `[[exceptions]]`, in file order. `zones` are the validated zones (an exception naming
/// another zone is an error).
pub(super) fn exceptions(
    cx: &mut Ctx<'_>,
    raw: &RawConfig,
    zones: &[ZoneConfig],
) -> Vec<ExceptionConfig> {
    let mut out = Vec::new();
    for (index, e) in raw.exceptions.iter().enumerate() {
        let er = e.get_ref();
        let key = format!("exceptions[{index}]");
        let mut ok = true;
        let mut ez = Vec::new();
        for (i, z) in er.zones.iter().enumerate() {
            if zones.iter().any(|c| c.name == *z.get_ref()) {
                ez.push(z.get_ref().clone());
            } else {
                let names: Vec<&str> = zones.iter().map(|c| c.name.as_str()).collect();
                cx.spanned(
                    z,
                    format!(
                        "{key}.zones[{i}]: unknown zone {:?}; defined: {}",
                        z.get_ref(),
                        if names.is_empty() {
                            "(none)".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                );
                ok = false;
            }
        }
        if er.zones.is_empty() {
            cx.spanned(e, format!("{key}.zones: missing or empty; expected the zones it applies in, e.g. zones = [\"recruitment\"]"));
            ok = false;
        }
        let before = cx.errors.len();
        let vendors = check(cx, &format!("{key}.vendors"), &er.vendors);
        ok &= cx.errors.len() == before;
        let mut names = Vec::new();
        for (i, n) in er.names.iter().enumerate() {
            match name(n.get_ref()) {
                Some(n) => names.push(n),
                None => {
                    cx.spanned(n, format!("{key}.names[{i}]: {:?} is not a DNS name; expected e.g. \"px.ads.linkedin.com\"", n.get_ref()));
                    ok = false;
                }
            }
        }
        if er.vendors.is_empty() && er.names.is_empty() {
            cx.spanned(e, format!("{key}: neither vendors nor names; expected vendors = [\"linkedin\"] and/or names = [\"px.ads.linkedin.com\"]"));
            ok = false;
        }
        let until = match &er.until {
            None => {
                cx.spanned(e, format!("{key}.until: missing; every exception ends: expected a date (\"2027-03-31\", the end of that day, UTC) or an RFC 3339 time (\"2027-03-31T17:00:00Z\")"));
                None
            }
            Some(u) => {
                let t = parse_until(u.get_ref());
                if t.is_none() {
                    cx.spanned(u, format!("{key}.until: {:?} is not a date or time; expected a date (\"2027-03-31\", the end of that day, UTC) or an RFC 3339 time (\"2027-03-31T17:00:00Z\")", u.get_ref()));
                }
                t
            }
        };
        let reason = match &er.reason {
            Some(r) if !r.get_ref().trim().is_empty() => Some(r.get_ref().trim().to_owned()),
            Some(r) => {
                cx.spanned(
                    r,
                    format!("{key}.reason: empty; say why the exception exists"),
                );
                None
            }
            None => {
                cx.spanned(e, format!("{key}.reason: missing; say why the exception exists, e.g. reason = \"Recruitment campaign 2027 Q1\""));
                None
            }
        };
        let ticket = match &er.ticket {
            Some(t) if t.get_ref().trim().is_empty() => {
                cx.spanned(
                    t,
                    format!("{key}.ticket: empty; give a ticket or leave the key out"),
                );
                None
            }
            t => t.as_ref().map(|t| t.get_ref().trim().to_owned()),
        };
        if let (true, Some(until), Some(reason)) = (ok, until, reason) {
            out.push(ExceptionConfig {
                zones: ez,
                vendors,
                names,
                until,
                reason,
                ticket,
                index,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::super::Overrides;
    use super::super::validate;

    const HEAD: &str = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n\
        [lists.trackers]\nsource = \"builtin:trackers\"\n\
        [zones.hr]\nnetworks = [\"10.1.0.0/16\"]\nblock = [\"trackers\"]\n";

    fn load(extra: &str) -> Result<super::super::super::Config, String> {
        validate(
            &format!("{HEAD}{extra}"),
            "t.toml",
            Path::new("/etc/pg"),
            &Overrides::default(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_complete_exception_loads_with_its_label() {
        let c = load(
            "[[exceptions]]\nzones = [\"hr\"]\nvendors = [\"linkedin\"]\nnames = [\"PX.Example.test.\"]\n\
             until = \"2027-03-31\"\nreason = \"campaign\"\nticket = \"INC-4411\"\n\
             [[exceptions]]\nzones = [\"hr\"]\nnames = [\"a.test\"]\nuntil = \"2027-03-31T17:00:00Z\"\nreason = \"r\"\n",
        )
        .unwrap();
        assert_eq!(c.exceptions.len(), 2);
        assert_eq!(c.exceptions[0].label(), "INC-4411");
        assert_eq!(c.exceptions[0].names, ["px.example.test"]);
        assert_eq!(c.exceptions[1].label(), "exceptions[1]");
    }

    #[test]
    fn missing_or_wrong_keys_are_errors_at_their_line() {
        let e =
            load("[[exceptions]]\nzones = [\"hr\"]\nvendors = [\"linkedin\"]\nreason = \"r\"\n")
                .unwrap_err();
        assert!(
            e.contains("t.toml:10:") && e.contains("until: missing"),
            "{e}"
        );
        let e = load(
            "[[exceptions]]\nzones = [\"hr\"]\nvendors = [\"linkedin\"]\nuntil = \"2027-03-31\"\n",
        )
        .unwrap_err();
        assert!(e.contains("reason: missing"), "{e}");
        let e = load(
            "[[exceptions]]\nzones = [\"hq\"]\nvendors = [\"linkdin\"]\nuntil = \"soon\"\nreason = \"r\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("t.toml:11:") && e.contains("unknown zone \"hq\"; defined: hr"),
            "{e}"
        );
        assert!(
            e.contains("t.toml:12:") && e.contains("unknown vendor \"linkdin\""),
            "{e}"
        );
        assert!(
            e.contains("t.toml:13:") && e.contains("\"soon\" is not a date"),
            "{e}"
        );
    }

    #[test]
    fn zone_vendor_keys_trials_and_watch_are_checked() {
        let c = load(
            "[zones.web]\nnetworks = [\"10.2.0.0/16\"]\nblock = [{ list = \"trackers\", mode = \"log\" }]\n\
             block_vendors = [\"meta\"]\nallow_vendors = [\"LinkedIn\"]\nwatch = [\"catalogue:server_side\"]\n",
        )
        .unwrap();
        let web = c.zones.iter().find(|z| z.name == "web").unwrap();
        assert_eq!(web.trial, ["trackers"]);
        assert!(web.block.is_empty());
        assert_eq!(web.block_vendors, ["meta"]);
        assert_eq!(web.allow_vendors, ["linkedin"]);
        assert_eq!(web.watch, ["catalogue:server_side"]);
        let e = load(
            "[zones.web]\nnetworks = [\"10.2.0.0/16\"]\nblock = [{ list = \"trackers\", mode = \"maybe\" }]\n\
             block_vendors = [\"nobody\"]\nwatch = [\"catalogue:everything\", \"nolist\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("block[0].mode: unknown mode \"maybe\""), "{e}");
        assert!(
            e.contains("zones.web.block_vendors[0]: unknown vendor \"nobody\""),
            "{e}"
        );
        assert!(
            e.contains("unknown catalogue selection \"catalogue:everything\""),
            "{e}"
        );
        assert!(
            e.contains("zones.web.watch[1]: undefined list \"nolist\""),
            "{e}"
        );
    }
}
