//! Counter handles resolved once per snapshot: for each zone, its query counters by outcome, its
//! tracker-attempt counters by (list, vendor) (block, trial and watched lists), its blocked- and
//! would-block-by-list counters, its exception hits by (list, vendor), its bypass-by-kind counters,
//! and its query-log settings, so that recording an event costs array indexing and atomic
//! increments, never label formatting. Also the list gauges updated when a snapshot arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{Histogram, IntCounter};

use super::Scope;
use super::topk::ZoneTop;
use crate::config::{CatalogueMode, ClientMode, ListSource, Mode, RecordMode};
use crate::lists::CompiledList;
use crate::lists::catalogue::HostStatus;
use crate::metrics::{self, BYPASS_KINDS, MODE_WATCH, Metrics, OTHER, ZONE_NONE};
use crate::outcome::{Bypass, Outcome};

pub(super) const N_OUTCOMES: usize = Outcome::ALL.len();
const N_BYPASS: usize = Bypass::ALL.len();

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The per-zone top-k summaries, kept across snapshots by zone name.
pub(super) type Tops = HashMap<Arc<str>, Arc<Mutex<ZoneTop>>>;

/// One zone's handles.
pub(super) struct ZoneHandles {
    pub(super) name: Arc<str>,
    /// By [`Outcome::index`].
    pub(super) queries: [IntCounter; N_OUTCOMES],
    /// (list index, address of the attribution's vendor string) → counter. The vendor `Arc` of a
    /// verdict is cloned from the list's attribution table, so its address names the entry.
    pub(super) attempts: FastMap<(u16, usize), IntCounter>,
    /// Attempts through rules without attribution (`vendor="other"`), by list index.
    pub(super) other: Vec<Option<IntCounter>>,
    /// Blocked by list index (enforce zones only).
    pub(super) blocked: Vec<Option<IntCounter>>,
    /// Would-block by list index (block lists of log zones, lists on trial).
    pub(super) would_block: Vec<Option<IntCounter>>,
    /// Exception hits by (list index, vendor address), as `attempts`; zones with exceptions
    /// only.
    pub(super) excepted: FastMap<(u16, usize), IntCounter>,
    /// Exception hits of unattributed rules (`vendor="other"`).
    pub(super) excepted_other: Option<IntCounter>,
    /// By [`Bypass::index`].
    pub(super) bypass: [IntCounter; N_BYPASS],
    pub(super) record: RecordMode,
    pub(super) client: ClientMode,
    /// The zone's own `query_log` / `query_log_client` (they override the export sinks' modes).
    pub(super) over_record: Option<RecordMode>,
    pub(super) over_client: Option<ClientMode>,
    pub(super) top: Arc<Mutex<ZoneTop>>,
}

/// Every handle of one snapshot.
pub(super) struct Handles {
    pub(super) zones: Vec<ZoneHandles>,
    /// Queries of clients in no zone, by [`Outcome::index`].
    pub(super) none: [IntCounter; N_OUTCOMES],
    /// Request durations, by [`Outcome::index`].
    pub(super) durations: [Histogram; N_OUTCOMES],
    /// Record mode and client mode for clients in no zone.
    pub(super) none_record: RecordMode,
    pub(super) none_client: ClientMode,
    /// The `until` (Unix seconds) of every configured exception, for the state gauges.
    pub(super) exception_ends: Vec<u64>,
}

fn outcome_array<T>(f: impl Fn(Outcome) -> T) -> [T; N_OUTCOMES] {
    std::array::from_fn(|i| f(Outcome::ALL[i]))
}

impl Handles {
    /// The handles before any snapshot: no zones, nothing recorded to the query log.
    pub(super) fn empty(m: &Metrics) -> Self {
        Self {
            zones: Vec::new(),
            none: outcome_array(|o| m.queries.with_label_values(&[ZONE_NONE, o.as_str()])),
            durations: outcome_array(|o| m.duration_for(o)),
            none_record: RecordMode::None,
            none_client: ClientMode::Hash,
            exception_ends: Vec::new(),
        }
    }

