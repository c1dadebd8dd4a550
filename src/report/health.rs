//! What a report adds from outside the query log: the exceptions of the config ([`ExceptionRow`],
//! in force or expired in the period) and the health of every configured list ([`ListHealth`]):
//! its entries, the age of the last good copy `state_dir` keeps for a remote list, and the error
//! of a list that does not load.

use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::period::stamp;
use crate::config::{Config, ListSource};
use crate::lists::supply::ListSupply;

/// One exception of the config, as a report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionRow {
    /// The ticket, or `exceptions[N]` when it has none (what the query log records).
    pub label: String,
    /// The zones it applies to.
    pub zones: Vec<String>,
    /// The catalogue vendors it allows.
    pub vendors: Vec<String>,
    /// The names (and their subdomains) it allows.
    pub names: Vec<String>,
    /// When it stops applying.
    #[serde(serialize_with = "ser_time")]
    pub until: SystemTime,
    /// Why it exists.
    pub reason: String,
    /// The ticket, when given.
    pub ticket: Option<String>,
}

fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&stamp(*t))
}

/// The config's exceptions (`[[exceptions]]`), each as a row; the report splits them into in
/// force and expired in the period.
pub fn exception_rows(config: &Config) -> Vec<ExceptionRow> {
    config
        .exceptions
        .iter()
        .map(|e| ExceptionRow {
            label: e.label(),
            zones: e.zones.clone(),
            vendors: e.vendors.clone(),
            names: e.names.clone(),
            until: e.until,
            reason: e.reason.clone(),
            ticket: e.ticket.clone(),
        })
        .collect()
}

/// The health of one configured list.
#[derive(Debug, Clone, Serialize)]
pub struct ListHealth {
    /// The list's name.
    pub name: String,
    /// Where it comes from.
    pub source: String,
    /// Entries of the content that would be used now (the file, or the last good copy).
    pub entries: usize,
    /// When the last good copy was downloaded (remote lists).
    pub last_good: Option<String>,
    /// Its age in whole days.
    pub last_good_age_days: Option<u64>,
    /// Why the list has no usable content, when it has none. Download failures of a running
    /// daemon are not kept on disk: `pixelguard_list_update_failures_total` has them.
    pub error: Option<String>,
}

/// The health of every list of the config, from its files and `state_dir`.
pub fn list_health(config: &Config, now: SystemTime) -> Vec<ListHealth> {
    let supply = ListSupply::new(&config.state_dir);
    config
        .lists
        .values()
        .map(|lc| match &lc.source {
            ListSource::Url(url) => {
                let loaded = supply.load_disk_copy(lc);
                let st = supply
                    .status()
                    .into_iter()
                    .find(|(n, _, _)| *n == lc.name)
                    .map(|s| s.2)
                    .unwrap_or_default();
                let last = st
                    .last_success
                    .map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
                ListHealth {
                    name: lc.name.clone(),
                    source: url.clone(),
                    entries: st.entries,
                    last_good: last.map(stamp),
                    last_good_age_days: last
                        .and_then(|t| now.duration_since(t).ok())
                        .map(|d| d.as_secs() / 86_400),
                    error: (!loaded).then(|| {
                        "no usable copy in state_dir (never downloaded, or the copy does not parse)"
                            .to_owned()
                    }),
                }
            }
            other => {
                let l = crate::lists::load(lc);
                ListHealth {
                    name: lc.name.clone(),
                    source: other.to_string(),
                    entries: l.entries(),
                    last_good: None,
                    last_good_age_days: None,
                    error: l.error.clone(),
                }
            }
        })
        .collect()
}
