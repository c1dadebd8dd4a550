//! Wiring: config → snapshot → pipeline → listeners, the start-up summary, the one reload path,
//! and signal handling (SIGTERM / SIGINT: graceful shutdown; SIGHUP: reload). Integration tests
//! start pixelguard in-process through [`App::start`]. What can stop a start ([`StartError`]) or
//! a reload ([`ReloadError`]) is typed here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{Admin, AdminState};
pub use crate::command::{QueryLogKeyError, ReloadError};
use crate::config::{Config, ConfigErrors, QueryLogConfig};
use crate::export::Export;
use crate::lists::supply::{FailReason, ListSupply};
use crate::metrics::Metrics;
use crate::pipeline::{Handler, Pipeline};
use crate::querylog::{Pseudonymizer, QueryLog};
use crate::server::{self, ListenConfig, Running};
use crate::snapshot::Snapshot;

/// How long shutdown waits for in-flight queries.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub use crate::config::ConfigSource;
pub use crate::snapshot::summary;

/// Why pixelguard did not start (or stopped serving on its own).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config does not load or validate.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// A DNS listen address cannot be bound (in use, no permission).
    #[error("binding {addrs:?}: {source}")]
    Bind {
        /// The configured listen addresses.
        addrs: Vec<SocketAddr>,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The query-log key.
    #[error(transparent)]
    QueryLogKey(#[from] QueryLogKeyError),
    /// `strict_start`: remote lists with neither a download nor a disk copy.
    #[error(
        "strict_start: remote list(s) {} have neither a download nor a disk copy in {}",
        lists.join(", "),
        state_dir.display()
    )]
    StrictStart {
        /// The lists without content.
        lists: Vec<String>,
        /// Where their copies would be.
        state_dir: PathBuf,
    },
    /// Building the first snapshot failed (the builder panicked).
    #[error("building the first snapshot: {0}")]
    Snapshot(#[source] tokio::task::JoinError),
    /// The query-log writer thread did not start.
    #[error("starting the query-log writer: {0}")]
    QueryLog(#[source] std::io::Error),
    /// A dnstap / syslog writer could not be set up (thread, TLS configuration).
    #[error("starting the dnstap / syslog export: {0}")]
    Export(#[source] std::io::Error),
    /// The CSP report endpoint could not start (bind, certificate).
    #[error("starting the CSP report endpoint: {0}")]
    CspReports(String),
    /// The signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// A running pixelguard.
pub struct App {
    /// The request path's state.
    pub pipeline: Arc<Pipeline>,
    /// Bound listen addresses (ports resolved when 0 was asked for).
    pub addrs: Vec<SocketAddr>,
    /// Bound DoT (`server.tls_listen`) and DoH (`server.https_listen`) addresses.
    pub tls_addrs: Vec<SocketAddr>,
    /// Bound DoH addresses.
    pub https_addrs: Vec<SocketAddr>,
    running: Running,
    /// The one reload path, shared with SIGHUP, list refresh timers and the admin endpoint.
    pub reloader: Reloader,
    /// The admin HTTP server's bound address; `None` when it is off (or could not bind).
    pub admin_addr: Option<SocketAddr>,
    admin: Option<Admin>,
    admin_state: Arc<AdminState>,
    /// The CSP report endpoint's bound address; `None` without `[csp_reports]`.
    pub csp_reports_addr: Option<SocketAddr>,
    csp_reports: Option<crate::csp_reports::CspReports>,
}

/// The one reload path: start-up aside, every change of state (SIGHUP, a list refresh, the admin
/// reload endpoint) goes through [`Reloader::reload`] or [`Reloader::rebuild`], which build a
/// complete new snapshot off the request path and swap it in atomically. Reloads are serialised.
#[derive(Clone)]
pub struct Reloader(Arc<ReloaderInner>);

/// State of the reload path.
pub struct ReloaderInner {
    source: ConfigSource,
    pipeline: Arc<Pipeline>,
    /// Remote lists (downloads, disk copies, status).
    pub supply: Arc<ListSupply>,
    refreshers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    serial: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// The remote-list supply (for status and metrics).
    pub fn supply(&self) -> &Arc<ListSupply> {
        &self.0.supply
    }

    /// Re-reads the config file and every list, builds a complete snapshot and swaps it in.
    /// A config that fails validation keeps the running snapshot and returns its errors.
    /// Counted in `pixelguard_reloads_total{result}`.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let r = self.reload_counted().await;
        let result = if r.is_ok() { "success" } else { "failure" };
        self.0
            .pipeline
            .recorder
            .notice(crate::export::Notice::Reload {
                ts: std::time::SystemTime::now(),
                ok: r.is_ok(),
            });
        self.0
            .pipeline
            .recorder
            .metrics()
            .reloads
            .with_label_values(&[result])
            .inc();
        r
    }

    async fn reload_counted(&self) -> Result<(), ReloadError> {
        let _g = self.0.serial.lock().await;
        let config = self.0.source.load()?;
        if config.admin.listen != self.0.pipeline.snapshot.load().config.admin.listen {
            tracing::warn!("admin.listen changed: the admin server moves only on restart");
        }
        if config.csp_reports.as_ref().map(|c| c.listen)
            != self
                .0
                .pipeline
                .snapshot
                .load()
                .config
                .csp_reports
                .as_ref()
                .map(|c| c.listen)
        {
            tracing::warn!("csp_reports changed: the report endpoint changes only on restart");
        }
        {
            let running = &self.0.pipeline.snapshot.load().config;
            if config.dnstap != running.dnstap || config.syslog != running.syslog {
                tracing::warn!("[dnstap] / [syslog] changed: the export changes only on restart");
            }
        }
        let log_cfg = config.query_log.clone();
        let key = query_log_key(log_cfg.as_ref())?;
        // Lists new to this config are downloaded (or read from disk) before they are used.
        let missing = self.0.supply.prepare(&config).await;
        if !missing.is_empty() {
            tracing::error!(lists = %missing.join(", "), "remote list(s) without content after reload");
        }
        self.restart_refreshers(&config);
        self.install(config).await?;
        let recorder = &self.0.pipeline.recorder;
        if let Some(k) = key {
            recorder.set_key(k);
        }
        if let Some(log) = recorder.query_log() {
            log.configure(log_cfg, recorder.key()).await;
        }
        Ok(())
    }

    /// Rebuilds the snapshot from the running config with the current list content (after a
    /// list refresh brought new content).
    pub async fn rebuild(&self) -> Result<(), ReloadError> {
        let _g = self.0.serial.lock().await;
        let config = self.0.pipeline.snapshot.load().config.clone();
        self.install(config).await
    }

    async fn install(&self, mut config: Config) -> Result<(), ReloadError> {
        let pipeline = self.0.pipeline.clone();
        let supply = self.0.supply.clone();
        let old = pipeline.snapshot.load().config.server.clone();
        // Encrypted listeners change only on restart: keep the bound ones (their certificate is
        // the new config's).
        config.server.tls_listen = old.tls_listen.clone();
        config.server.https_listen = old.https_listen.clone();
        let snap = tokio::task::spawn_blocking(move || {
            let prev = pipeline.snapshot.load_full();
            Snapshot::build(config, Some(&prev), Some(&supply))
        })
        .await
        .map_err(ReloadError::Snapshot)?;
        if snap.config.server.listen != old.listen {
            tracing::warn!("server.listen changed: listeners change only on restart");
        }
        if snap.config.server.proxy_protocol != old.proxy_protocol {
            tracing::warn!("server.proxy_protocol changed: the listeners take it only on restart");
        }
        self.0.pipeline.swap(snap);
        Ok(())
    }

    fn restart_refreshers(&self, config: &Config) {
        let weak = Arc::downgrade(&self.0);
        let changed: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            if let Some(inner) = weak.upgrade() {
                tokio::spawn(async move {
                    if let Err(e) = Reloader(inner).rebuild().await {
                        tracing::error!("rebuild after a list refresh failed: {e}");
                    }
                });
            }
        });
        let mut tasks = match self.0.refreshers.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        self.0.supply.spawn_refreshers(config, &mut tasks, changed);
    }
}

