//! Wiring: config → snapshot → pipeline → listeners, the start-up summary, the one reload path,
//! and signal handling (SIGTERM / SIGINT: graceful shutdown; SIGHUP: reload). Integration tests
//! start pixelguard in-process through [`App::start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, ConfigErrors, Overrides};
use crate::lists::supply::ListSupply;
use crate::pipeline::{Handler, Pipeline};
use crate::server::{self, ListenConfig, Running};
use crate::snapshot::Snapshot;

/// How long shutdown waits for in-flight queries.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where the config comes from, for reloads.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file, or `None` for the embedded default.
    pub path: Option<PathBuf>,
    /// Command-line overrides.
    pub overrides: Overrides,
}

impl ConfigSource {
    /// Loads and validates the config.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        match &self.path {
            Some(p) => Config::load(p, &self.overrides),
            None => Config::embedded(&self.overrides),
        }
    }
}

/// A running pixelguard.
pub struct App {
    /// The request path's state.
    pub pipeline: Arc<Pipeline>,
    /// Bound listen addresses (ports resolved when 0 was asked for).
    pub addrs: Vec<SocketAddr>,
    running: Running,
    /// The one reload path, shared with SIGHUP, list refresh timers and the admin endpoint.
    pub reloader: Reloader,
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
    pub async fn reload(&self) -> Result<(), ConfigErrors> {
        let _g = self.0.serial.lock().await;
        let config = self.0.source.load()?;
        // Lists new to this config are downloaded (or read from disk) before they are used.
        let missing = self.0.supply.prepare(&config).await;
        if !missing.is_empty() {
            tracing::error!(lists = %missing.join(", "), "remote list(s) without content after reload");
        }
        self.restart_refreshers(&config);
        self.install(config).await
    }

    /// Rebuilds the snapshot from the running config with the current list content (after a
    /// list refresh brought new content).
    pub async fn rebuild(&self) -> Result<(), ConfigErrors> {
        let _g = self.0.serial.lock().await;
        let config = self.0.pipeline.snapshot.load().config.clone();
        self.install(config).await
    }

    async fn install(&self, config: crate::config::Config) -> Result<(), ConfigErrors> {
        let pipeline = self.0.pipeline.clone();
        let supply = self.0.supply.clone();
        let old_listen = pipeline.snapshot.load().config.server.listen.clone();
        let snap = tokio::task::spawn_blocking(move || {
            let prev = pipeline.snapshot.load_full();
            Snapshot::build(config, Some(&prev), Some(&supply))
        })
        .await
        .map_err(|e| {
            ConfigErrors(vec![crate::config::ConfigError {
                file: "<reload>".into(),
                line: 0,
                column: 0,
                message: e.to_string(),
            }])
        })?;
        if snap.config.server.listen != old_listen {
            tracing::warn!("server.listen changed: listeners change only on restart");
        }
        self.0.pipeline.swap(snap);
        Ok(())
    }

    fn restart_refreshers(&self, config: &crate::config::Config) {
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

/// The lines printed at start-up (and by `check`): one per listener, upstream, zone and list.
pub fn summary(snap: &Snapshot, addrs: &[SocketAddr]) -> Vec<String> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(format!("listen    {a} (udp, tcp)"));
    }
    for u in snap.upstreams.servers() {
        out.push(format!("upstream  {u} (udp, tcp fallback)"));
    }
    if snap.upstreams.servers().is_empty() {
        out.push("upstream  none: every cache miss will be answered SERVFAIL".into());
    }
    for z in &snap.config.zones {
        let nets: Vec<String> = z.networks.iter().map(|n| n.to_string()).collect();
        out.push(format!(
            "zone      {}: {} mode={} response={} block=[{}] allow=[{}]",
            z.name,
            nets.join(" "),
            z.mode.as_str(),
            z.response.describe(),
            z.block.join(", "),
            z.allow.join(", ")
        ));
    }
    for l in &snap.lists {
        let src = l.source.to_string();
        let mut line = format!(
            "list      {}: {} ({}) {} entries, {} lines skipped",
            l.name,
            src,
            l.format.as_str(),
            l.entries(),
            l.report.skipped_total()
        );
        if let Some(e) = &l.error {
            line.push_str(&format!(" -- NOT LOADED: {e}"));
        }
        out.push(line);
    }
    out
}

impl App {
    /// Builds the first snapshot, binds every listener and starts serving.
    pub async fn start(source: ConfigSource) -> anyhow::Result<App> {
        let config = source.load().map_err(|e| anyhow::anyhow!("{e}"))?;
        let listen = ListenConfig {
            udp_sockets: if config.server.udp_sockets == 0 {
                tokio::runtime::Handle::current().metrics().num_workers()
            } else {
                config.server.udp_sockets
            },
            tcp_idle_timeout: config.server.tcp_idle_timeout,
            tcp_max_connections: config.server.tcp_max_connections,
            udp_fast_path: config.server.udp_fast_path,
        };
        let bound = server::bind_all(&config.server.listen, listen.udp_sockets)
            .with_context(|| format!("binding {:?}", config.server.listen))?;
        let addrs: Vec<SocketAddr> = bound.iter().map(|b| b.addr).collect();
        let supply = ListSupply::new(&config.state_dir);
        let missing = supply.prepare(&config).await;
        if !missing.is_empty() {
            if config.strict_start {
                anyhow::bail!(
                    "strict_start: remote list(s) {} have neither a download nor a disk copy in {}",
                    missing.join(", "),
                    config.state_dir.display()
                );
            }
            tracing::error!(
                lists = %missing.join(", "),
                "remote list(s) have neither a download nor a disk copy: zones using them start WITHOUT them"
            );
        }
        let supply2 = supply.clone();
        let snapshot =
            tokio::task::spawn_blocking(move || Snapshot::build(config, None, Some(&supply2)))
                .await?;
        for line in summary(&snapshot, &addrs) {
            tracing::info!("{line}");
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
        let running = server::serve(bound, Handler(pipeline.clone()), &listen);
        let reloader = Reloader(Arc::new(ReloaderInner {
            source: source.clone(),
            pipeline: pipeline.clone(),
            supply,
            refreshers: std::sync::Mutex::new(Vec::new()),
            serial: tokio::sync::Mutex::new(()),
        }));
        reloader.restart_refreshers(&pipeline.snapshot.load().config);
        Ok(App {
            pipeline,
            addrs,
            running,
            reloader,
        })
    }

    /// The one reload path (see [`Reloader::reload`]).
    pub async fn reload(&self) -> Result<(), ConfigErrors> {
        self.reloader.reload().await
    }

    /// Stops serving gracefully.
    pub async fn shutdown(self) {
        self.running.shutdown(SHUTDOWN_GRACE).await;
    }

    /// Serves until SIGTERM / SIGINT, reloading on SIGHUP.
    pub async fn run_until_signalled(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
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
