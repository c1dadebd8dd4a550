//! The `check` and `lists` commands: "is this config right?" and "what state is each list in?".
//! `check` loads the config and every list exactly as the daemon does (same snapshot builder) and
//! needs no network; `lists update` downloads remote lists once.

/// Writes to stdout, ignoring errors: `pixelguard check | head` must end quietly when the reader
/// closes the pipe, not panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Like [`outln!`] without the newline.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

use std::fmt::Write as _;

use crate::command::CommandError;
use crate::config::{Config, ConfigSource, ListSource};
use crate::lists::CompiledList;
use crate::snapshot::{Snapshot, summary};

/// `pixelguard check`: `Ok` if the config is valid (lists that cannot be read are warnings, as
/// the daemon starts without them), [`CommandError::Config`] with every error otherwise.
pub fn check(source: &ConfigSource) -> Result<(), CommandError> {
    let config = source.load()?;
    let origin = config.origin.clone();
    let listen = config.server.listen.clone();
    let downloads = list_downloads(&config);
    let supply = crate::lists::supply::ListSupply::new(&config.state_dir);
    let snap = Snapshot::build(config, None, Some(&supply));
    outln!("{origin}: ok");
    for line in summary(&snap, &listen) {
        outln!("  {line}");
    }
    outln!("  {downloads}");
    for line in exception_report(&snap.config, std::time::SystemTime::now()) {
        outln!("{line}");
    }
    for l in &snap.lists {
        out!("{}", list_report(l));
    }
    // Remote lists: what the disk copy in state_dir says (check does not download).
    for (name, url, st) in supply.status() {
        let age = |t: u64| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            humantime::format_duration(std::time::Duration::from_secs(now.saturating_sub(t)))
                .to_string()
        };
        outln!(
            "  remote {name}: {url}: {} entries from the disk copy{}, {}{}",
            st.entries,
            st.last_success
                .map(|t| format!(" downloaded {} ago", age(t)))
                .unwrap_or_default(),
            if st.stale {
                "stale until the daemon downloads it"
            } else {
                "fresh"
            },
            st.last_failure
                .as_ref()
                .map(|(t, r)| format!(", last failure {r} {} ago", age(*t)))
                .unwrap_or_default()
        );
    }
    let missing = snap.lists.iter().filter(|l| l.error.is_some()).count();
    if missing > 0 {
        outln!("warning: {missing} list(s) not loaded; the daemon would start without them");
    }
    Ok(())
}

/// The `[[exceptions]]` at `now`: one line each (label, zones, what it lifts, its end, days
/// left, reason), then a warning for each that ends within 14 days and a line for each that has
/// ended (no longer applied: remove it, or extend it with a new `until` and reason).
pub fn exception_report(config: &Config, now: std::time::SystemTime) -> Vec<String> {
    use crate::config::ExceptionState;
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for e in &config.exceptions {
        let until = humantime::format_rfc3339_seconds(e.until);
        let mut what = e
            .vendors
            .iter()
            .map(|v| format!("vendor {v}"))
            .collect::<Vec<_>>();
        what.extend(e.names.iter().map(|n| format!("name {n}")));
        let state = e.state(now);
        out.push(format!(
            "  exception {}: zones {}: {}; until {until} ({}); reason: {}",
            e.label(),
            e.zones.join(", "),
            what.join(", "),
            match state {
                ExceptionState::Expired => "expired".to_owned(),
                _ => format!("{} days left", e.days_left(now)),
            },
            e.reason
        ));
        match state {
            ExceptionState::Expiring => warnings.push(format!(
                "warning: exception {} expires in {} days ({until}); renew it with a new until and reason, or let it end",
                e.label(),
                e.days_left(now)
            )),
            ExceptionState::Expired => warnings.push(format!(
                "expired: exception {} ended {until} and is no longer applied; remove it from the config",
                e.label()
            )),
            ExceptionState::Active => {}
        }
    }
    out.extend(warnings);
    out
}

/// How remote lists are downloaded: through `[list_download] proxy` (credentials shown as
/// `***`) or directly.
pub fn list_downloads(config: &Config) -> String {
    match &config.list_proxy {
        Some(p) if p.no_proxy.is_empty() => format!("downloads through proxy {p}"),
        Some(p) => format!(
            "downloads through proxy {p}, except {}",
            p.no_proxy.join(", ")
        ),
        None => {
            "downloads direct (no [list_download] proxy; proxy environment variables are ignored)"
                .to_owned()
        }
    }
}

