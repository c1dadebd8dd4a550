//! List supply: remote sources downloaded into `state_dir`, refreshed on a jittered timer with
//! conditional GET, validated before they replace anything, and kept as a last good copy on disk.
//!
//! The rule that matters: pixelguard never falls back to unfiltered. A failed, empty, oversized,
//! unparseable or suspiciously shrunk download keeps the last good content (in memory, and on
//! disk for the next start) and is counted as a failure with its reason. A list with neither a
//! download nor a disk copy starts empty and is reported loudly (or, with `strict_start`,
//! stops the start). The start waits only for lists without a copy: the others are served from
//! the copy (stale) and downloaded in the background ([`ListSupply::prepare_start`]).
//!
//! Downloads go through `[list_download] proxy` (carried in each remote list's `FetchOpts`) or
//! direct; the proxy environment variables (`HTTPS_PROXY`, `ALL_PROXY`, ...) are never read.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{CompiledList, StaleList, compile_bytes};
use crate::config::{Config, DownloadProxy, ListConfig, ListSource};

/// Why a download was not used (closed set: a metric label, see [`FailReason::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FailReason {
    /// No complete answer within the list's timeout.
    #[error("no complete answer within the list's timeout")]
    Timeout,
    /// Connection, TLS or protocol error.
    #[error("connection, TLS or protocol error")]
    Network,
    /// A status other than 200 or 304.
    #[error("HTTP status other than 200 or 304")]
    HttpStatus,
    /// Larger than `max_size`.
    #[error("larger than max_size")]
    TooLarge,
    /// An empty body.
    #[error("empty body")]
    Empty,
    /// Parsed to fewer than `min_entries`.
    #[error("fewer entries than min_entries")]
    TooFewEntries,
    /// Shrank by more than `max_shrink` against the last good copy.
    #[error("shrank by more than max_shrink against the last good copy")]
    Shrunk,
    /// The disk copy could not be written.
    #[error("the disk copy could not be written")]
    Disk,
}

impl FailReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: &'static [FailReason] = &[
        Self::Timeout,
        Self::Network,
        Self::HttpStatus,
        Self::TooLarge,
        Self::Empty,
        Self::TooFewEntries,
        Self::Shrunk,
        Self::Disk,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::HttpStatus => "http_status",
            Self::TooLarge => "too_large",
            Self::Empty => "empty",
            Self::TooFewEntries => "too_few_entries",
            Self::Shrunk => "shrunk",
            Self::Disk => "disk",
        }
    }
}

/// What an operator wants to know about a remote list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListStatus {
    /// Entries in the content in use.
    pub entries: usize,
    /// Unix time of the last successful download or 304.
    pub last_success: Option<u64>,
    /// Unix time and reason of the last failure.
    pub last_failure: Option<(u64, String)>,
    /// True while the content in use is an old disk copy not confirmed by a download this run.
    pub stale: bool,
    /// Failures since start, by reason.
    pub failures: HashMap<&'static str, u64>,
}

impl ListStatus {
    /// Served from a disk copy, and no download has been tried to the end in this run yet.
    pub fn first_download_pending(&self) -> bool {
        self.stale && self.last_failure.is_none()
    }
}

/// The result of one update attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// New content is in use.
    Changed,
    /// The server said 304, or the content is byte-identical.
    Unchanged,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    fetched: u64,
}

struct Entry {
    url: String,
    compiled: Option<Arc<CompiledList>>,
    status: ListStatus,
    etag: Option<String>,
    last_modified: Option<String>,
    digest: u64,
}

impl Entry {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            compiled: None,
            status: ListStatus::default(),
            etag: None,
            last_modified: None,
            digest: 0,
        }
    }
}

/// Called on every failed update with the list name and the reason (metrics).
pub type FailureHook = Box<dyn Fn(&str, FailReason) + Send + Sync>;

/// Remote lists of the process; survives reloads.
pub struct ListSupply {
    state_dir: PathBuf,
    /// Direct (no proxy, environment variables ignored); `proxied`: for the configured proxy,
    /// built when first needed and replaced when the proxy changes.
    client: reqwest::Client,
    proxied: Mutex<Option<(DownloadProxy, reqwest::Client)>>,
    entries: Mutex<HashMap<String, Entry>>,
    on_failure: Mutex<Option<FailureHook>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn digest(b: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x6c69_7374).hash_one(b)
}

