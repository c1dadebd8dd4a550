//! Wiring: config → snapshot → pipeline → listeners, the start-up summary, the one reload path,
//! and signal handling (SIGTERM / SIGINT: graceful shutdown; SIGHUP: reload). Integration tests
//! start pixelguard in-process through [`App::start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, ConfigErrors, ListSource, Overrides};
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
    source: ConfigSource,
    running: Running,
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
        let src = match &l.source {
            ListSource::Builtin(b) => format!("builtin:{b}"),
            ListSource::File(p) => p.display().to_string(),
        };
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
        };
        let bound = server::bind_all(&config.server.listen, listen.udp_sockets)
            .with_context(|| format!("binding {:?}", config.server.listen))?;
        let addrs: Vec<SocketAddr> = bound.iter().map(|b| b.addr).collect();
        let snapshot = tokio::task::spawn_blocking(move || Snapshot::build(config, None)).await?;
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
        Ok(App {
            pipeline,
            addrs,
            source,
            running,
        })
    }

    /// The one reload path: re-reads the config and lists, builds a complete snapshot off the
    /// request path and swaps it in. A config that fails validation keeps the running snapshot.
    pub async fn reload(&self) -> Result<(), ConfigErrors> {
        let config = self.source.load()?;
        let pipeline = self.pipeline.clone();
        let snap = tokio::task::spawn_blocking(move || {
            let prev = pipeline.snapshot.load_full();
            Snapshot::build(config, Some(&prev))
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
        if snap.config.server.listen != self.pipeline.snapshot.load().config.server.listen {
            tracing::warn!("server.listen changed: listeners change only on restart");
        }
        self.pipeline.swap(snap);
        Ok(())
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
