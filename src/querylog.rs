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

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::IntCounter;
use serde::Serialize;

use crate::config::{ClientMode, QueryLogConfig};
use crate::outcome::Outcome;

/// At most one "entries dropped" warning per this interval.
pub const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);
/// How often the writer checks ages and flushes while idle.
const TICK: Duration = Duration::from_secs(1);
/// How often the writer looks for entries while they flow (the longest an entry waits).
const POLL: Duration = Duration::from_millis(5);
/// Empty polls (about a second) after which the writer blocks instead of polling.
const IDLE_AFTER: u32 = 200;
/// Entries written between two flushes at most, when the writer never catches up.
const FLUSH_EVERY: usize = 512;

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
    /// Upstream that answered (fresh answers only).
    pub upstream: Option<SocketAddr>,
    /// Time from receipt to answer.
    pub duration: Duration,
}

/// Serialises through `Display` without an intermediate `String`.
struct Disp<T>(T);

impl<T: std::fmt::Display> Serialize for Disp<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[derive(Serialize)]
struct Line<'a> {
    ts: Disp<humantime::Rfc3339Timestamp>,
    zone: Option<&'a str>,
    client: Option<String>,
    qname: &'a str,
    qtype: Disp<RecordType>,
    outcome: &'static str,
    rcode: std::borrow::Cow<'static, str>,
    list: Option<&'a str>,
    rule: Option<&'a str>,
    vendor: Option<&'a str>,
    category: Option<&'static str>,
    cloaked_via: Option<&'a str>,
    upstream: Option<Disp<SocketAddr>>,
    duration_us: u64,
}

/// The mnemonic of a response code (`NXDOMAIN`), as dig prints it.
pub fn rcode_name(r: ResponseCode) -> std::borrow::Cow<'static, str> {
    match u16::from(r) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}").into(),
    }
}

// ------------------------------------------------------------------------------------------
// Client identity
// ------------------------------------------------------------------------------------------

/// Keyed pseudonyms of client addresses: SipHash-2-4 (a PRF designed for keyed hashing of short
/// inputs) under a 128-bit key. Without the key a pseudonym cannot be linked back to an address,
/// even by hashing the whole IPv4 space.
#[derive(Clone, PartialEq, Eq)]
pub struct Pseudonymizer {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

#[allow(deprecated)] // std's SipHasher is deprecated only in favour of RandomState, which cannot take a key.
fn siphash(k0: u64, k1: u64, data: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
    h.write(data);
    h.finish()
}

impl Pseudonymizer {
    /// A key that lives as long as the process (no query log configured).
    pub fn random() -> Self {
        Self {
            k0: rand::random(),
            k1: rand::random(),
        }
    }

    /// A key derived from a configured secret.
    pub fn from_secret(s: &str) -> Self {
        Self {
            k0: siphash(0x7069_7865_6c67_7561, 0x7264_2d6b_6579_2d30, s.as_bytes()),
            k1: siphash(0x7069_7865_6c67_7561, 0x7264_2d6b_6579_2d31, s.as_bytes()),
        }
    }

    /// The key of a query-log config: `key` if given, else the key file, created with a random
    /// key (mode 0600) when it does not exist. A key file that exists but does not hold a key is
    /// an error, never silently replaced (that would change every pseudonym).
    pub fn for_config(cfg: &QueryLogConfig) -> io::Result<Self> {
        if let Some(k) = &cfg.key {
            return Ok(Self::from_secret(&k.0));
        }
        load_or_create_key(&cfg.key_file)
    }

    /// The pseudonym of an address: `c-` and 16 hex digits. IPv4-mapped IPv6 addresses are
    /// hashed as IPv4, so a dual-stack listener does not give one client two names.
    pub fn pseudonym(&self, ip: IpAddr) -> String {
        let h = match ip.to_canonical() {
            IpAddr::V4(a) => siphash(self.k0, self.k1, &a.octets()),
            IpAddr::V6(a) => siphash(self.k0, self.k1, &a.octets()),
        };
        format!("c-{h:016x}")
    }

    /// A client as written under `mode`.
    pub fn client(&self, ip: IpAddr, mode: ClientMode) -> Option<String> {
        match mode {
            ClientMode::Hash => Some(self.pseudonym(ip)),
            ClientMode::Masked => Some(masked(ip)),
            ClientMode::Full => Some(ip.to_canonical().to_string()),
            ClientMode::None => None,
        }
    }
}

/// The network of an address: /24 for IPv4, /56 for IPv6 (a typical customer prefix).
pub fn masked(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let m = u128::from(a) & (u128::MAX << 72);
            format!("{}/56", std::net::Ipv6Addr::from(m))
        }
    }
}

