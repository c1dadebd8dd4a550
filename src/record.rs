//! Recording what happened to each query: one [`Event`] per answer, built from the closed
//! [`Outcome`] and the verdict, fanned out to the Prometheus counters ([`crate::metrics`]), the
//! bounded top-k of the admin API, and the query log ([`crate::querylog`]).
//!
//! Cheap on the request path: counter handles are resolved once per snapshot ([`Recorder::install`])
//! and indexed by zone and outcome, so a query costs a few atomic increments, no label
//! formatting and no lock (the top-k takes a per-zone lock for policy hits only; the query log is
//! a `try_send`). Never exposes a client address: labels are closed sets, the top-k and the query
//! log see clients through the configured [`ClientMode`] (a keyed pseudonym by default).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::{Histogram, IntCounter};
use serde_json::{Value, json};

use crate::config::{ClientMode, ListSource, Mode, QueryLogConfig, RecordMode, ZoneConfig};
use crate::lists::CompiledList;
use crate::lists::catalogue::{Catalogue, HostStatus};
use crate::matcher::{Matcher, MatcherBuilder, QueryName};
use crate::metrics::{self, BYPASS_KINDS, Metrics, OTHER, UPSTREAM_RESULTS, ZONE_NONE};
use crate::outcome::{Outcome, Verdict};
use crate::policy::ZonePolicy;
use crate::querylog::{Entry, Pseudonymizer, QueryLog};
use crate::upstream::{RECURSOR_ADDR, TryObserver, Upstreams};
use crate::zones::ZoneId;

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
    /// The zone's mode (`enforce`, `log`, `off`): the `mode` label of policy hits.
    pub mode: &'static str,
    /// The canary kind, for local answers.
    pub bypass: Option<&'static str>,
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
    /// then failed).
    pub fn is_policy_hit(&self) -> bool {
        self.verdict.is_some_and(|v| !v.allowed)
    }
}

/// What [`Recorder::install`] reads from a snapshot (kept to plain parts, so recording does not
/// depend on the request path's types).
pub struct Scope<'a> {
    /// Zone policies, indexed by [`ZoneId`].
    pub zones: &'a [ZonePolicy],
    /// Their configs, in the same order.
    pub zone_configs: &'a [ZoneConfig],
    /// Compiled lists, indexed by list id.
    pub lists: &'a [Arc<CompiledList>],
    /// The upstream set (an observer is attached to it).
    pub upstreams: &'a Upstreams,
    /// `[query_log]`.
    pub query_log: Option<&'a QueryLogConfig>,
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Forwarded => 0,
        Outcome::Cached => 1,
        Outcome::Blocked => 2,
        Outcome::WouldBlock => 3,
        Outcome::Local => 4,
        Outcome::Refused => 5,
        Outcome::Failed => 6,
        Outcome::Invalid => 7,
        Outcome::RateLimited => 8,
    }
}

const N_OUTCOMES: usize = Outcome::ALL.len();
const N_RESULTS: usize = UPSTREAM_RESULTS.len();

// ------------------------------------------------------------------------------------------
// Handles resolved per snapshot
// ------------------------------------------------------------------------------------------

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct ZoneHandles {
    name: Arc<str>,
    queries: [IntCounter; N_OUTCOMES],
    /// (list index, address of the attribution's vendor string) → counter. The vendor `Arc` of a
    /// verdict is cloned from the list's attribution table, so its address names the entry.
    attempts: FastMap<(u16, usize), IntCounter>,
    other: Option<IntCounter>,
    blocked: Vec<Option<IntCounter>>,
    bypass: [IntCounter; 4],
    record: RecordMode,
    client: ClientMode,
    top: Arc<Mutex<ZoneTop>>,
}

struct Handles {
    zones: Vec<ZoneHandles>,
    none: [IntCounter; N_OUTCOMES],
    durations: [Histogram; N_OUTCOMES],
    /// Record mode and client mode for clients in no zone.
    none_record: RecordMode,
    none_client: ClientMode,
}

fn outcome_array<T>(f: impl Fn(Outcome) -> T) -> [T; N_OUTCOMES] {
    std::array::from_fn(|i| f(Outcome::ALL[i]))
}

// ------------------------------------------------------------------------------------------
// Upstream tries
// ------------------------------------------------------------------------------------------