/// Per-list detail for `check`: format, entries, skipped lines by reason, the first errors.
pub fn list_report(l: &CompiledList) -> String {
    let mut s = String::new();
    let file = l.source.to_string();
    let _ = writeln!(
        s,
        "  list {}: format {}, {} entries, {} lines skipped, {:.1} MiB compiled",
        l.name,
        l.format.as_str(),
        l.entries(),
        l.report.skipped_total(),
        (l.matcher.heap_bytes() + l.cloak.heap_bytes()) as f64 / 1_048_576.0
    );
    for (reason, n) in &l.report.skipped_by_reason {
        let _ = writeln!(s, "    skipped {n} × {reason}");
    }
    for sk in &l.report.first_skipped {
        let _ = writeln!(
            s,
            "    {file}:{}: {} ({:?})",
            sk.line,
            sk.reason.as_str(),
            sk.text
        );
    }
    if let Some(e) = &l.error {
        let _ = writeln!(s, "    NOT LOADED: {e}");
    }
    s
}

/// `pixelguard lists update|status`: downloads every remote list once (update) and prints the
/// state of every list. [`CommandError::ListsWithoutContent`] when an update left a remote list
/// without content.
pub fn lists(source: &ConfigSource, update: bool) -> Result<(), CommandError> {
    let config = source.load()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    rt.block_on(lists_report(&config, update))
}

/// The body of [`lists`], on its runtime.
async fn lists_report(config: &Config, update: bool) -> Result<(), CommandError> {
    let supply = crate::lists::supply::ListSupply::new(&config.state_dir);
    if update && config.list_proxy.is_some() {
        outln!("{}", list_downloads(config));
    }
    let mut failed = Vec::new();
    for lc in config.lists.values() {
        match &lc.source {
            ListSource::Url(u) => {
                let had = supply.load_disk_copy(lc);
                let result = if update {
                    Some(supply.update(lc).await)
                } else {
                    None
                };
                let st = supply
                    .status()
                    .into_iter()
                    .find(|(n, _, _)| *n == lc.name)
                    .map(|x| x.2)
                    .unwrap_or_default();
                let state = match &result {
                    Some(Ok(crate::lists::supply::Updated::Changed)) => "downloaded".to_owned(),
                    Some(Ok(crate::lists::supply::Updated::Unchanged)) => "unchanged".to_owned(),
                    Some(Err(r)) => format!(
                        "FAILED ({}), {}",
                        r.as_str(),
                        if had {
                            "keeping the last good copy"
                        } else {
                            "no copy"
                        }
                    ),
                    None if had => "disk copy".to_owned(),
                    None => "no copy".to_owned(),
                };
                if supply.compiled(&lc.name).is_none() {
                    failed.push(lc.name.clone());
                }
                outln!(
                    "{}: {u}: {state}; {} entries{}{}",
                    lc.name,
                    st.entries,
                    if st.stale { ", stale" } else { "" },
                    st.last_success
                        .map(|t| format!(", last success {t} (unix)"))
                        .unwrap_or_default()
                );
            }
            other => {
                let l = crate::lists::load(lc);
                outln!(
                    "{}: {other}: local; {} entries{}",
                    lc.name,
                    l.entries(),
                    l.error
                        .map(|e| format!(" -- NOT LOADED: {e}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    if update && !failed.is_empty() {
        Err(CommandError::ListsWithoutContent(failed))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    #[test]
    fn exceptions_are_listed_with_warnings_for_expiring_and_expired() {
        let text = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n\
            [zones.hr]\nnetworks = [\"10.1.0.0/16\"]\n\
            [[exceptions]]\nzones = [\"hr\"]\nvendors = [\"linkedin\"]\nuntil = \"2027-03-31\"\nreason = \"campaign\"\nticket = \"INC-4411\"\n\
            [[exceptions]]\nzones = [\"hr\"]\nnames = [\"a.test\"]\nuntil = \"2027-01-01\"\nreason = \"old\"\n";
        let c = Config::from_str(
            text,
            "t.toml",
            std::path::Path::new("/etc/pg"),
            &Overrides::default(),
        )
        .unwrap();
        let at = |s: &str| humantime::parse_rfc3339(s).unwrap();
        let r = exception_report(&c, at("2027-01-05T00:00:00Z"));
        assert_eq!(r.len(), 3, "{r:#?}");
        assert!(r[0].contains("exception INC-4411: zones hr: vendor linkedin; until 2027-04-01T00:00:00Z (86 days left); reason: campaign"), "{}", r[0]);
        assert!(
            r[1].contains("exception exceptions[1]: zones hr: name a.test")
                && r[1].contains("(expired)"),
            "{}",
            r[1]
        );
        assert!(
            r[2].starts_with("expired: exception exceptions[1]"),
            "{}",
            r[2]
        );
        let r = exception_report(&c, at("2027-03-25T00:00:00Z"));
        assert!(
            r.iter()
                .any(|l| l.starts_with("warning: exception INC-4411 expires in 7 days")),
            "{r:#?}"
        );
    }
}