/// The pseudonym key of a query-log config (`None`: no query log, keep the current key).
fn query_log_key(cfg: Option<&QueryLogConfig>) -> Result<Option<Pseudonymizer>, QueryLogKeyError> {
    let Some(c) = cfg else {
        return Ok(None);
    };
    Pseudonymizer::for_config(c)
        .map(Some)
        .map_err(|source| QueryLogKeyError {
            path: c.key_file.clone(),
            source,
        })
}

/// Copies the remote-list supply's status into the list metrics: last success, and failures by
/// reason (the supply counts them since start; the counters catch up by the difference).
fn sync_supply_metrics(supply: &ListSupply, m: &Metrics, configured: &Config) {
    for (name, _url, st) in supply.status() {
        if !configured.lists.contains_key(&name) {
            continue;
        }
        let last = m.list_last_success.with_label_values(&[&name]);
        if let Some(t) = st.last_success {
            last.set(t as f64);
        }
        for r in FailReason::ALL {
            let c = m
                .list_update_failures
                .with_label_values(&[&name, r.as_str()]);
            let want = st.failures.get(r.as_str()).copied().unwrap_or(0);
            if want > c.get() {
                c.inc_by(want - c.get());
            }
        }
    }
}

impl App {
    /// Builds the first snapshot, binds every listener and starts serving.
    pub async fn start(source: ConfigSource) -> Result<App, StartError> {
        let mut config = source.load()?;
        let listen = ListenConfig {
            udp_sockets: if config.server.udp_sockets == 0 {
                tokio::runtime::Handle::current().metrics().num_workers()
            } else {
                config.server.udp_sockets
            },
            tcp_idle_timeout: config.server.tcp_idle_timeout,
            tcp_max_connections: config.server.tcp_max_connections,
            tcp_max_connections_per_client: config.server.tcp_max_connections_per_client,
            udp_fast_path: config.server.udp_fast_path,
            proxy_protocol: config.server.proxy_protocol.clone(),
        };
        let bound =
            server::bind_all(&config.server.listen, listen.udp_sockets).map_err(|source| {
                StartError::Bind {
                    addrs: config.server.listen.clone(),
                    source,
                }
            })?;
        let addrs: Vec<SocketAddr> = bound.iter().map(|b| b.addr).collect();
        let (tls, https) = (&config.server.tls_listen, &config.server.https_listen);
        let encrypted =
            server::EncryptedBound::bind(tls, https).map_err(|source| StartError::Bind {
                addrs: tls.iter().chain(https).copied().collect(),
                source,
            })?;
        let (tls_addrs, https_addrs) = encrypted.addrs();
        // The running config holds the bound encrypted ports (DDR announces them; port 0 in tests).
        config.server.tls_listen = tls_addrs.clone();
        config.server.https_listen = https_addrs.clone();
        // The admin server answers from here on (/readyz: "starting" while lists load). It is
        // not worth refusing DNS for: a port in use (9153 is also CoreDNS's) is an error in the
        // log, and /readyz is then unreachable, which orchestrators notice.
        let admin_state = AdminState::new(config.admin.clone());
        let admin = match config.admin.listen {
            None => None,
            Some(a) => match Admin::bind(a)
                .await
                .and_then(|l| Admin::serve(l, admin_state.clone()))
            {
                Ok(admin) => Some(admin),
                Err(e) => {
                    tracing::error!(
                        "admin: cannot listen on {a}: {e}; /metrics, /readyz and the admin API are OFF"
                    );
                    None
                }
            },
        };
        let admin_addr = admin.as_ref().map(|a| a.addr);
        let log_cfg = config.query_log.clone();
        let log_key = query_log_key(log_cfg.as_ref())?;
        let log_buffer = log_cfg
            .as_ref()
            .map_or(crate::config::DEFAULT_QUERY_LOG_BUFFER, |c| c.buffer);
        let supply = ListSupply::new(&config.state_dir);
        // Lists with a last good copy are served from it at once and downloaded in the
        // background (their refreshers start with that download): a slow or hanging list
        // server must not keep DNS down. Only lists with no copy are waited for here.
        let missing = supply.prepare_start(&config).await;
        if !missing.is_empty() {
            if config.strict_start {
                return Err(StartError::StrictStart {
                    lists: missing,
                    state_dir: config.state_dir.clone(),
                });
            }
            tracing::error!(
                lists = %missing.join(", "),
                "remote list(s) have neither a download nor a disk copy: zones using them start WITHOUT them"
            );
        }
        let supply2 = supply.clone();
        let snapshot =
            tokio::task::spawn_blocking(move || Snapshot::build(config, None, Some(&supply2)))
                .await
                .map_err(StartError::Snapshot)?;
        for l in supply.stale_lists(&snapshot.config) {
            tracing::warn!(
                "list {l}: serving the last good copy from state_dir until the download in the background succeeds"
            );
        }
        for line in summary(&snapshot, &addrs) {
            tracing::info!("{line}");
        }
        match admin_addr {
            Some(a) => tracing::info!("admin     http://{a}/ (metrics, healthz, readyz, api)"),
            None => tracing::info!("admin     off"),
        }
        if let Some(q) = &log_cfg {
            tracing::info!(
                "querylog  {} record={} client={} (zones may override)",
                q.path.display(),
                q.record.as_str(),
                q.client.as_str()
            );
        }
        for z in &snapshot.config.zones {
            let client = z.query_log_client.or(log_cfg.as_ref().map(|q| q.client));
            if log_cfg.is_some() && client == Some(crate::config::ClientMode::Full) {
                tracing::warn!(
                    zone = %z.name,
                    "query log writes FULL client addresses for this zone (query_log client = \"full\")"
                );
            }
        }
        for l in &snapshot.lists {
            if let Some(e) = &l.error {
                tracing::warn!(
                    list = &*l.name,
                    "list not loaded, zones using it run without it: {e}"
                );
            }
        }
        let pipeline = Arc::new(Pipeline::new(snapshot));
        let cache = pipeline.cache.clone();
        pipeline
            .recorder
            .set_cache_entries(Arc::new(move || cache.len()));
        let query_log = QueryLog::start(
            log_cfg,
            log_key.clone().unwrap_or_else(|| pipeline.recorder.key()),
            log_buffer,
            pipeline.recorder.metrics().query_log_dropped.clone(),
        )
        .map_err(StartError::QueryLog)?;
        if let Some(k) = log_key {
            pipeline.recorder.set_key(k);
        }
        pipeline.recorder.attach_query_log(query_log);
        let (dnstap, syslog) = {
            let c = &pipeline.snapshot.load().config;
            (c.dnstap.clone(), c.syslog.clone())
        };
        for line in crate::export::summary(dnstap.as_ref(), syslog.as_ref()) {
            tracing::info!("{line}");
        }
        if let Some(x) = Export::start(dnstap, syslog, pipeline.recorder.metrics())
            .map_err(StartError::Export)?
        {
            pipeline.recorder.attach_export(x);
            let weak = Arc::downgrade(&pipeline);
            supply.set_failure_hook(move |list, reason| {
                if let Some(p) = weak.upgrade() {
                    p.recorder.notice(crate::export::Notice::ListUpdateFailed {
                        ts: std::time::SystemTime::now(),
                        list: list.to_owned(),
                        reason: reason.as_str().to_owned(),
                    });
                }
            });
        }
        let csp_cfg = pipeline.snapshot.load().config.csp_reports.clone();
        let csp_reports = match csp_cfg {
            Some(c) => {
                let r = crate::csp_reports::CspReports::serve(&c, pipeline.recorder.metrics())
                    .await
                    .map_err(StartError::CspReports)?;
                let scheme = if c.tls.is_some() { "https" } else { "http" };
                tracing::info!(
                    "csp       {scheme}://{}/csp-report (CSP report endpoint)",
                    r.addr
                );
                Some(r)
            }
            None => None,
        };
        let csp_reports_addr = csp_reports.as_ref().map(|r| r.addr);
        let running = server::serve(bound, encrypted, Handler(pipeline.clone()), &listen);
        let reloader = Reloader(Arc::new(ReloaderInner {
            source: source.clone(),
            pipeline: pipeline.clone(),
            supply,
            refreshers: std::sync::Mutex::new(Vec::new()),
            serial: tokio::sync::Mutex::new(()),
        }));
        reloader.restart_refreshers(&pipeline.snapshot.load().config);
        {
            let r = reloader.clone();
            admin_state.set_reload(Arc::new(move || {
                let r = r.clone();
                Box::pin(async move { r.reload().await })
            }));
            let supply = reloader.supply().clone();
            let p = pipeline.clone();
            let serial = std::sync::Mutex::new(());
            admin_state.set_scrape_hook(Arc::new(move || {
                let _g = serial.lock();
                sync_supply_metrics(&supply, p.recorder.metrics(), &p.snapshot.load().config);
            }));
            let supply = reloader.supply().clone();
            let p = pipeline.clone();
            admin_state.set_stale_lists(Arc::new(move || {
                supply.stale_lists(&p.snapshot.load().config)
            }));
        }
        admin_state.set_pipeline(pipeline.clone());
        admin_state.set_serving(true);
        Ok(App {
            pipeline,
            addrs,
            tls_addrs,
            https_addrs,
            running,
            reloader,
            admin_addr,
            admin,
            admin_state,
            csp_reports_addr,
            csp_reports,
        })
    }

