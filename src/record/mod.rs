//! Recording what happened to each query: one [`Event`] per answer, built from the closed
//! [`Outcome`] and the verdict, fanned out to the Prometheus counters ([`crate::metrics`]), the
//! bounded top-k of the admin API (`topk`), and the query log ([`crate::querylog`]).
//!
//! Cheap on the request path: counter handles are resolved once per snapshot ([`Recorder::install`],
//! `handles`) and indexed by zone and outcome, so a query costs a few atomic increments, no
//! label formatting and no lock (the top-k takes a per-zone lock for policy hits only; the query
//! log is a `try_send`). Never exposes a client address: labels are closed sets, the top-k and
//! the query log see clients through the configured [`ClientMode`] (a keyed pseudonym by
//! default).
//!
//! Rooms: `handles` (counters resolved per snapshot), `slow` (the label-formatting fallbacks and
//! the exception gauges), `health` (upstream reachability), `topk`.
//!
//! The recorder reaches into nothing: it is handed a [`Scope`] per snapshot, provides the
//! upstream observer ([`Recorder::upstream_observer`]) for the installer to attach, and learns
//! the cache size through a source registered at start ([`Recorder::set_cache_entries`]).

mod handles;
mod health;
mod slow;
mod topk;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::config::{ClientMode, Mode, QueryLogConfig, RecordMode, ZoneConfig};
use crate::export::{Export, Notice, QueryEvent};
use crate::lists::CompiledList;
use crate::lists::doh::DohHosts;
use crate::metrics::{Metrics, ZONE_NONE};
use crate::outcome::{Bypass, Outcome, Verdict};
use crate::policy::ZonePolicy;
use crate::querylog::{Entry, Pseudonymizer, QueryLog};
use crate::upstream::TryObserver;
use crate::zones::ZoneId;
use handles::{Handles, N_OUTCOMES, Tops};
use slow::mode_label;

pub use health::{NotReady, UpstreamHealth};
pub use topk::{Span, TOP_CAPACITY, ZoneTop, unix_now};

/// One answered (or refused) query.
#[derive(Debug)]
pub struct Event<'a> {
    /// The client's zone name, `None` when it is in no zone.
    pub zone: Option<&'a str>,
    /// The zone's index in the snapshot the query ran on.
    pub zone_id: Option<ZoneId>,
    /// The client's address (pseudonymised before it goes anywhere).
    pub client: IpAddr,
    /// The query name, lower case, no trailing dot.
    pub qname: &'a str,
    /// The query type.
    pub qtype: RecordType,
    /// What happened.
    pub outcome: Outcome,
    /// Why, when a rule matched.
    pub verdict: Option<&'a Verdict>,
    /// The zone's mode: the `mode` label of policy hits ([`Mode::Off`] for a client in no zone).
    pub mode: Mode,
    /// The bypass kind of a local canary answer.
    pub bypass: Option<Bypass>,
    /// The response code sent.
    pub rcode: ResponseCode,
    /// The upstream that gave a fresh answer.
    pub upstream: Option<SocketAddr>,
    /// `Some(true)`: answered from the cache; `Some(false)`: a cache miss; `None`: the cache was
    /// not consulted (blocked, local, refused).
    pub cache: Option<bool>,
    /// Time from receipt until the answer is handed to the socket.
    pub elapsed: Duration,
}

impl Event<'_> {
    /// A policy hit: a block rule matched (blocked, would-block, or would-block whose upstream
    /// then failed), or a watched list did.
    pub fn is_policy_hit(&self) -> bool {
        self.verdict.is_some_and(|v| !v.allowed)
    }

    /// An exception lifted a block rule (a policy event too: recorded under `record = "policy"`).
    pub fn is_exception_hit(&self) -> bool {
        self.verdict.is_some_and(|v| v.exception.is_some())
    }
}

/// What [`Recorder::install`] (and `/api/stats`) reads from a snapshot, kept to plain parts so
/// recording does not depend on the request path's types.
pub struct Scope<'a> {
    /// Zone policies, indexed by [`ZoneId`].
    pub zones: &'a [ZonePolicy],
    /// Their configs, in the same order.
    pub zone_configs: &'a [ZoneConfig],
    /// `[[exceptions]]` (for the state gauges).
    pub exceptions: &'a [crate::config::ExceptionConfig],
    /// Compiled lists, indexed by list id.
    pub lists: &'a [Arc<CompiledList>],
    /// The upstream groups and their servers: `default` (`[upstream]`; `upstream::RECURSOR_ADDR`
    /// in recursive mode) first, then each forward rule.
    pub upstream_groups: Vec<(&'a str, &'a [SocketAddr])>,
    /// `[query_log]`.
    pub query_log: Option<&'a QueryLogConfig>,
}

