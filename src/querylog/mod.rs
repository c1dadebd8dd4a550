//! The query log: JSON lines, one per recorded answer, written by its own thread behind a bounded
//! channel. The request path only calls [`QueryLog::try_log`], which never waits: when the
//! writer is behind (slow disk, a stalled pipe) the entry is dropped, counted in
//! `pixelguard_query_log_dropped_total` and warned about at most every
//! [`DROP_WARN_INTERVAL`]. The writer flushes whenever it has caught up, and on shutdown.
//!
//! Privacy by default (DESIGN "Privacy of the filter itself"): clients appear as a keyed hash of
//! their address ([`Pseudonymizer`], SipHash-2-4 with a 128-bit key kept in `key_file` or given in
//! the config), or masked to /24 (IPv4) and /56 (IPv6); the full address only when configured.
//! Retention is bounded twice: by size (`max_size`, `keep` rotated files) and by age (no entry is
//! kept longer than `max_age`: the live file is rotated after `max_age / 2` and a rotated file is
//! deleted `max_age / 2` after its last write).
//!
//! Rooms: this file holds the request path's side ([`QueryLog`], [`Entry`]); `writer` the
//! writer thread and the line format; `rotate` the file on disk (size and age rotation,
//! retention); `pseudonym` the keyed client pseudonyms; `pace` how writer threads wait (the
//! export writers wait the same way).

mod drops;
mod pace;
mod pseudonym;
mod rotate;
mod writer;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::IntCounter;

use crate::config::{ClientMode, QueryLogConfig};
use crate::outcome::Outcome;
pub use drops::{DROP_WARN_INTERVAL, Drops};
pub use pace::{Next, Pace};
use writer::Writer;

pub use pseudonym::{Pseudonymizer, masked, write_pseudonym};
pub use rotate::rotated;
pub use writer::rcode_name;

/// One recorded answer, as the request path hands it over (client not yet pseudonymised: the
/// writer thread does that work).
#[derive(Debug, Clone)]
pub struct Entry {
    /// When the answer was sent.
    pub ts: SystemTime,
    /// Client zone, `None` for clients in no zone.
    pub zone: Option<Arc<str>>,
    /// Client address.
    pub client: IpAddr,
    /// How the client is to be written.
    pub client_mode: ClientMode,
    /// Query name, lower case, no trailing dot.
    pub qname: Box<str>,
    /// Query type.
    pub qtype: RecordType,
    /// What happened.
    pub outcome: Outcome,
    /// Response code sent.
    pub rcode: ResponseCode,
    /// List of the deciding rule.
    pub list: Option<Arc<str>>,
    /// The deciding rule.
    pub rule: Option<Box<str>>,
    /// Catalogue vendor.
    pub vendor: Option<Arc<str>>,
    /// Catalogue category.
    pub category: Option<&'static str>,
    /// Answer target through which a cloaked tracker was found.
    pub cloaked_via: Option<Box<str>>,
    /// The label of the exception that let the answer through (its ticket, or `exceptions[N]`).
    pub exception: Option<Arc<str>>,
    /// Upstream that answered (fresh answers only).
    pub upstream: Option<SocketAddr>,
    /// Time from receipt to answer.
    pub duration: Duration,
}

/// What the writer thread is handed.
enum Msg {
    Entry(Box<Entry>),
    Configure(Option<QueryLogConfig>, Pseudonymizer),
    Flush(tokio::sync::oneshot::Sender<()>),
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// The query log's sending side, shared by the request path and the reload path.
pub struct QueryLog {
    tx: SyncSender<Msg>,
    drops: Drops,
    capacity: usize,
}

impl std::fmt::Debug for QueryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryLog")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl QueryLog {
    /// Starts the writer thread with room for `capacity` waiting entries. `cfg` may be `None`
    /// (nothing is written until a reload configures a log). Drops are counted in `dropped`.
    pub fn start(
        cfg: Option<QueryLogConfig>,
        key: Pseudonymizer,
        capacity: usize,
        dropped: IntCounter,
    ) -> io::Result<Arc<QueryLog>> {
        let capacity = capacity.max(1);
        let (tx, rx) = sync_channel(capacity);
        let mut w = Writer::new(dropped.clone());
        w.configure(cfg, key);
        std::thread::Builder::new()
            .name("pixelguard-querylog".into())
            .spawn(move || w.run(rx))?;
        Ok(Arc::new(QueryLog {
            tx,
            drops: Drops::new(dropped),
            capacity,
        }))
    }

    /// The channel's capacity (fixed at start).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Hands an entry to the writer without waiting; drops (and counts) it when the writer is
    /// behind.
    pub fn try_log(&self, e: Box<Entry>) {
        match self.tx.try_send(Msg::Entry(e)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped(),
        }
    }

    fn dropped(&self) {
        if let Some(w) = self.drops.record() {
            tracing::warn!(
                dropped = w.dropped,
                total = w.total,
                "query log: the writer is behind; entries dropped (DNS answers are not delayed)"
            );
        }
    }

    async fn send_control(&self, mut msg: Msg, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        // Bounded by the deadline: the channel may stay full while the writer is stalled.
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    msg = m;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }

    /// Applies a (re)loaded config; entries already queued are written under the old one.
    pub async fn configure(&self, cfg: Option<QueryLogConfig>, key: Pseudonymizer) -> bool {
        if let Some(c) = &cfg
            && c.buffer != self.capacity
        {
            tracing::warn!(
                "query_log.buffer changed: it takes effect on restart (now {})",
                self.capacity
            );
        }
        self.send_control(Msg::Configure(cfg, key), Duration::from_secs(5))
            .await
    }

    /// Waits (at most `within`) until every entry handed over so far is written and flushed.
    pub async fn flush(&self, within: Duration) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = Instant::now();
        if !self.send_control(Msg::Flush(tx), within).await {
            return false;
        }
        let left = within.saturating_sub(start.elapsed());
        matches!(tokio::time::timeout(left, rx).await, Ok(Ok(())))
    }

    /// Flushes and stops the writer (at most `within`; a stalled sink is abandoned).
    pub async fn shutdown(&self, within: Duration) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = Instant::now();
        if !self.send_control(Msg::Stop(tx), within).await {
            tracing::warn!(
                "query log: the writer did not take the stop request; unflushed entries are lost"
            );
            return false;
        }
        let left = within.saturating_sub(start.elapsed());
        let ok = matches!(tokio::time::timeout(left, rx).await, Ok(Ok(())));
        if !ok {
            tracing::warn!(
                "query log: the writer did not finish in time; unflushed entries are lost"
            );
        }
        ok
    }
}

/// A small query-log config in `dir` (4 KiB files, 2 kept), for the room tests.
#[cfg(test)]
fn test_config(dir: &std::path::Path) -> QueryLogConfig {
    QueryLogConfig {
        path: dir.join("q.jsonl"),
        record: crate::config::RecordMode::All,
        client: ClientMode::Hash,
        key: None,
        key_file: dir.join("q.key"),
        max_size: 4096,
        keep: 2,
        max_age: Duration::ZERO,
        buffer: 8,
    }
}