    /// The one reload path (see [`Reloader::reload`]).
    pub async fn reload(&self) -> Result<(), ReloadError> {
        self.reloader.reload().await
    }

    /// Stops serving gracefully: DNS first (in-flight queries finish), then the query log is
    /// flushed, then the admin server stops.
    pub async fn shutdown(self) {
        self.admin_state.set_serving(false);
        self.running.shutdown(SHUTDOWN_GRACE).await;
        if let Some(log) = self.pipeline.recorder.query_log() {
            log.shutdown(SHUTDOWN_GRACE).await;
        }
        if let Some(x) = self.pipeline.recorder.export() {
            x.shutdown(SHUTDOWN_GRACE).await;
        }
        if let Some(r) = self.csp_reports {
            r.shutdown(Duration::from_secs(1)).await;
        }
        if let Some(a) = self.admin {
            a.shutdown(Duration::from_secs(1)).await;
        }
    }

    /// Waits (at most `within`) until every query-log entry handed over so far is on disk.
    pub async fn flush_query_log(&self, within: Duration) -> bool {
        match self.pipeline.recorder.query_log() {
            Some(l) => l.flush(within).await,
            None => true,
        }
    }

    /// Serves until SIGTERM / SIGINT, reloading on SIGHUP.
    pub async fn run_until_signalled(self) -> Result<(), StartError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(StartError::Signals)?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    match self.reload().await {
                        Ok(()) => tracing::info!("reloaded"),
                        Err(e) => tracing::error!("reload failed, keeping the running config:\n{e}"),
                    }
                }
            }
        }
        tracing::info!("shutting down: finishing in-flight queries");
        self.shutdown().await;
        Ok(())
    }
}
