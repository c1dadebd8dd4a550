//! The query log's writer thread: takes entries off the bounded channel, pseudonymises the
//! client, serialises one JSON line per entry and appends it to the live file, flushing whenever
//! it has caught up (and every [`FLUSH_EVERY`] entries when it never does). Entries it cannot
//! write are counted as dropped. Rotation and retention: `rotate`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::IntCounter;
use serde::Serialize;

use super::pace::{Next, Pace};
use super::{DROP_WARN_INTERVAL, Entry, Msg, Pseudonymizer};
use crate::config::QueryLogConfig;

/// How often the writer checks ages and flushes while idle.
const TICK: Duration = Duration::from_secs(1);
/// Entries written between two flushes at most, when the writer never catches up.
const FLUSH_EVERY: usize = 512;

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
    /// Only on answers an exception let through.
    #[serde(skip_serializing_if = "Option::is_none")]
    exception: Option<&'a str>,
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

pub(super) struct Writer {
    pub(super) cfg: Option<Arc<QueryLogConfig>>,
    key: Pseudonymizer,
    pub(super) out: Option<BufWriter<File>>,
    pub(super) size: u64,
    pub(super) opened: SystemTime,
    dropped: IntCounter,
    pending: usize,
    last_error: Option<Instant>,
    pub(super) last_housekeeping: Instant,
    line: Vec<u8>,
}

impl Writer {
    pub(super) fn new(dropped: IntCounter) -> Self {
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

    /// The writer loop: waits as [`Pace`] says (polling while entries flow, so the request path
    /// never pays for a wake-up), drains what is queued, flushes once caught up.
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        let mut pace = Pace::default();
        loop {
            let first = match pace.next(&rx, TICK) {
                Next::Item(m) => m,
                Next::Empty => {
                    self.housekeeping(false);
                    continue;
                }
                Next::Closed => {
                    self.flush();
                    return;
                }
            };
            if self.handle(first) {
                return;
            }
            // Drain what is queued (bounded by the channel's capacity plus what arrives
            // meanwhile; a flush every FLUSH_EVERY entries keeps the file current).
            loop {
                match rx.try_recv() {
                    Ok(m) => {
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

    pub(super) fn configure(&mut self, cfg: Option<QueryLogConfig>, key: Pseudonymizer) {
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

    pub(super) fn flush(&mut self) {
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

    pub(super) fn lost(&mut self, n: u64, e: &io::Error) {
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

    pub(super) fn write(&mut self, e: &Entry) {
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
            exception: e.exception.as_deref(),
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
}