/// Where the recorder learns the answer cache's size (registered once, at start).
pub type CacheEntries = Arc<dyn Fn() -> usize + Send + Sync>;

/// Where an answer's zone sends it: the query log's record and client modes, and the zone's
/// own overrides (which the export sinks apply over their modes).
#[derive(Debug, Clone, Copy)]
struct Out {
    record: RecordMode,
    client: ClientMode,
    over_record: Option<RecordMode>,
    over_client: Option<ClientMode>,
}

impl Out {
    /// Clients in no zone (or of a zone not installed yet).
    fn none(h: &Handles) -> Self {
        Self {
            record: h.none_record,
            client: h.none_client,
            over_record: None,
            over_client: None,
        }
    }
}

/// Process-wide recording state: metric families, per-snapshot handles, top-k, query log.
pub struct Recorder {
    metrics: Metrics,
    handles: ArcSwap<Handles>,
    by_outcome: [AtomicU64; N_OUTCOMES],
    doh: DohHosts,
    key: ArcSwap<Pseudonymizer>,
    query_log: OnceLock<Arc<QueryLog>>,
    export: OnceLock<Arc<Export>>,
    tops: Mutex<Tops>,
    health: Arc<UpstreamHealth>,
    cache_entries: OnceLock<CacheEntries>,
    started: Instant,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    /// A recorder with fresh metric families and a per-process pseudonym key (replaced by the
    /// query log's key when one is configured). Until [`Recorder::install`] runs, zone events
    /// are counted through the slow path.
    pub fn new() -> Self {
        let metrics = Metrics::new();
        Self {
            handles: ArcSwap::from_pointee(Handles::empty(&metrics)),
            metrics,
            by_outcome: Default::default(),
            doh: DohHosts::builtin(),
            key: ArcSwap::from_pointee(Pseudonymizer::random()),
            query_log: OnceLock::new(),
            export: OnceLock::new(),
            tops: Mutex::new(Tops::new()),
            health: Arc::new(UpstreamHealth::default()),
            cache_entries: OnceLock::new(),
            started: Instant::now(),
        }
    }

    /// The metric families.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Upstream reachability (for `/readyz`).
    pub fn upstream_health(&self) -> &UpstreamHealth {
        &self.health
    }

    /// Time since the recorder was created (the process's uptime).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Registers where the cache size comes from (once; later calls are ignored).
    pub fn set_cache_entries(&self, source: CacheEntries) {
        let _ = self.cache_entries.set(source);
    }

    /// Entries in the answer cache now (0 until a source is registered).
    pub fn cache_entries(&self) -> usize {
        self.cache_entries.get().map_or(0, |f| f())
    }

    /// Attaches the query log (once; later calls are ignored).
    pub fn attach_query_log(&self, log: Arc<QueryLog>) {
        let _ = self.query_log.set(log);
    }

    /// The attached query log.
    pub fn query_log(&self) -> Option<&Arc<QueryLog>> {
        self.query_log.get()
    }

    /// Attaches the dnstap / syslog export (once; later calls are ignored).
    pub fn attach_export(&self, export: Arc<Export>) {
        let _ = self.export.set(export);
    }

    /// The attached export.
    pub fn export(&self) -> Option<&Arc<Export>> {
        self.export.get()
    }

    /// Hands an event that is no answer (list failure, reload) to the export, if any.
    pub fn notice(&self, n: Notice) {
        if let Some(x) = self.export.get() {
            x.notice(n);
        }
    }

    /// Uses `key` for pseudonyms from now on (top clients of the admin API).
    pub fn set_key(&self, key: Pseudonymizer) {
        self.key.store(Arc::new(key));
    }

    /// The current pseudonym key.
    pub fn key(&self) -> Pseudonymizer {
        Pseudonymizer::clone(&self.key.load())
    }

    /// The pseudonym of a client address under the current key.
    pub fn pseudonym(&self, ip: IpAddr) -> String {
        self.key.load().pseudonym(ip)
    }

