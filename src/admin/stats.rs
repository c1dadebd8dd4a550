//! The `/api/stats` document: totals per zone and outcome, tracker attempts by vendor and
//! category, the top blocked names and top clients per zone, list status, upstream results,
//! cache and query-log counters. Built from the recorder's metric families and accessors and the
//! running snapshot's [`Scope`]; JSON keys are an API, keep them stable.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::ClientMode;
use crate::metrics::{Metrics, UPSTREAM_RESULTS, ZONE_NONE, upstream_label};
use crate::outcome::Outcome;
use crate::record::{Recorder, Scope, Span, ZoneTop, unix_now};

/// The top names and clients of one zone, at most `k` each; `clients` false: the zone records
/// no clients (`"clients": null`).
fn top_json(t: &ZoneTop, now: u64, k: usize, clients: bool) -> Value {
    let items = |v: Vec<(String, u64, u64)>, key: &str| -> Value {
        v.into_iter()
            .map(|(name, count, error)| json!({ key: name, "count": count, "error": error }))
            .collect()
    };
    let span = |s: Span| -> Value {
        json!({
            "names": items(t.names(s, now, k), "name"),
            "clients": if clients { items(t.clients(s, now, k), "client") } else { Value::Null },
        })
    };
    json!({
        "hour": span(Span::Hour),
        "day": span(Span::Day),
    })
}

/// The `/api/stats` document (at most `top` names and clients per zone and window).
pub fn document(rec: &Recorder, s: &Scope<'_>, top: usize) -> Value {
    let m = rec.metrics();
    let now = unix_now();
    let mut zones = Map::new();
    let queries = Metrics::counter_series(&m.queries);
    let totals = |zone: &str| -> Value {
        let mut o = Map::new();
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
        let clients = rec.client_mode(&z.name) != ClientMode::None;
        let top_json = rec
            .with_zone_top(&z.name, |t| top_json(t, now, top, clients))
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
    let mut by_vendor: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
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
        .upstream_groups
        .iter()
        .flat_map(|(g, servers)| servers.iter().map(move |u| (*g, u)))
        .map(|(g, u)| {
            let l = upstream_label(u);
            let mut r = Map::new();
            for res in UPSTREAM_RESULTS {
                r.insert(
                    (*res).into(),
                    Metrics::counter_value(&m.upstream_queries, &[g, &l, res]).into(),
                );
            }
            json!({"group": g, "server": l, "tries": r})
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": rec.uptime().as_secs(),
        "zones": zones,
        "attempts": {
            "by_vendor": by_vendor,
            "by_category": by_category,
            "series": detail,
        },
        "lists": lists,
        "upstreams": upstreams,
        "ready": rec.upstream_health().ready().err().map(|e| e.to_string()),
        "cache": {
            "entries": rec.cache_entries(),
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