fn load_or_create_key(path: &Path) -> io::Result<Pseudonymizer> {
    let parse = |text: &str| -> Option<Pseudonymizer> {
        let t = text.trim();
        if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let k0 = u64::from_str_radix(&t[..16], 16).ok()?;
        let k1 = u64::from_str_radix(&t[16..], 16).ok()?;
        Some(Pseudonymizer { k0, k1 })
    };
    match File::open(path) {
        Ok(f) => {
            let mut s = String::new();
            f.take(256).read_to_string(&mut s)?;
            parse(&s).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: not a query-log key (expected 32 hex digits); delete it to generate a new key (every pseudonym changes)",
                        path.display()
                    ),
                )
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let k: [u64; 2] = [rand::random(), rand::random()];
            let text = format!("{:016x}{:016x}\n", k[0], k[1]);
            // create_new: two processes racing both end up with the key written first.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    tracing::info!(key_file = %path.display(), "query log: generated a new pseudonym key");
                    Ok(Pseudonymizer { k0: k[0], k1: k[1] })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(path),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

// ------------------------------------------------------------------------------------------
// The handle (request path side)
// ------------------------------------------------------------------------------------------

enum Msg {
    Entry(Box<Entry>),
    Configure(Option<QueryLogConfig>, Pseudonymizer),
    Flush(tokio::sync::oneshot::Sender<()>),
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// The query log's sending side, shared by the request path and the reload path.
pub struct QueryLog {
    tx: SyncSender<Msg>,
    dropped: IntCounter,
    since_warn: AtomicU64,
    last_warn: Mutex<Option<Instant>>,
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
            dropped,
            since_warn: AtomicU64::new(0),
            last_warn: Mutex::new(None),
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
        self.dropped.inc();
        self.since_warn.fetch_add(1, Ordering::Relaxed);
        // try_lock: a contended lock means another thread is warning right now.
        let Ok(mut last) = self.last_warn.try_lock() else {
            return;
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < DROP_WARN_INTERVAL) {
            return;
        }
        *last = Some(now);
        let n = self.since_warn.swap(0, Ordering::Relaxed);
        tracing::warn!(
            dropped = n,
            total = self.dropped.get(),
            "query log: the writer is behind; entries dropped (DNS answers are not delayed)"
        );
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

// ------------------------------------------------------------------------------------------
// The writer (its own thread)
// ------------------------------------------------------------------------------------------

struct Writer {
    cfg: Option<Arc<QueryLogConfig>>,
    key: Pseudonymizer,
    out: Option<BufWriter<File>>,
    size: u64,
    opened: SystemTime,
    dropped: IntCounter,
    pending: usize,
    last_error: Option<Instant>,
    last_housekeeping: Instant,
    line: Vec<u8>,
}

impl Writer {
    fn new(dropped: IntCounter) -> Self {
        Writer {
            cfg: None,
            key: Pseudonymizer::random(),
            out: None,
            size: 0,
            opened: SystemTime::now(),
            dropped,
            pending: 0,
            last_error: None,
            last_housekeeping: Instant::now(),
            line: Vec::with_capacity(512),
        }
    }

    /// The writer loop. While entries flow it polls the channel every [`POLL`] instead of
    /// blocking on it: a blocked receiver makes every `try_send` on the request path wake it
    /// with a syscall, a polling one costs the sender nothing. After [`IDLE_AFTER`] without an
    /// entry it blocks again (1 s ticks), so an idle log costs no wake-ups.
    fn run(mut self, rx: Receiver<Msg>) {
        let mut idle_polls = 0u32;
        loop {
            let first = if idle_polls >= IDLE_AFTER {
                match rx.recv_timeout(TICK) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            } else {
                None
            };
            let mut got = usize::from(first.is_some());
            if let Some(m) = first
                && self.handle(m)
            {
                return;
            }
            // Drain what is queued (bounded by the channel's capacity plus what arrives
            // meanwhile; a flush every FLUSH_EVERY entries keeps the file current).
            loop {
                match rx.try_recv() {
                    Ok(m) => {
                        got += 1;
                        if self.handle(m) {
                            return;
                        }
                        if self.pending >= FLUSH_EVERY {
                            self.flush();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            }
            self.flush();
            self.housekeeping(false);
            if got == 0 {
                idle_polls = idle_polls.saturating_add(1);
            } else {
                idle_polls = 0;
            }
            if idle_polls < IDLE_AFTER {
                std::thread::sleep(POLL);
            }
        }
    }

    /// Handles one message; true when the writer must stop.
    fn handle(&mut self, m: Msg) -> bool {
        match m {
            Msg::Entry(e) => self.write(&e),
            Msg::Configure(cfg, key) => self.configure(cfg, key),
            Msg::Flush(ack) => {
                self.flush();
                let _ = ack.send(());
            }
            Msg::Stop(ack) => {
                self.flush();
                let _ = ack.send(());
                return true;
            }
        }
        false
    }

    fn configure(&mut self, cfg: Option<QueryLogConfig>, key: Pseudonymizer) {
        let same_file = match (&self.cfg, &cfg) {
            (Some(a), Some(b)) => a.path == b.path,
            _ => false,
        };
        if !same_file {
            self.flush();
            self.out = None;
        }
        self.cfg = cfg.map(Arc::new);
        self.key = key;
        self.housekeeping(true);
    }

    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush()
        {
            self.lost(self.pending as u64, &e);
            self.out = None;
        }
        self.pending = 0;
    }

    fn lost(&mut self, n: u64, e: &io::Error) {
        self.dropped.inc_by(n);
        let now = Instant::now();
        if self
            .last_error
            .is_none_or(|t| now.duration_since(t) >= DROP_WARN_INTERVAL)
        {
            self.last_error = Some(now);
            let path = self.cfg.as_ref().map(|c| c.path.display().to_string());
            tracing::warn!(
                path = path.as_deref().unwrap_or("-"),
                "query log: cannot write, entries dropped: {e}"
            );
        }
    }

    fn open(&mut self, cfg: &QueryLogConfig) -> io::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&cfg.path)?;
        let meta = f.metadata()?;
        self.size = meta.len();
        self.opened = if meta.len() == 0 {
            SystemTime::now()
        } else {
            meta.created()
                .or_else(|_| meta.modified())
                .unwrap_or_else(|_| SystemTime::now())
        };
        self.out = Some(BufWriter::with_capacity(64 * 1024, f));
        Ok(())
    }

    fn write(&mut self, e: &Entry) {
        let Some(cfg) = self.cfg.clone() else {
            return;
        };
        self.line.clear();
        let line = Line {
            ts: Disp(humantime::format_rfc3339_micros(e.ts)),
            zone: e.zone.as_deref(),
            client: self.key.client(e.client, e.client_mode),
            qname: &e.qname,
            qtype: Disp(e.qtype),
            outcome: e.outcome.as_str(),
            rcode: rcode_name(e.rcode),
            list: e.list.as_deref(),
            rule: e.rule.as_deref(),
            vendor: e.vendor.as_deref(),
            category: e.category,
            cloaked_via: e.cloaked_via.as_deref(),
            upstream: e.upstream.map(Disp),
            duration_us: u64::try_from(e.duration.as_micros()).unwrap_or(u64::MAX),
        };
        if serde_json::to_writer(&mut self.line, &line).is_err() {
            return;
        }
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        if self.out.is_some() && self.size > 0 && self.size + len > cfg.max_size {
            self.rotate(&cfg);
        }
        if self.out.is_none()
            && let Err(err) = self.open(&cfg)
        {
            self.lost(1, &err);
            return;
        }
        if self.size > 0 && self.size + len > cfg.max_size {
            // Opened an existing file that is already full.
            self.rotate(&cfg);
            if let Err(err) = self.open(&cfg) {
                self.lost(1, &err);
                return;
            }
        }
        let Some(out) = self.out.as_mut() else {
            return;
        };
        match out.write_all(&self.line) {
            Ok(()) => {
                self.size += len;
                self.pending += 1;
            }
            Err(err) => {
                self.lost(1 + self.pending as u64, &err);
                self.pending = 0;
                self.out = None;
            }
        }
    }

    /// `path` → `path.1` → ... → `path.keep`; the oldest beyond `keep` is deleted.
    fn rotate(&mut self, cfg: &QueryLogConfig) {
        self.flush();
        self.out = None;
        self.size = 0;
        let p = &cfg.path;
        if cfg.keep == 0 {
            let _ = std::fs::remove_file(p);
        } else {
            let _ = std::fs::remove_file(rotated(p, cfg.keep));
            for i in (1..cfg.keep).rev() {
                let _ = std::fs::rename(rotated(p, i), rotated(p, i + 1));
            }
            if let Err(e) = std::fs::rename(p, rotated(p, 1)) {
                tracing::warn!(path = %p.display(), "query log: cannot rotate: {e}");
            }
        }
        self.opened = SystemTime::now();
    }

    /// Age limits and leftover rotated files; at most every few seconds unless `now`.
    fn housekeeping(&mut self, now: bool) {
        if !now && self.last_housekeeping.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.last_housekeeping = Instant::now();
        let Some(cfg) = self.cfg.clone() else {
            return;
        };
        let half = cfg.max_age / 2;
        let at = SystemTime::now();
        let older =
            |t: SystemTime| !cfg.max_age.is_zero() && at.duration_since(t).is_ok_and(|d| d > half);
        if self.out.is_some() && self.size > 0 && older(self.opened) {
            self.rotate(&cfg);
        }
        // Rotated files: too old, or beyond `keep` (after `keep` was lowered).
        let Some(dir) = cfg.path.parent() else {
            return;
        };
        let Some(stem) = cfg.path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(n) = name
                .strip_prefix(stem)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|r| r.parse::<usize>().ok())
            else {
                continue;
            };
            let stale = ent.metadata().and_then(|m| m.modified()).is_ok_and(older);
            if n > cfg.keep || stale {
                let _ = std::fs::remove_file(ent.path());
            }
        }
    }
}

/// `queries.jsonl` → `queries.jsonl.N`.
pub fn rotated(p: &Path, n: usize) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> QueryLogConfig {
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

    fn entry(n: usize) -> Box<Entry> {
        Box::new(Entry {
            ts: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            zone: Some(Arc::from("kiosk")),
            client: "10.20.3.7".parse().unwrap(),
            client_mode: ClientMode::Masked,
            qname: format!("n{n}.example.test").into(),
            qtype: RecordType::A,
            outcome: Outcome::Blocked,
            rcode: ResponseCode::NXDomain,
            list: Some(Arc::from("trackers")),
            rule: Some("example.test".into()),
            vendor: Some(Arc::from("meta")),
            category: Some("advertising"),
            cloaked_via: None,
            upstream: None,
            duration: Duration::from_micros(42),
        })
    }

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = Pseudonymizer::from_secret("0123456789abcdef");
        let b = Pseudonymizer::from_secret("0123456789abcdeF");
        let ip: IpAddr = "10.20.3.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.20.3.7".parse().unwrap();
        assert_eq!(a.pseudonym(ip), a.pseudonym(ip));
        assert_eq!(a.pseudonym(ip), a.pseudonym(mapped));
        assert_ne!(a.pseudonym(ip), b.pseudonym(ip));
        assert_eq!(a.pseudonym(ip).len(), 18);
        assert!(!a.pseudonym(ip).contains("10.20"));
        assert_eq!(masked(ip), "10.20.3.0/24");
        assert_eq!(
            masked("2001:db8:aa:bbcc:1::9".parse().unwrap()),
            "2001:db8:aa:bb00::/56"
        );
        assert_eq!(
            a.client(mapped, ClientMode::Full).as_deref(),
            Some("10.20.3.7")
        );
        assert_eq!(a.client(ip, ClientMode::None), None);
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let k1 = Pseudonymizer::for_config(&c).unwrap();
        let k2 = Pseudonymizer::for_config(&c).unwrap();
        assert_eq!(k1, k2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&c.key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file is private: {mode:o}");
        std::fs::write(&c.key_file, "garbage").unwrap();
        assert!(
            Pseudonymizer::for_config(&c).is_err(),
            "never silently replaced"
        );
    }

    #[test]
    fn writes_rotates_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let dropped = IntCounter::new("d", "d").unwrap();
        let mut w = Writer::new(dropped.clone());
        w.configure(Some(c.clone()), Pseudonymizer::random());
        for i in 0..200 {
            w.write(&entry(i));
        }
        w.flush();
        w.housekeeping(true);
        assert_eq!(dropped.get(), 0);
        let live = std::fs::read_to_string(&c.path).unwrap();
        assert!(live.len() <= 4096, "{}", live.len());
        let first: serde_json::Value = serde_json::from_str(live.lines().next().unwrap()).unwrap();
        assert_eq!(first["client"], "10.20.3.0/24");
        assert_eq!(first["rcode"], "NXDOMAIN");
        assert_eq!(first["ts"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(first["duration_us"], 42);
        assert!(first["upstream"].is_null());
        assert!(rotated(&c.path, 1).exists() && rotated(&c.path, 2).exists());
        assert!(!rotated(&c.path, 3).exists(), "keep = 2");
        let last = live.lines().last().unwrap();
        assert!(last.contains("\"n199.example.test\""), "{last}");
    }
}
