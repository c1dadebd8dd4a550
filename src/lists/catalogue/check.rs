//! `pixelguard catalogue check`: keeps the catalogue current against lists that name owners
//! (Disconnect's services.json, Tracker Radar JSON). It reports catalogue hosts that a list
//! attributes to a different owner, tracker domains a list gives to a catalogue vendor that the
//! catalogue does not cover, and vendors whose newest dated source is older than the allowed age.
//! It only reports: the maintainer decides (a list can be wrong, as the notes of the catalogue
//! say about shared or cloaked hosts).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Catalogue, Vendor};
use crate::lists::owners::{self, OwnedList};

/// What to check against.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Ownership lists (Disconnect services.json or Tracker Radar JSON; format from content).
    pub against: Vec<PathBuf>,
    /// Sources older than this many days make a vendor stale.
    pub max_age_days: u32,
    /// Today as `YYYY-MM-DD` (for reproducible output); `None` = the system clock.
    pub today: Option<String>,
}

/// The findings; [`CheckReport::render`] prints them.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// (list file, catalogue host, catalogue vendor id, the list's owner of it).
    pub conflicts: Vec<(String, String, String, String)>,
    /// (list file, tracker domain, catalogue vendor id the list's owner maps to, owner).
    pub missing: Vec<(String, String, String, String)>,
    /// (vendor id, newest source date, or `None` when no source carries a date).
    pub stale: Vec<(String, Option<String>)>,
    /// Lines summarising each list read.
    pub lists: Vec<String>,
}

/// Lower-case letters and digits only, for comparing owner names.
fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// True when a list's owner name is this vendor: it equals the vendor id or a company named in
/// parentheses ("Smartlook (Cisco)" for "Cisco"), or (four letters or more) the display name's
/// first word or its start. A trailing "Group", "Inc", "Ltd" and the like is ignored.
pub fn same_owner(v: &Vendor, owner: &str) -> bool {
    let mut o = squash(owner);
    for suffix in [
        "group",
        "inc",
        "ltd",
        "limited",
        "corporation",
        "corp",
        "llc",
        "gmbh",
        "plc",
    ] {
        if o.len() > suffix.len() + 3 && o.ends_with(suffix) {
            o.truncate(o.len() - suffix.len());
            break;
        }
    }
    if o.len() < 3 {
        return false;
    }
    let name = squash(&v.name);
    let first = v
        .name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    let in_parens = v
        .name
        .split('(')
        .skip(1)
        .filter_map(|p| p.split(')').next())
        .flat_map(|p| p.split([',', '/', ';']))
        .any(|part| squash(part) == o);
    o == squash(&v.id)
        || in_parens
        || (o.len() >= 4 && (o == squash(first) || name.starts_with(&o)))
}

/// Reads one ownership list, its format guessed from the content.
pub fn read_owned(path: &Path) -> Result<OwnedList, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]);
    let parsed = if owners::looks_like_disconnect(&head) {
        owners::parse_disconnect(&bytes)
    } else if owners::looks_like_tracker_radar(&head) {
        owners::parse_tracker_radar(&bytes)
    } else {
        return Err(format!(
            "{}: not a Disconnect services.json or Tracker Radar JSON file (lists without owners, \
             such as EasyPrivacy, cannot be checked for ownership)",
            path.display()
        ));
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Every `YYYY-MM` or `YYYY-MM-DD` date in `text` (a month counts as its first day), as days.
fn dates_in(text: &str) -> Vec<(i64, String)> {
    let b = text.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let mut out = Vec::new();
    for i in 0..b.len() {
        let Some(w) = b.get(i..i + 7) else { break };
        let fresh = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if !fresh || !digits(&w[..4]) || w[4] != b'-' || !digits(&w[5..7]) {
            continue;
        }
        let num = |s: &[u8]| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
        };
        let (Some(y), Some(m)) = (num(&w[..4]), num(&w[5..7])) else {
            continue;
        };
        let day = b
            .get(i + 7..i + 10)
            .filter(|t| t[0] == b'-' && digits(&t[1..]))
            .and_then(|t| num(&t[1..]));
        if (1990..=2200).contains(&y)
            && (1..=12).contains(&m)
            && day.is_none_or(|d| (1..=31).contains(&d))
        {
            let len = if day.is_some() { 10 } else { 7 };
            out.push((days(y, m, day.unwrap_or(1)), text[i..i + len].to_owned()));
        }
    }
    out
}

/// Today in days since 1970-01-01, from `YYYY-MM-DD` or the system clock.
fn today(given: Option<&str>) -> Result<i64, String> {
    let text = match given {
        Some(t) => t.to_owned(),
        None => humantime::format_rfc3339(std::time::SystemTime::now()).to_string(),
    };
    match dates_in(&text).first() {
        Some((d, s)) if s.len() == 10 && text.starts_with(s.as_str()) => Ok(*d),
        _ => Err(format!("--today {text:?}: expected YYYY-MM-DD")),
    }
}