    /// The handles of a snapshot, its closed label sets pre-registered at zero. Each zone keeps
    /// its top-k summary from `tops` (created when new); zones gone from the snapshot are
    /// dropped from `tops`. Zone-independent handles are shared with `old`.
    pub(super) fn for_snapshot(m: &Metrics, s: &Scope<'_>, tops: &mut Tops, old: &Handles) -> Self {
        let ql = s.query_log;
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
            let mut other = vec![None; s.lists.len()];
            let mut blocked = vec![None; s.lists.len()];
            let mut would_block = vec![None; s.lists.len()];
            let mut excepted = FastMap::default();
            let mut excepted_other = None;
            let has_exceptions = !z.exceptions.is_empty();
            // (list, the `mode` label of its attempts, is it blocking).
            let mut roles: Vec<(u16, &str, bool)> = Vec::new();
            if z.mode != Mode::Off {
                roles.extend(z.block.iter().map(|&l| (l, mode, true)));
                roles.extend(z.vendor_list.iter().map(|&l| (l, mode, true)));
                roles.extend(z.trial.iter().map(|&l| (l, Mode::Log.as_str(), false)));
                roles.extend(z.watch.iter().map(|&l| (l, MODE_WATCH, false)));
            }
            for (li, label, blocking) in roles {
                let Some(list) = s.lists.get(usize::from(li)) else {
                    continue;
                };
                let slot = usize::from(li);
                if blocking && z.mode == Mode::Enforce {
                    blocked[slot] = Some(m.blocked.with_label_values(&[name, &list.name]));
                }
                if (blocking && z.mode == Mode::Log) || label == Mode::Log.as_str() && !blocking {
                    would_block[slot] = Some(m.would_block.with_label_values(&[name, &list.name]));
                }
                // A plain list has no owners; an attributed one (`base`) names only some of
                // its rules: either way a hit may be unattributed, and counts as `other`.
                if list.attrs.is_empty() || list.base.is_some() {
                    other[slot] = Some(
                        m.tracker_attempts
                            .with_label_values(&[name, OTHER, OTHER, label]),
                    );
                    if has_exceptions {
                        excepted_other.get_or_insert_with(|| {
                            m.exception_hits.with_label_values(&[name, OTHER])
                        });
                    }
                }
                for a in &list.attrs {
                    // Caution hosts only block in strict zones (cloak targets always).
                    if a.status == HostStatus::Caution
                        && z.catalogue == CatalogueMode::Block
                        && a.category != "cname_cloak"
                    {
                        continue;
                    }
                    if blocking
                        && !z.block_vendors.is_empty()
                        && z.vendor_list == Some(li)
                        && !z.block_vendors.contains(&a.vendor)
                    {
                        continue;
                    }
                    let key = (li, Arc::as_ptr(&a.vendor).cast::<u8>() as usize);
                    let c = m
                        .tracker_attempts
                        .with_label_values(&[name, &a.vendor, a.category, label]);
                    attempts.insert(key, c);
                    if has_exceptions {
                        excepted
                            .insert(key, m.exception_hits.with_label_values(&[name, &a.vendor]));
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
                would_block,
                excepted,
                excepted_other,
                bypass,
                record: match ql {
                    None => RecordMode::None,
                    Some(q) => zc.and_then(|c| c.query_log).unwrap_or(q.record),
                },
                client: zc
                    .and_then(|c| c.query_log_client)
                    .or(ql.map(|q| q.client))
                    .unwrap_or(ClientMode::Hash),
                over_record: zc.and_then(|c| c.query_log),
                over_client: zc.and_then(|c| c.query_log_client),
                top,
            });
        }
        tops.retain(|k, _| s.zones.iter().any(|z| z.name == *k));
        Handles {
            zones,
            none: old.none.clone(),
            durations: old.durations.clone(),
            none_record: ql.map_or(RecordMode::None, |q| q.record),
            none_client: ql.map_or(ClientMode::Hash, |q| q.client),
            exception_ends: s.exceptions.iter().map(|e| e.until_unix()).collect(),
        }
    }
}

/// Updates the list gauges for a snapshot's lists (`previous`: the lists of the snapshot being
/// replaced, to tell reloaded lists from reused ones) and forgets the series of lists gone.
/// Returns the lists that failed to load now, with the reason.
pub(super) fn observe_lists(
    m: &Metrics,
    lists: &[Arc<CompiledList>],
    previous: Option<&[Arc<CompiledList>]>,
    now: f64,
) -> Vec<(Arc<str>, &'static str)> {
    let mut failed = Vec::new();
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
                failed.push((l.name.clone(), reason));
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
    failed
}
