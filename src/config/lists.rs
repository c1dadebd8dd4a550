//! The typed `[lists.NAME]` sections: where a list comes from ([`ListSource`]), its format, and
//! the download settings of remote lists ([`FetchOpts`]), with the `[list_download]` proxy
//! ([`DownloadProxy`]) that every remote list carries.

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
    /// Disconnect's `services.json` (blocks and names owners).
    Disconnect,
    /// DuckDuckGo Tracker Radar entity/domain JSON (names owners; domain files block).
    TrackerRadar,
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
            Self::Disconnect => "disconnect",
            Self::TrackerRadar => "tracker-radar",
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
    /// `[list_download] proxy`, the same for every remote list; `None` = direct (and proxy
    /// environment variables ignored).
    pub proxy: Option<DownloadProxy>,
}

/// `[list_download] proxy` and `no_proxy`: the proxy that list downloads (and nothing else) go
/// through. The URL may hold credentials; `Debug` and `Display` show it as
/// `http://***@host:port`, and only [`DownloadProxy::url_with_credentials`] gives it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadProxy {
    url: String,
    shown: String,
    /// Hosts downloaded without the proxy (`host` or `.domain`: the name and its subdomains; IP
    /// addresses, CIDRs).
    pub no_proxy: Vec<String>,
}

impl DownloadProxy {
    /// A proxy from a checked URL (`scheme://[user:pass@]host:port`) and its exceptions.
    pub fn new(url: &url::Url, no_proxy: Vec<String>) -> Self {
        let host = url.host_str().unwrap_or_default();
        let port = url
            .port_or_known_default()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let cred = if url.username().is_empty() && url.password().is_none() {
            ""
        } else {
            "***@"
        };
        Self {
            url: url.as_str().to_owned(),
            shown: format!("{}://{cred}{host}{port}", url.scheme()),
            no_proxy,
        }
    }

    /// The whole URL, credentials included: for the HTTP client only, never for a message.
    pub fn url_with_credentials(&self) -> &str {
        &self.url
    }

    /// The URL with any credentials replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for DownloadProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DownloadProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadProxy")
            .field("url", &self.shown)
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Default for FetchOpts {
    fn default() -> Self {
        Self {
            refresh: DEFAULT_LIST_REFRESH,
            timeout: DEFAULT_LIST_TIMEOUT,
            max_size: DEFAULT_LIST_MAX_SIZE,
            min_entries: 1,
            max_shrink: DEFAULT_LIST_MAX_SHRINK,
            proxy: None,
        }
    }
}