/// Runs the checks.
pub fn check(c: &Catalogue, opts: &CheckOptions) -> Result<CheckReport, String> {
    let now = today(opts.today.as_deref())?;
    let mut r = CheckReport::default();
    for path in &opts.against {
        let list = read_owned(path)?;
        let label = path.display().to_string();
        r.lists.push(format!(
            "{label}: {} domains ({} tracker domains), {} items skipped",
            list.entries.len(),
            list.entries.iter().filter(|o| o.block).count(),
            list.skipped.len()
        ));
        // Owner per list domain; a domain listed twice keeps its first owner.
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for o in &list.entries {
            owner.entry(o.domain.as_str()).or_insert(o.owner.as_str());
        }
        let covering = |host: &str| -> Option<&str> {
            let mut rest = host;
            loop {
                if let Some(o) = owner.get(rest) {
                    return Some(o);
                }
                rest = rest.split_once('.')?.1;
            }
        };
        for (host, vi, ..) in c.all_hosts() {
            let v = &c.vendors[vi];
            if let Some(o) = covering(host)
                && !same_owner(v, o)
            {
                r.conflicts
                    .push((label.clone(), host.to_owned(), v.id.clone(), o.to_owned()));
            }
        }
        let catalogued: Vec<&str> = c.all_hosts().map(|(h, ..)| h).collect();
        let covered = |d: &str| {
            catalogued.iter().any(|h| {
                *h == d
                    || d.strip_suffix(h).is_some_and(|p| p.ends_with('.'))
                    || h.strip_suffix(d).is_some_and(|p| p.ends_with('.'))
            })
        };
        for o in list.entries.iter().filter(|o| o.block) {
            let Some(v) = c.vendors.iter().find(|v| same_owner(v, &o.owner)) else {
                continue;
            };
            if !covered(&o.domain) {
                r.missing.push((
                    label.clone(),
                    o.domain.clone(),
                    v.id.clone(),
                    o.owner.clone(),
                ));
            }
        }
    }
    let limit = now - i64::from(opts.max_age_days);
    for v in &c.vendors {
        let newest = v
            .categories
            .iter()
            .flat_map(|k| &k.sources)
            .filter_map(|s| c.sources.get(s))
            .flat_map(|text| dates_in(text))
            .max();
        match newest {
            Some((d, _)) if d >= limit => {}
            other => r.stale.push((v.id.clone(), other.map(|(_, s)| s))),
        }
    }
    Ok(r)
}

/// `pixelguard catalogue check`: checks the built-in catalogue (or `catalogue`, a TOML file) and
/// returns the report to print, or why it could not run.
pub fn run(catalogue: Option<&Path>, opts: &CheckOptions) -> Result<String, String> {
    let c = match catalogue {
        None => Catalogue::builtin().map_err(|e| e.to_string())?,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Catalogue::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
    };
    Ok(check(&c, opts)?.render(opts.max_age_days))
}

impl CheckReport {
    /// The report as printed by `pixelguard catalogue check`.
    pub fn render(&self, max_age_days: u32) -> String {
        let mut s = String::new();
        for l in &self.lists {
            let _ = writeln!(s, "list      {l}");
        }
        let _ = writeln!(
            s,
            "\n{} catalogue host(s) attributed to a different owner:",
            self.conflicts.len()
        );
        for (list, host, vendor, owner) in &self.conflicts {
            let _ = writeln!(s, "  {host}: catalogue {vendor}, {list}: {owner}");
        }
        let _ = writeln!(
            s,
            "\n{} tracker domain(s) of catalogue vendors missing from the catalogue:",
            self.missing.len()
        );
        for (list, domain, vendor, owner) in &self.missing {
            let _ = writeln!(s, "  {domain}: {owner} (vendor.{vendor}) in {list}");
        }
        let _ = writeln!(
            s,
            "\n{} vendor(s) whose newest dated source is older than {max_age_days} days or undated:",
            self.stale.len()
        );
        for (vendor, date) in &self.stale {
            let _ = writeln!(
                s,
                "  vendor.{vendor}: {}",
                date.as_deref().unwrap_or("no dated source")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendor(id: &str, name: &str) -> Vendor {
        Vendor {
            id: id.to_owned(),
            name: name.to_owned(),
            categories: Vec::new(),
        }
    }

    #[test]
    fn owner_names_match_vendors_strictly() {
        let x = vendor("x", "X Corp. (Twitter) - X Pixel / universal website tag");
        assert!(same_owner(&x, "Twitter"));
        assert!(!same_owner(&x, "Fox One Stop Media"));
        let lotame = vendor("lotame", "Lotame (Publicis Groupe / Epsilon)");
        assert!(same_owner(&lotame, "PublicisGroupe"));
        let nr = vendor("newrelic", "New Relic Browser (RUM)");
        assert!(same_owner(&nr, "New Relic"));
        let ias = vendor("ias", "Integral Ad Science");
        assert!(!same_owner(&ias, "Digital Media Solutions"));
        assert!(same_owner(&ias, "Integral Ad Science"));
        let dd = vendor("dotdigital", "Dotdigital");
        assert!(same_owner(&dd, "dotdigital Group"));
        assert!(same_owner(&vendor("comscore", "Comscore"), "comScore, Inc"));
        let ttd = vendor(
            "thetradedesk",
            "The Trade Desk (incl. Unified ID 2.0 / EUID)",
        );
        assert!(same_owner(&ttd, "The Trade Desk"));
        assert!(!same_owner(&ttd, "The"));
    }

    #[test]
    fn dates_and_days() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(days(2000, 3, 1), 11_017);
        assert_eq!(days(2026, 12, 3) - days(2025, 12, 3), 365);
        let d: Vec<String> = dates_in("built 2025-10-31, seen 2026-12; v1.0.945, x2026-01")
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        assert_eq!(d, ["2025-10-31", "2026-12"]);
        assert!(today(Some("2026-13-01")).is_err());
        assert_eq!(today(Some("2026-12-03")), Ok(days(2026, 12, 3)));
        assert!(today(None).is_ok());
    }
}
