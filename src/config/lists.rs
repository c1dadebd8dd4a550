//! The typed `[lists.NAME]` sections: where a list comes from ([`ListSource`]), its format, and
//! the download settings of remote lists ([`FetchOpts`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    DEFAULT_LIST_MAX_SHRINK, DEFAULT_LIST_MAX_SIZE, DEFAULT_LIST_REFRESH, DEFAULT_LIST_TIMEOUT,
};

/// Where a list's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSource {
    /// Shipped inside the binary (`builtin:trackers`).
    Builtin(String),
    /// A local file (absolute after validation).
    File(PathBuf),
    /// An `https://` (or, with `allow_insecure`, `http://`) URL, downloaded into `state_dir`.
    Url(String),
}

impl fmt::Display for ListSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(n) => write!(f, "builtin:{n}"),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Url(u) => write!(f, "{u}"),
        }
    }
}

/// The format of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// One domain per line.
    Domains,
    /// hosts-file lines.
    Hosts,
    /// Adblock network rules.
    Adblock,
    /// An RPZ zone file.
    Rpz,
    /// The TOML tracker catalogue.
    Catalogue,
}

impl ListFormat {
    /// The config keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domains => "domains",
            Self::Hosts => "hosts",
            Self::Adblock => "adblock",
            Self::Rpz => "rpz",
            Self::Catalogue => "catalogue",
        }
    }
}

/// `[lists.NAME]`.
#[derive(Debug, Clone)]
pub struct ListConfig {
    /// The list's name (the table key).
    pub name: String,
    /// Its source.
    pub source: ListSource,
    /// Its format; `None` = guess from content.
    pub format: Option<ListFormat>,
    /// Download settings (used by `Url` sources).
    pub fetch: FetchOpts,
}

/// Download settings of a remote list.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOpts {
    /// Refresh interval (jittered).
    pub refresh: Duration,
    /// Time for one download.
    pub timeout: Duration,
    /// Largest accepted body.
    pub max_size: u64,
    /// Fewest accepted entries.
    pub min_entries: u64,
    /// Largest accepted shrink against the last good copy (fraction).
    pub max_shrink: f64,
}

impl Default for FetchOpts {
    fn default() -> Self {
        Self {
            refresh: DEFAULT_LIST_REFRESH,
            timeout: DEFAULT_LIST_TIMEOUT,
            max_size: DEFAULT_LIST_MAX_SIZE,
            min_entries: 1,
            max_shrink: DEFAULT_LIST_MAX_SHRINK,
        }
    }
}