    /// Resolves the counter handles of a snapshot, pre-registers its closed label sets at zero,
    /// and updates the list gauges (`previous`: the lists of the snapshot being replaced, to
    /// tell reloaded lists from reused ones). The upstream observer is separate:
    /// [`Recorder::upstream_observer`].
    pub fn install(&self, s: &Scope<'_>, previous: Option<&[Arc<CompiledList>]>) {
        let old = self.handles.load();
        let mut tops = match self.tops.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let h = Handles::for_snapshot(&self.metrics, s, &mut tops, &old);
        drop(tops);
        let failed = handles::observe_lists(&self.metrics, s.lists, previous, unix_now() as f64);
        for (list, reason) in failed {
            self.notice(Notice::ListUpdateFailed {
                ts: SystemTime::now(),
                list: list.to_string(),
                reason: reason.to_owned(),
            });
        }
        self.handles.store(Arc::new(h));
        self.refresh_exceptions();
    }

    /// An observer for an upstream set of `servers` (their series pre-registered at zero),
    /// counting every try and feeding [`Recorder::upstream_health`]. One per snapshot: the code
    /// installing a snapshot attaches it to that snapshot's upstreams.
    /// `group` is the `group` label: `default` for `[upstream]` (whose tries alone feed
    /// readiness), or a forward rule's name.
    pub fn upstream_observer(&self, group: &str, servers: &[SocketAddr]) -> Arc<dyn TryObserver> {
        let health = (group == crate::config::DEFAULT_GROUP).then(|| self.health.clone());
        Arc::new(health::UpstreamObserver::new(
            &self.metrics,
            health,
            group,
            servers,
        ))
    }

    /// Reads a zone's top-k summary under its lock (`None` for a zone not installed, or whose
    /// summary a panicking writer left poisoned).
    pub fn with_zone_top<R>(&self, zone: &str, f: impl FnOnce(&ZoneTop) -> R) -> Option<R> {
        let top = match self.tops.lock() {
            Ok(t) => t.get(zone).cloned(),
            Err(p) => p.into_inner().get(zone).cloned(),
        }?;
        let t = top.lock().ok()?;
        Some(f(&t))
    }

    /// How a zone's clients are written (query log, top clients); `hash` for a zone not
    /// installed.
    pub fn client_mode(&self, zone: &str) -> ClientMode {
        self.handles
            .load()
            .zones
            .iter()
            .find(|x| &*x.name == zone)
            .map_or(ClientMode::Hash, |x| x.client)
    }

    /// Records an event.
    pub fn record(&self, ev: &Event<'_>) {
        let oi = ev.outcome.index();
        self.by_outcome[oi].fetch_add(1, Ordering::Relaxed);
        let h = self.handles.load();
        h.durations[oi].observe(ev.elapsed.as_secs_f64());
        match ev.cache {
            Some(true) => self.metrics.cache_hits.inc(),
            Some(false) => self.metrics.cache_misses.inc(),
            None => {}
        }
        let Some(zname) = ev.zone else {
            h.none[oi].inc();
            if ev.outcome == Outcome::Refused {
                self.metrics.refused_clients.inc();
            }
            self.log(ev, None, Out::none(&h));
            self.trace(ev);
            return;
        };
        let z = ev
            .zone_id
            .and_then(|i| h.zones.get(usize::from(i)))
            .filter(|z| &*z.name == zname)
            .or_else(|| h.zones.iter().find(|z| &*z.name == zname));
        let Some(z) = z else {
            // A zone of a snapshot not installed yet (start-up) or just replaced.
            self.record_slow(zname, ev);
            self.log(ev, None, Out::none(&h));
            self.trace(ev);
            return;
        };
        z.queries[oi].inc();
        if ev.outcome == Outcome::RateLimited {
            self.metrics.rate_limited.with_label_values(&[zname]).inc();
        }
        if let Some(v) = ev.verdict.filter(|v| v.exception.is_some()) {
            let c = match &v.vendor {
                Some(vendor) => z
                    .excepted
                    .get(&(v.list, Arc::as_ptr(vendor).cast::<u8>() as usize)),
                None => z.excepted_other.as_ref(),
            };
            match c {
                Some(c) => c.inc(),
                None => self.exception_slow(zname, v),
            }
        }
        if let Some(v) = ev.verdict.filter(|v| !v.allowed) {
            let c = match &v.vendor {
                Some(vendor) => z
                    .attempts
                    .get(&(v.list, Arc::as_ptr(vendor).cast::<u8>() as usize)),
                None => z.other.get(usize::from(v.list)).and_then(Option::as_ref),
            };
            match c {
                Some(c) => c.inc(),
                None => self.attempt_slow(zname, v, mode_label(ev)),
            }
            let by_list = match ev.outcome {
                Outcome::Blocked => Some((&z.blocked, &self.metrics.blocked)),
                Outcome::WouldBlock => Some((&z.would_block, &self.metrics.would_block)),
                _ => None,
            };
            if let Some((handles, family)) = by_list {
                match handles.get(usize::from(v.list)).and_then(Option::as_ref) {
                    Some(c) => c.inc(),
                    None => family.with_label_values(&[zname, &v.list_name]).inc(),
                }
            }
            // A pseudonym is kept as its keyed hash, formatted only if the top-k keeps it.
            let key = self.key.load();
            let text;
            let client = match z.client {
                ClientMode::Hash => Some(topk::Key::Pseudonym(key.hash(ev.client))),
                mode => {
                    text = key.client(ev.client, mode);
                    text.as_deref().map(topk::Key::text)
                }
            };
            if let Ok(mut t) = z.top.lock() {
                t.add(unix_now(), ev.qname, client);
            }
        }
        if let Some(k) = ev.bypass {
            z.bypass[k.index()].inc();
        }
        if self.doh.matches(ev.qname) {
            z.bypass[Bypass::DohHost.index()].inc();
        }
        self.log(
            ev,
            Some(&z.name),
            Out {
                record: z.record,
                client: z.client,
                over_record: z.over_record,
                over_client: z.over_client,
            },
        );
        self.trace(ev);
    }