impl ListSupply {
    /// A supply writing its copies under `state_dir/lists/`.
    pub fn new(state_dir: &Path) -> Arc<Self> {
        Arc::new(Self {
            state_dir: state_dir.to_path_buf(),
            // `no_proxy()`: without it reqwest would follow HTTPS_PROXY / ALL_PROXY / ...
            client: client_builder().no_proxy().build().unwrap_or_default(),
            proxied: Mutex::new(None),
            entries: Mutex::new(HashMap::new()),
            on_failure: Mutex::new(None),
        })
    }

    /// A hook called on every failed update (metrics).
    pub fn set_failure_hook(&self, f: impl Fn(&str, FailReason) + Send + Sync + 'static) {
        if let Ok(mut h) = self.on_failure.lock() {
            *h = Some(Box::new(f));
        }
    }

    /// The client for a list's downloads: the direct one, or the one of its proxy.
    fn client_for(&self, proxy: Option<&DownloadProxy>) -> Result<reqwest::Client, FailReason> {
        let Some(p) = proxy else {
            return Ok(self.client.clone());
        };
        let mut slot = self.proxied.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, c)) = slot.as_ref().filter(|(q, _)| q == p) {
            return Ok(c.clone());
        }
        let client = reqwest::Proxy::all(p.url_with_credentials())
            .map(|px| px.no_proxy(reqwest::NoProxy::from_string(&p.no_proxy.join(","))))
            .and_then(|px| client_builder().proxy(px).build())
            .map_err(|_| {
                // Never fall back to a direct download: the error names the proxy without its
                // credentials (reqwest's error could quote them).
                tracing::warn!(proxy = %p, "cannot set up the list download proxy");
                FailReason::Network
            })?;
        tracing::info!(proxy = %p, no_proxy = ?p.no_proxy, "list downloads go through the proxy");
        *slot = Some((p.clone(), client.clone()));
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.state_dir.join("lists")
    }

    fn data_path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{}.list", safe_file_name(name)))
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir()
            .join(format!("{}.meta.json", safe_file_name(name)))
    }

    /// The compiled content of a remote list (or `None` when it has none yet).
    pub fn compiled(&self, name: &str) -> Option<Arc<CompiledList>> {
        self.lock().get(name).and_then(|e| e.compiled.clone())
    }

    /// Status of every remote list, by name.
    pub fn status(&self) -> Vec<(String, String, ListStatus)> {
        let mut v: Vec<_> = self
            .lock()
            .iter()
            .map(|(n, e)| (n.clone(), e.url.clone(), e.status.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Loads the disk copy of a remote list if nothing is in memory yet (marked stale until a
    /// download confirms it). Returns whether content is now available.
    pub fn load_disk_copy(&self, lc: &ListConfig) -> bool {
        let ListSource::Url(url) = &lc.source else {
            return false;
        };
        {
            let map = self.lock();
            if let Some(e) = map.get(&lc.name)
                && e.url == *url
                && e.compiled.is_some()
            {
                return true;
            }
        }
        let meta: Meta = std::fs::read(self.meta_path(&lc.name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let data = std::fs::read(self.data_path(&lc.name)).ok();
        let mut map = self.lock();
        let entry = map
            .entry(lc.name.clone())
            .or_insert_with(|| Entry::new(url));
        if entry.url != *url {
            *entry = Entry::new(url);
        }
        match data {
            Some(bytes) if meta.url == *url && !bytes.is_empty() => {
                let list = compile_bytes(lc, &bytes, &self.data_path(&lc.name));
                if list.error.is_some() {
                    return false;
                }
                entry.status.entries = list.entries();
                entry.status.stale = true;
                // The copy's download time is the last known success.
                entry.status.last_success = (meta.fetched > 0).then_some(meta.fetched);
                entry.digest = digest(&bytes);
                entry.etag = meta.etag;
                entry.last_modified = meta.last_modified;
                entry.compiled = Some(Arc::new(list));
                true
            }
            _ => false,
        }
    }

    fn fail(&self, name: &str, reason: FailReason) -> FailReason {
        {
            let mut map = self.lock();
            if let Some(e) = map.get_mut(name) {
                e.status.last_failure = Some((now_unix(), reason.as_str().to_owned()));
                *e.status.failures.entry(reason.as_str()).or_default() += 1;
            }
        }
        if let Ok(h) = self.on_failure.lock()
            && let Some(h) = h.as_ref()
        {
            h(name, reason);
        }
        tracing::warn!(
            list = name,
            reason = reason.as_str(),
            "list update failed; keeping the last good content"
        );
        reason
    }

    /// Downloads a remote list once (conditional GET), validates it and, if good, makes it the
    /// content in use and writes the disk copy. On failure the previous content stays.
    pub async fn update(&self, lc: &ListConfig) -> Result<Updated, FailReason> {
        let ListSource::Url(url) = &lc.source else {
            return Ok(Updated::Unchanged);
        };
        self.load_disk_copy(lc);
        let (etag, last_modified, old_entries, have) = {
            let mut map = self.lock();
            let e = map
                .entry(lc.name.clone())
                .or_insert_with(|| Entry::new(url));
            (
                e.etag.clone(),
                e.last_modified.clone(),
                e.status.entries,
                e.compiled.is_some(),
            )
        };
        let opts = &lc.fetch;
        let client = self
            .client_for(opts.proxy.as_ref())
            .map_err(|r| self.fail(&lc.name, r))?;
        let mut req = client.get(url).timeout(opts.timeout);
        if have {
            if let Some(t) = &etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, t);
            }
            if let Some(t) = &last_modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, t);
            }
        }
        let fetched = tokio::time::timeout(opts.timeout, async {
            let mut resp = req.send().await.map_err(|e| {
                if e.is_timeout() {
                    FailReason::Timeout
                } else {
                    FailReason::Network
                }
            })?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_MODIFIED && have {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(FailReason::HttpStatus);
            }
            if resp.content_length().is_some_and(|n| n > opts.max_size) {
                return Err(FailReason::TooLarge);
            }
            let header = |h| {
                resp.headers()
                    .get(h)
                    .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let new_etag = header(reqwest::header::ETAG);
            let new_lm = header(reqwest::header::LAST_MODIFIED);
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    FailReason::Timeout
                } else {
                    FailReason::Network
                }
            })? {
                if (body.len() + chunk.len()) as u64 > opts.max_size {
                    return Err(FailReason::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some((body, new_etag, new_lm)))
        })
        .await
        .map_err(|_| FailReason::Timeout);
        let fetched = match fetched {
            Ok(Ok(x)) => x,
            Ok(Err(r)) | Err(r) => return Err(self.fail(&lc.name, r)),
        };
        let Some((body, new_etag, new_lm)) = fetched else {
            let mut map = self.lock();
            if let Some(e) = map.get_mut(&lc.name) {
                e.status.last_success = Some(now_unix());
                e.status.stale = false;
            }
            return Ok(Updated::Unchanged);
        };
        if body.is_empty() {
            return Err(self.fail(&lc.name, FailReason::Empty));
        }
        let d = digest(&body);
        if have && self.lock().get(&lc.name).is_some_and(|e| e.digest == d) {
            let mut map = self.lock();
            if let Some(e) = map.get_mut(&lc.name) {
                e.status.last_success = Some(now_unix());
                e.status.stale = false;
                e.etag = new_etag;
                e.last_modified = new_lm;
            }
            return Ok(Updated::Unchanged);
        }
        let label = self.data_path(&lc.name);
        let lc2 = lc.clone();
        let body = Arc::new(body);
        let b2 = body.clone();
        let list = tokio::task::spawn_blocking(move || compile_bytes(&lc2, &b2, &label))
            .await
            .map_err(|_| self.fail(&lc.name, FailReason::Network))?;
        let n = list.entries();
        if list.error.is_some() || (n as u64) < opts.min_entries.max(1) {
            return Err(self.fail(&lc.name, FailReason::TooFewEntries));
        }
        if have && old_entries > 0 && (n as f64) < (old_entries as f64) * (1.0 - opts.max_shrink) {
            return Err(self.fail(&lc.name, FailReason::Shrunk));
        }
        let meta = Meta {
            url: url.clone(),
            etag: new_etag.clone(),
            last_modified: new_lm.clone(),
            fetched: now_unix(),
        };
        if let Err(e) = self.write_copy(&lc.name, &body, &meta) {
            tracing::warn!(list = &*lc.name, error = %e, "cannot write the disk copy; using the download anyway");
            self.fail(&lc.name, FailReason::Disk);
        }
        let mut map = self.lock();
        if let Some(e) = map.get_mut(&lc.name) {
            e.compiled = Some(Arc::new(list));
            e.status.entries = n;
            e.status.last_success = Some(now_unix());
            e.status.stale = false;
            e.etag = new_etag;
            e.last_modified = new_lm;
            e.digest = d;
        }
        tracing::info!(list = &*lc.name, entries = n, "list updated");
        Ok(Updated::Changed)
    }

    /// Writes data and meta atomically (temp file + rename in the same folder).
    fn write_copy(&self, name: &str, body: &[u8], meta: &Meta) -> std::io::Result<()> {
        std::fs::create_dir_all(self.dir())?;
        atomic_write(&self.data_path(name), body)?;
        let m = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
        atomic_write(&self.meta_path(name), &m)
    }

    /// At start: disk copies first, then one download attempt for each remote list that has no
    /// copy, concurrently. A list with a copy is not waited for: it is served from the copy
    /// (stale) and downloaded in the background by its refresher, which starts at once while
    /// that first download is pending. Returns the lists that have no content at all.
    pub async fn prepare_start(&self, config: &Config) -> Vec<String> {
        let without_copy = remote(config).filter(|lc| !self.load_disk_copy(lc));
        self.download(without_copy.collect()).await
    }

    /// Downloads every remote list once, concurrently, keeping what fails (the reload path).
    /// Returns the lists that have no content at all.
    pub async fn prepare(&self, config: &Config) -> Vec<String> {
        let lists: Vec<&ListConfig> = remote(config).collect();
        for lc in &lists {
            self.load_disk_copy(lc);
        }
        self.download(lists).await
    }

    /// One download attempt per list, concurrently; returns the lists still without content.
    async fn download(&self, lists: Vec<&ListConfig>) -> Vec<String> {
        let _ = futures_util::future::join_all(lists.iter().map(|lc| self.update(lc))).await;
        lists
            .iter()
            .filter(|lc| self.compiled(&lc.name).is_none())
            .map(|lc| lc.name.clone())
            .collect()
    }

    /// The lists of `config` served from a disk copy not confirmed by a download in this run,
    /// with their ages, by name.
    pub fn stale_lists(&self, config: &Config) -> Vec<StaleList> {
        let now = now_unix();
        self.status()
            .into_iter()
            .filter(|(name, _, st)| st.stale && config.lists.contains_key(name))
            .map(|(name, _, st)| StaleList {
                list: name,
                age_seconds: st.last_success.map(|t| now.saturating_sub(t)),
                pending: st.first_download_pending(),
                last_failure: st.last_failure.map(|(_, r)| r),
            })
            .collect()
    }

    /// Keeps remote lists fresh: one task per remote list of `config` (replacing those of a
    /// previous config). `changed` is called after new content is in use.
    pub fn spawn_refreshers(
        self: &Arc<Self>,
        config: &Config,
        tasks: &mut Vec<tokio::task::JoinHandle<()>>,
        changed: Arc<dyn Fn() + Send + Sync>,
    ) {
        for t in tasks.drain(..) {
            t.abort();
        }
        for lc in remote(config) {
            let me = self.clone();
            let lc = lc.clone();
            let changed = changed.clone();
            tasks.push(tokio::spawn(async move {
                let mut backoff = Duration::from_secs(30).min(lc.fetch.refresh);
                // A list served from its disk copy whose first download has not run yet (the
                // start does not wait for it): download it now.
                let pending = me
                    .lock()
                    .get(&lc.name)
                    .is_some_and(|e| e.status.first_download_pending());
                let mut wait = if pending {
                    Duration::ZERO
                } else {
                    jitter(lc.fetch.refresh)
                };
                loop {
                    tokio::time::sleep(wait).await;
                    match me.update(&lc).await {
                        Ok(Updated::Changed) => {
                            changed();
                            backoff = Duration::from_secs(30).min(lc.fetch.refresh);
                            wait = jitter(lc.fetch.refresh);
                        }
                        Ok(Updated::Unchanged) => wait = jitter(lc.fetch.refresh),
                        Err(_) => {
                            // Retry sooner than the refresh period, backing off to it.
                            wait = backoff;
                            backoff = backoff.saturating_mul(2).min(lc.fetch.refresh);
                        }
                    }
                }
            }));
        }
    }
}

/// What every list download client shares: user agent and connect timeout.
fn client_builder() -> reqwest::ClientBuilder {
    const AGENT: &str = concat!("pixelguard/", env!("CARGO_PKG_VERSION"), " (list refresh)");
    reqwest::Client::builder()
        .user_agent(AGENT)
        .connect_timeout(Duration::from_secs(10))
}

/// The remote (URL) lists of a config.
fn remote(config: &Config) -> impl Iterator<Item = &ListConfig> {
    config
        .lists
        .values()
        .filter(|l| matches!(l.source, ListSource::Url(_)))
}

/// ±10% jitter, so that many instances do not hit a list server in step.
fn jitter(d: Duration) -> Duration {
    let f: f64 = 0.9 + rand::random::<f64>() * 0.2;
    // Checked: `mul_f64` panics past `Duration::MAX` (validation bounds `refresh` anyway).
    Duration::try_from_secs_f64(d.as_secs_f64() * f).unwrap_or(d)
}

fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