/// Upstream reachability, for `/readyz`.
#[derive(Debug, Default)]
pub struct UpstreamHealth {
    tried: AtomicU64,
    answered: AtomicU64,
    fails_since_answer: AtomicU64,
    /// Milliseconds since `base` of the last answer.
    last_answer_ms: AtomicU64,
    base: OnceLock<Instant>,
}

/// Consecutive failed tries (with no answer for [`FAILING_AFTER`]) that make pixelguard not ready.
pub const FAILING_TRIES: u64 = 5;
/// See [`FAILING_TRIES`].
pub const FAILING_AFTER: Duration = Duration::from_secs(30);

impl UpstreamHealth {
    fn base(&self) -> Instant {
        *self.base.get_or_init(Instant::now)
    }

    fn note(&self, answered: bool) {
        self.tried.fetch_add(1, Ordering::Relaxed);
        if answered {
            self.answered.fetch_add(1, Ordering::Relaxed);
            self.fails_since_answer.store(0, Ordering::Relaxed);
            let ms = u64::try_from(self.base().elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_answer_ms.store(ms, Ordering::Relaxed);
        } else {
            self.fails_since_answer.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `Ok` when no upstream was tried yet, or one has answered and the upstreams are not
    /// currently failing ([`FAILING_TRIES`] failed tries in a row and no answer for
    /// [`FAILING_AFTER`]); otherwise why not.
    pub fn ready(&self) -> Result<(), String> {
        let tried = self.tried.load(Ordering::Relaxed);
        if tried == 0 {
            return Ok(());
        }
        if self.answered.load(Ordering::Relaxed) == 0 {
            return Err(format!(
                "no upstream has answered yet ({tried} tries failed)"
            ));
        }
        let fails = self.fails_since_answer.load(Ordering::Relaxed);
        let since = self.base().elapsed().saturating_sub(Duration::from_millis(
            self.last_answer_ms.load(Ordering::Relaxed),
        ));
        if fails >= FAILING_TRIES && since > FAILING_AFTER {
            return Err(format!(
                "upstreams failing: {fails} tries failed since the last answer {}s ago",
                since.as_secs()
            ));
        }
        Ok(())
    }
}

struct UpstreamObserver {
    servers: Vec<(SocketAddr, [IntCounter; N_RESULTS], Histogram)>,
    metrics: Metrics,
    health: Arc<UpstreamHealth>,
}

impl TryObserver for UpstreamObserver {
    fn tried(&self, server: SocketAddr, result: &'static str, elapsed: Duration) {
        self.health
            .note(result == "ok" || result == "servfail" || result == "refused");
        let r = UPSTREAM_RESULTS.iter().position(|x| *x == result);
        match (self.servers.iter().find(|s| s.0 == server), r) {
            (Some((_, counters, hist)), Some(i)) => {
                counters[i].inc();
                hist.observe(elapsed.as_secs_f64());
            }
            // Not a configured server (e.g. an authoritative server in recursive mode): the
            // label set stays closed.
            _ => {
                self.metrics
                    .upstream_queries
                    .with_label_values(&[OTHER, result])
                    .inc();
                self.metrics
                    .upstream_duration
                    .with_label_values(&[OTHER])
                    .observe(elapsed.as_secs_f64());
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Top-k: space-saving summaries in time buckets
// ------------------------------------------------------------------------------------------

/// Keys kept per bucket (memory bound: zones × 36 buckets × 2 summaries × this).
pub const TOP_CAPACITY: usize = 64;

/// Metwally et al.'s space-saving summary: at most `cap` keys; a new key replaces the least
/// counted one and inherits its count as the error bound. Every key with a true count above
/// total / cap is guaranteed to be present.
#[derive(Debug, Clone, Default)]
struct SpaceSaving {
    items: Vec<(Box<str>, u64, u64)>,
}

impl SpaceSaving {
    fn add(&mut self, key: &str) {
        if let Some(it) = self.items.iter_mut().find(|it| &*it.0 == key) {
            it.1 += 1;
            return;
        }
        if self.items.len() < TOP_CAPACITY {
            self.items.push((key.into(), 1, 0));
            return;
        }
        if let Some(min) = self.items.iter_mut().min_by_key(|it| it.1) {
            let floor = min.1;
            *min = (key.into(), floor + 1, floor);
        }
    }
}

/// Buckets of `slot_secs` seconds covering `slots × slot_secs`.
#[derive(Debug, Clone)]
struct Window {
    slot_secs: u64,
    buckets: Vec<(u64, SpaceSaving)>,
}

impl Window {
    fn new(slot_secs: u64, slots: usize) -> Self {
        Self {
            slot_secs,
            buckets: vec![(u64::MAX, SpaceSaving::default()); slots],
        }
    }

    fn add(&mut self, now: u64, key: &str) {
        let epoch = now / self.slot_secs;
        let n = self.buckets.len() as u64;
        let b = &mut self.buckets[(epoch % n) as usize];
        if b.0 != epoch {
            *b = (epoch, SpaceSaving::default());
        }
        b.1.add(key);
    }

    /// The `k` most counted keys of the buckets still inside the window: (key, count, error).
    fn top(&self, now: u64, k: usize) -> Vec<(String, u64, u64)> {
        let epoch = now / self.slot_secs;
        let n = self.buckets.len() as u64;
        let mut sum: HashMap<&str, (u64, u64)> = HashMap::new();
        for (e, ss) in &self.buckets {
            if *e == u64::MAX || *e > epoch || epoch - *e >= n {
                continue;
            }
            for (key, c, err) in &ss.items {
                let s = sum.entry(key).or_default();
                s.0 += c;
                s.1 += err;
            }
        }
        let mut v: Vec<(String, u64, u64)> = sum
            .into_iter()
            .map(|(k, (c, e))| (k.to_owned(), c, e))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
}

/// Top blocked names and top clients (by policy hits) of one zone, over the last hour (12 × 5
/// minutes) and the last day (24 × 1 hour).
#[derive(Debug, Clone)]
pub struct ZoneTop {
    names_hour: Window,
    names_day: Window,
    clients_hour: Window,
    clients_day: Window,
}

impl Default for ZoneTop {
    fn default() -> Self {
        Self {
            names_hour: Window::new(300, 12),
            names_day: Window::new(3600, 24),
            clients_hour: Window::new(300, 12),
            clients_day: Window::new(3600, 24),
        }
    }
}

impl ZoneTop {
    fn add(&mut self, now: u64, name: &str, client: Option<&str>) {
        self.names_hour.add(now, name);
        self.names_day.add(now, name);
        if let Some(c) = client {
            self.clients_hour.add(now, c);
            self.clients_day.add(now, c);
        }
    }

    fn json(&self, now: u64, k: usize, clients: bool) -> Value {
        let items = |w: &Window, key: &str| -> Value {
            w.top(now, k)
                .into_iter()
                .map(|(name, count, error)| json!({ key: name, "count": count, "error": error }))
                .collect()
        };
        json!({
            "hour": {
                "names": items(&self.names_hour, "name"),
                "clients": if clients { items(&self.clients_hour, "client") } else { Value::Null },
            },
            "day": {
                "names": items(&self.names_day, "name"),
                "clients": if clients { items(&self.clients_day, "client") } else { Value::Null },
            },
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ------------------------------------------------------------------------------------------
// DoH endpoints
// ------------------------------------------------------------------------------------------

/// The catalogue's public DoH / DoT host names, matched as suffixes, behind a cheap prefilter on
/// the last two labels (most queries are not for these, and the full match hashes every suffix).
struct DohHosts {
    matcher: Matcher,
    tails: std::collections::HashSet<Box<str>, foldhash::fast::RandomState>,
}

fn last_two_labels(name: &str) -> &str {
    match name.rmatch_indices('.').nth(1) {
        Some((i, _)) => &name[i + 1..],
        None => name,
    }
}

impl DohHosts {
    fn builtin() -> Self {
        let hosts = Catalogue::builtin()
            .map(|c| c.doh_hosts)
            .unwrap_or_default();
        let mut b = MatcherBuilder::new();
        let mut tails = std::collections::HashSet::default();
        for h in &hosts {
            b.insert(h, 1, |a, _| a);
            tails.insert(Box::from(last_two_labels(h)));
        }
        Self {
            matcher: b.build(),
            tails,
        }
    }

    fn matches(&self, qname: &str) -> bool {
        if qname.is_empty() || !self.tails.contains(last_two_labels(qname)) {
            return false;
        }
        let q = QueryName::new(qname.as_bytes());
        self.matcher
            .find(&q, |_| std::ops::ControlFlow::Break(()))
            .is_some()
    }
}

// ------------------------------------------------------------------------------------------
// The recorder
// ------------------------------------------------------------------------------------------

/// Process-wide recording state: metric families, per-snapshot handles, top-k, query log.
pub struct Recorder {
    metrics: Metrics,
    handles: ArcSwap<Handles>,
    by_outcome: [AtomicU64; N_OUTCOMES],
    doh: DohHosts,
    key: ArcSwap<Pseudonymizer>,
    query_log: OnceLock<Arc<QueryLog>>,
    tops: Mutex<HashMap<Arc<str>, Arc<Mutex<ZoneTop>>>>,
    health: Arc<UpstreamHealth>,
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
        let none = outcome_array(|o| metrics.queries.with_label_values(&[ZONE_NONE, o.as_str()]));
        let durations = outcome_array(|o| metrics.duration_for(o));
        Self {
            handles: ArcSwap::from_pointee(Handles {
                zones: Vec::new(),
                none,
                durations,
                none_record: RecordMode::None,
                none_client: ClientMode::Hash,
            }),
            metrics,
            by_outcome: Default::default(),
            doh: DohHosts::builtin(),
            key: ArcSwap::from_pointee(Pseudonymizer::random()),
            query_log: OnceLock::new(),
            tops: Mutex::new(HashMap::new()),
            health: Arc::new(UpstreamHealth::default()),
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

    /// Attaches the query log (once; later calls are ignored).
    pub fn attach_query_log(&self, log: Arc<QueryLog>) {
        let _ = self.query_log.set(log);
    }

    /// The attached query log.
    pub fn query_log(&self) -> Option<&Arc<QueryLog>> {
        self.query_log.get()
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
    /// attaches the upstream observer, and updates the list gauges (`previous`: the lists of the
    /// snapshot being replaced, to tell reloaded lists from reused ones).
    pub fn install(&self, s: &Scope<'_>, previous: Option<&[Arc<CompiledList>]>) {
        let m = &self.metrics;
        let ql = s.query_log;
        let mut tops = match self.tops.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let mut zones = Vec::with_capacity(s.zones.len());
        for (i, z) in s.zones.iter().enumerate() {
            let zc = s
                .zone_configs
                .get(i)
                .filter(|c| *c.name == *z.name)
                .or_else(|| s.zone_configs.iter().find(|c| *c.name == *z.name));
            let name: &str = &z.name;
            let mode = z.mode.as_str();
            let queries = outcome_array(|o| m.queries.with_label_values(&[name, o.as_str()]));
            // Pre-registered at zero, so the series exists before the first limited query.
            let _ = m.rate_limited.with_label_values(&[name]);
            let bypass =
                std::array::from_fn(|k| m.bypass.with_label_values(&[name, BYPASS_KINDS[k]]));
            let mut attempts = FastMap::default();
            let mut other = None;
            let mut blocked = vec![None; s.lists.len()];
            if z.mode != Mode::Off {
                for &li in &z.block {
                    let Some(list) = s.lists.get(usize::from(li)) else {
                        continue;
                    };
                    if z.mode == Mode::Enforce {
                        blocked[usize::from(li)] =
                            Some(m.blocked.with_label_values(&[name, &list.name]));
                    }
                    if list.attrs.is_empty() {
                        other.get_or_insert_with(|| {
                            m.tracker_attempts
                                .with_label_values(&[name, OTHER, OTHER, mode])
                        });
                    }
                    for a in &list.attrs {
                        // Caution hosts only block in strict zones (cloak targets always).
                        if a.status == HostStatus::Caution
                            && z.catalogue == crate::config::CatalogueMode::Block
                            && a.category != "cname_cloak"
                        {
                            continue;
                        }
                        let c = m
                            .tracker_attempts
                            .with_label_values(&[name, &a.vendor, a.category, mode]);
                        attempts.insert((li, Arc::as_ptr(&a.vendor).cast::<u8>() as usize), c);
                    }
                }
            }
            let top = tops
                .entry(z.name.clone())
                .or_insert_with(|| Arc::new(Mutex::new(ZoneTop::default())))
                .clone();
            zones.push(ZoneHandles {
                name: z.name.clone(),
                queries,
                attempts,
                other,
                blocked,
                bypass,
                record: match ql {
                    None => RecordMode::None,
                    Some(q) => zc.and_then(|c| c.query_log).unwrap_or(q.record),
                },
                client: zc
                    .and_then(|c| c.query_log_client)
                    .or(ql.map(|q| q.client))
                    .unwrap_or(ClientMode::Hash),
                top,
            });
        }
        tops.retain(|k, _| s.zones.iter().any(|z| z.name == *k));
        drop(tops);

        // Upstreams: one observer per snapshot, with that snapshot's servers pre-registered.
        let servers = s
            .upstreams
            .servers()
            .iter()
            .map(|a| {
                let l = if *a == RECURSOR_ADDR {
                    metrics::UPSTREAM_RECURSIVE.to_owned()
                } else {
                    a.to_string()
                };
                let counters = std::array::from_fn(|i| {
                    m.upstream_queries
                        .with_label_values(&[l.as_str(), UPSTREAM_RESULTS[i]])
                });
                (
                    *a,
                    counters,
                    m.upstream_duration.with_label_values(&[l.as_str()]),
                )
            })
            .collect();
        s.upstreams.set_observer(Arc::new(UpstreamObserver {
            servers,
            metrics: m.clone(),
            health: self.health.clone(),
        }));

        self.observe_lists(s.lists, previous);

        let old = self.handles.load();
        self.handles.store(Arc::new(Handles {
            zones,
            none: old.none.clone(),
            durations: old.durations.clone(),
            none_record: ql.map_or(RecordMode::None, |q| q.record),
            none_client: ql.map_or(ClientMode::Hash, |q| q.client),
        }));
    }

    fn observe_lists(&self, lists: &[Arc<CompiledList>], previous: Option<&[Arc<CompiledList>]>) {
        let m = &self.metrics;
        let now = unix_now() as f64;
        for l in lists {
            let name: &str = &l.name;
            for r in metrics::LIST_LOAD_REASONS {
                m.list_update_failures.with_label_values(&[name, r]);
            }
            m.list_entries
                .with_label_values(&[name])
                .set(i64::try_from(l.entries()).unwrap_or(i64::MAX));
            let last = m.list_last_success.with_label_values(&[name]);
            let reused = previous.is_some_and(|p| p.iter().any(|o| Arc::ptr_eq(o, l)));
            match (&l.error, &l.source) {
                (Some(e), _) if !reused => {
                    let reason = if e.contains("no valid entries") {
                        "empty"
                    } else if e.contains("cannot read") {
                        "read"
                    } else {
                        "parse"
                    };
                    m.list_update_failed(name, reason);
                }
                // Builtin lists are as fresh as the binary: always current.
                (None, ListSource::Builtin(_)) => last.set(now),
                (None, ListSource::File(_)) if !reused => last.set(now),
                _ => {}
            }
        }
        if let Some(prev) = previous {
            for p in prev {
                if !lists.iter().any(|l| l.name == p.name) {
                    m.forget_list(&p.name);
                }
            }
        }
    }

    /// Records an event.
    pub fn record(&self, ev: &Event<'_>) {
        let oi = outcome_index(ev.outcome);
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
            self.log(ev, None, h.none_record, h.none_client);
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
            self.log(ev, None, h.none_record, h.none_client);
            self.trace(ev);
            return;
        };
        z.queries[oi].inc();
        if ev.outcome == Outcome::RateLimited {
            self.metrics.rate_limited.with_label_values(&[zname]).inc();
        }
        if let Some(v) = ev.verdict.filter(|v| !v.allowed) {
            let c = match &v.vendor {
                Some(vendor) => z
                    .attempts
                    .get(&(v.list, Arc::as_ptr(vendor).cast::<u8>() as usize)),
                None => z.other.as_ref(),
            };
            match c {
                Some(c) => c.inc(),
                None => self.attempt_slow(zname, v, ev.mode),
            }
            if ev.outcome == Outcome::Blocked {
                match z.blocked.get(usize::from(v.list)).and_then(Option::as_ref) {
                    Some(c) => c.inc(),
                    None => self
                        .metrics
                        .blocked
                        .with_label_values(&[zname, &v.list_name])
                        .inc(),
                }
            }
            let client = self.key.load().client(ev.client, z.client);
            if let Ok(mut t) = z.top.lock() {
                t.add(unix_now(), ev.qname, client.as_deref());
            }
        }
        if let Some(k) = ev.bypass
            && let Some(i) = BYPASS_KINDS.iter().position(|x| *x == k)
        {
            z.bypass[i].inc();
        }
        if self.doh.matches(ev.qname) {
            z.bypass[3].inc();
        }
        self.log(ev, Some(&z.name), z.record, z.client);
        self.trace(ev);
    }

    fn attempt_slow(&self, zone: &str, v: &Verdict, mode: &str) {
        self.metrics
            .tracker_attempts
            .with_label_values(&[
                zone,
                v.vendor.as_deref().unwrap_or(OTHER),
                v.category.unwrap_or(OTHER),
                mode,
            ])
            .inc();
    }

    fn record_slow(&self, zone: &str, ev: &Event<'_>) {
        let m = &self.metrics;
        m.queries
            .with_label_values(&[zone, ev.outcome.as_str()])
            .inc();
        if let Some(v) = ev.verdict.filter(|v| !v.allowed) {
            self.attempt_slow(zone, v, ev.mode);
            if ev.outcome == Outcome::Blocked {
                m.blocked.with_label_values(&[zone, &v.list_name]).inc();
            }
        }
        if let Some(k) = ev.bypass {
            m.bypass.with_label_values(&[zone, k]).inc();
        }
        if self.doh.matches(ev.qname) {
            m.bypass.with_label_values(&[zone, "doh_host"]).inc();
        }
    }

    fn log(&self, ev: &Event<'_>, zone: Option<&Arc<str>>, record: RecordMode, client: ClientMode) {
        let wanted = match record {
            RecordMode::None => false,
            RecordMode::All => true,
            RecordMode::Policy => ev.is_policy_hit(),
        };
        if !wanted {
            return;
        }
        let Some(ql) = self.query_log.get() else {
            return;
        };
        let v = ev.verdict;
        ql.try_log(Box::new(Entry {
            ts: SystemTime::now(),
            zone: zone.cloned().or_else(|| ev.zone.map(Arc::from)),
            client: ev.client,
            client_mode: client,
            qname: ev.qname.into(),
            qtype: ev.qtype,
            outcome: ev.outcome,
            rcode: ev.rcode,
            list: v.map(|v| v.list_name.clone()),
            rule: v.map(|v| v.rule.as_str().into()),
            vendor: v.and_then(|v| v.vendor.clone()),
            category: v.and_then(|v| v.category),
            cloaked_via: v.and_then(|v| v.cloaked_via.as_deref().map(Box::from)),
            upstream: ev.upstream,
            duration: ev.elapsed,
        }));
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
        self.by_outcome[outcome_index(o)].load(Ordering::Relaxed)
    }

    /// The `/api/stats` document: totals per zone and outcome, attempts by vendor and category,
    /// the top blocked names and top clients per zone (last hour and day, at most `top` each),
    /// list status, upstream results, cache and query-log counters.
    pub fn stats(&self, s: &Scope<'_>, cache_entries: usize, top: usize) -> Value {
        let m = &self.metrics;
        let now = unix_now();
        let tops = match self.tops.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let h = self.handles.load();
        let mut zones = serde_json::Map::new();
        let queries = Metrics::counter_series(&m.queries);
        let totals = |zone: &str| -> Value {
            let mut o = serde_json::Map::new();
            let mut total = 0;
            for out in Outcome::ALL {
                let n = queries
                    .iter()
                    .find(|(l, _)| l.get("zone") == zone && l.get("outcome") == out.as_str())
                    .map_or(0, |x| x.1);
                total += n;
                o.insert(out.as_str().into(), n.into());
            }
            o.insert("total".into(), total.into());
            Value::Object(o)
        };
        for z in s.zones {
            let client = h
                .zones
                .iter()
                .find(|x| x.name == z.name)
                .map_or(ClientMode::Hash, |x| x.client);
            let top_json = tops
                .get(&z.name)
                .and_then(|t| {
                    t.lock()
                        .ok()
                        .map(|t| t.json(now, top, client != ClientMode::None))
                })
                .unwrap_or(Value::Null);
            zones.insert(
                z.name.to_string(),
                json!({
                    "mode": z.mode.as_str(),
                    "queries": totals(&z.name),
                    "top": top_json,
                }),
            );
        }
        zones.insert(ZONE_NONE.into(), json!({ "queries": totals(ZONE_NONE) }));

        let attempts = Metrics::counter_series(&m.tracker_attempts);
        let mut by_vendor: std::collections::BTreeMap<String, u64> = Default::default();
        let mut by_category: std::collections::BTreeMap<String, u64> = Default::default();
        let mut detail = Vec::new();
        for (l, n) in &attempts {
            let (vendor, category) = (l.get("vendor"), l.get("category"));
            *by_vendor.entry(vendor.to_owned()).or_default() += n;
            *by_category.entry(category.to_owned()).or_default() += n;
            detail.push(json!({
                "zone": l.get("zone"),
                "vendor": vendor,
                "category": category,
                "mode": l.get("mode"),
                "count": n,
            }));
        }
        let lists: Vec<Value> = s
            .lists
            .iter()
            .map(|l| {
                let last = m
                    .list_last_success
                    .get_metric_with_label_values(&[&l.name])
                    .map(|g| g.get())
                    .unwrap_or(0.0);
                let failures: u64 = Metrics::counter_series(&m.list_update_failures)
                    .iter()
                    .filter(|(lb, _)| lb.get("list") == &*l.name)
                    .map(|x| x.1)
                    .sum();
                json!({
                    "name": &*l.name,
                    "source": l.source.to_string(),
                    "format": l.format.as_str(),
                    "entries": l.entries(),
                    "skipped_lines": l.report.skipped_total(),
                    "loaded": l.error.is_none(),
                    "error": l.error,
                    "last_success": if last > 0.0 { json!(last as u64) } else { Value::Null },
                    "update_failures": failures,
                })
            })
            .collect();
        let upstreams: Vec<Value> = s
            .upstreams
            .servers()
            .iter()
            .map(|u| {
                let l = if *u == RECURSOR_ADDR {
                    metrics::UPSTREAM_RECURSIVE.to_owned()
                } else {
                    u.to_string()
                };
                let mut r = serde_json::Map::new();
                for res in UPSTREAM_RESULTS {
                    r.insert(
                        (*res).into(),
                        Metrics::counter_value(&m.upstream_queries, &[&l, res]).into(),
                    );
                }
                json!({"server": l, "tries": r})
            })
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "zones": zones,
            "attempts": {
                "by_vendor": by_vendor,
                "by_category": by_category,
                "series": detail,
            },
            "lists": lists,
            "upstreams": upstreams,
            "ready": self.health.ready().err(),
            "cache": {
                "entries": cache_entries,
                "hits": m.cache_hits.get(),
                "misses": m.cache_misses.get(),
            },
            "query_log": {
                "enabled": s.query_log.is_some(),
                "path": s.query_log.map(|q| q.path.display().to_string()),
                "dropped": m.query_log_dropped.get(),
            },
            "refused_clients": m.refused_clients.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_index_follows_outcome_all() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(
                outcome_index(*o),
                i,
                "{o:?}: handles are built in Outcome::ALL order"
            );
        }
    }

    #[test]
    fn space_saving_keeps_heavy_hitters() {
        let mut ss = SpaceSaving::default();
        for i in 0..10_000u32 {
            ss.add(&format!("rare-{i}"));
            if i % 4 == 0 {
                ss.add("heavy.example");
            }
        }
        assert!(ss.items.len() <= TOP_CAPACITY);
        let h = ss.items.iter().find(|x| &*x.0 == "heavy.example").unwrap();
        assert!(h.1 >= 2_500 && h.1 - h.2 <= 2_500, "{h:?}");
    }

    #[test]
    fn windows_expire() {
        let mut w = Window::new(300, 12);
        let t0 = 1_700_000_000;
        w.add(t0, "a");
        w.add(t0, "a");
        w.add(t0 + 600, "b");
        let top = w.top(t0 + 600, 10);
        assert_eq!(top[0], ("a".into(), 2, 0));
        assert_eq!(top[1], ("b".into(), 1, 0));
        assert!(
            w.top(t0 + 3600, 10).iter().all(|x| x.0 != "a"),
            "older than an hour"
        );
        assert_eq!(w.top(t0 + 3600, 10).len(), 1);
        assert!(w.top(t0 + 7200, 10).is_empty());
    }

    #[test]
    fn doh_hosts_match_as_suffixes() {
        let d = DohHosts::builtin();
        assert!(d.matches("dns.google"));
        assert!(d.matches("abc123.dns.nextdns.io"));
        assert!(!d.matches("google"));
        assert!(!d.matches("www.example.test"));
        assert!(!d.matches(""));
    }

    #[test]
    fn readiness_follows_upstream_answers() {
        let h = UpstreamHealth::default();
        assert!(h.ready().is_ok(), "nothing tried yet");
        h.note(false);
        assert!(h.ready().unwrap_err().contains("no upstream has answered"));
        h.note(true);
        for _ in 0..FAILING_TRIES {
            h.note(false);
        }
        assert!(h.ready().is_ok(), "an answer within {FAILING_AFTER:?}");
    }
}