    /// The one fan-out of an answer to the query log and the export sinks: the entry is built
    /// once, and only when some sink wants it.
    fn log(&self, ev: &Event<'_>, zone: Option<&Arc<str>>, out: Out) {
        let ql = self.query_log.get().filter(|_| match out.record {
            RecordMode::None => false,
            RecordMode::All => true,
            RecordMode::Policy => ev.is_policy_hit() || ev.is_exception_hit(),
        });
        let policy_hit = ev.is_policy_hit();
        let exception = ev.verdict.is_some_and(|v| v.allowed);
        let mut bypass = ev.bypass;
        let export = self.export.get().map(|x| {
            let w = x.wants(policy_hit, exception, out.over_record, || {
                if bypass.is_none() && self.doh.matches(ev.qname) {
                    bypass = Some(Bypass::DohHost);
                }
                bypass.is_some()
            });
            (x, w)
        });
        if ql.is_none() && !export.is_some_and(|(_, w)| w.any()) {
            return;
        }
        let v = ev.verdict;
        let entry = Entry {
            ts: SystemTime::now(),
            zone: zone.cloned().or_else(|| ev.zone.map(Arc::from)),
            client: ev.client,
            client_mode: out.client,
            qname: ev.qname.into(),
            qtype: ev.qtype,
            outcome: ev.outcome,
            rcode: ev.rcode,
            list: v.map(|v| v.list_name.clone()),
            rule: v.map(|v| v.rule.as_str().into()),
            vendor: v.and_then(|v| v.vendor.clone()),
            category: v.and_then(|v| v.category),
            cloaked_via: v.and_then(|v| v.cloaked_via.as_deref().map(Box::from)),
            exception: v.and_then(|v| v.exception.clone()),
            upstream: ev.upstream,
            duration: ev.elapsed,
        };
        let event = |entry| QueryEvent {
            entry,
            policy_hit,
            exception,
            bypass,
            client_override: out.over_client,
            key: self.key.load_full(),
        };
        match (ql, export.filter(|(_, w)| w.any())) {
            (Some(ql), Some((x, w))) => {
                ql.try_log(Box::new(entry.clone()));
                x.send(event(entry), w);
            }
            (Some(ql), None) => ql.try_log(Box::new(entry)),
            (None, Some((x, w))) => x.send(event(entry), w),
            (None, None) => {}
        }
    }

    fn trace(&self, ev: &Event<'_>) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let v = ev.verdict;
        tracing::debug!(
            zone = ev.zone.unwrap_or(ZONE_NONE),
            client = %self.pseudonym(ev.client),
            qname = ev.qname,
            qtype = %ev.qtype,
            outcome = ev.outcome.as_str(),
            list = v.map_or("-", |v| &*v.list_name),
            vendor = v.and_then(|v| v.vendor.as_deref()).unwrap_or("-"),
            cloaked_via = v.and_then(|v| v.cloaked_via.as_deref()).unwrap_or("-"),
            "query"
        );
    }

    /// Count of events with an outcome.
    pub fn count(&self, o: Outcome) -> u64 {
        self.by_outcome[o.index()].load(Ordering::Relaxed)
    }
}
