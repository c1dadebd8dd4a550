//! The cluster view's data: the same series the page draws from memory, read instead from
//! Prometheus's HTTP API (`[admin] prometheus`), summed over every replica it scrapes.
//!
//! One `query_range` of `sum by (zone, vendor, category, mode) (pixelguard_tracker_attempts_total)`
//! over the period plus one bucket before it, at the bucket width; each bucket's count is the
//! growth of that sum across the bucket (a drop, a replica restarting, counts the new value),
//! exactly as the in-memory sampler takes deltas. Raw counter sums rather than `increase()`:
//! `increase()` extrapolates (fractions) and misses a series' first scrape, so the page would not
//! add up to the replicas' `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::series::{Key, Period, Window};
use crate::metrics::{BYPASS_ATTEMPTS_TOTAL, TRACKER_ATTEMPTS_TOTAL};

/// Time allowed for one query.
pub const TIMEOUT: Duration = Duration::from_secs(5);

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// The `data.result` of a Prometheus API answer.
async fn call(
    base: &url::Url,
    path: &str,
    params: &[(&str, String)],
) -> Result<Vec<Value>, String> {
    let url = base.join(path).map_err(|e| format!("{base}{path}: {e}"))?;
    let r = client()?
        .get(url.clone())
        .query(params)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() || v["status"] != "success" {
        return Err(format!(
            "{url}: {status}: {}",
            v["error"].as_str().unwrap_or("no error text")
        ));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn key(metric: &Value) -> Key {
    let l = |n: &str| metric[n].as_str().unwrap_or("").to_owned();
    Key {
        zone: l("zone"),
        vendor: l("vendor"),
        category: l("category"),
        mode: l("mode"),
    }
}

/// A sample value (`[time, "value"]`) as a whole count.
fn count(v: &Value) -> Option<(f64, u64)> {
    let t = v.get(0)?.as_f64()?;
    let x: f64 = v.get(1)?.as_str()?.parse().ok()?;
    Some((
        t,
        if x.is_finite() && x > 0.0 {
            x.round() as u64
        } else {
            0
        },
    ))
}

/// The period's window, summed over the replicas Prometheus scrapes.
pub async fn window(base: &url::Url, period: Period, now: u64) -> Result<Window, String> {
    let (width, n) = period.buckets();
    let end = now;
    let start = end.saturating_sub(width * n as u64);
    let expr = format!("sum by (zone, vendor, category, mode) ({TRACKER_ATTEMPTS_TOTAL})");
    let result = call(
        base,
        "api/v1/query_range",
        &[
            ("query", expr),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", width.to_string()),
        ],
    )
    .await?;
    // Points at start, start+w, ..., end: bucket i is the growth from point i to point i+1.
    let starts: Vec<u64> = (0..n as u64).map(|i| start + i * width).collect();
    let mut rows = BTreeMap::new();
    for s in &result {
        let mut at: Vec<Option<u64>> = vec![None; n + 1];
        for v in s["values"].as_array().into_iter().flatten() {
            if let Some((t, c)) = count(v) {
                let i = ((t as u64).saturating_sub(start) + width / 2) / width;
                if let Some(slot) = at.get_mut(i as usize) {
                    *slot = Some(c);
                }
            }
        }
        let mut counts = vec![0u64; n];
        let mut prev = at[0];
        for i in 0..n {
            if let Some(c) = at[i + 1] {
                counts[i] = match prev {
                    Some(p) if c >= p => c - p,
                    Some(_) => c,
                    // Absent before: the series began in this bucket.
                    None => c,
                };
                prev = Some(c);
            }
        }
        if counts.iter().any(|c| *c > 0) {
            let first = counts.iter().position(|c| *c > 0).map_or(0, |i| starts[i]);
            let last = counts.iter().rposition(|c| *c > 0).map_or(0, |i| starts[i]);
            rows.insert(key(&s["metric"]), (counts, first, last));
        }
    }
    Ok(Window { starts, rows })
}

/// Bypass attempts by zone and kind, summed over the replicas (current totals).
pub async fn bypass(base: &url::Url) -> Result<Vec<(String, String, u64)>, String> {
    let result = call(
        base,
        "api/v1/query",
        &[(
            "query",
            format!("sum by (zone, kind) ({BYPASS_ATTEMPTS_TOTAL})"),
        )],
    )
    .await?;
    Ok(result
        .iter()
        .filter_map(|s| {
            let (_, c) = count(&s["value"])?;
            let l = |n: &str| s["metric"][n].as_str().unwrap_or("").to_owned();
            (c > 0).then(|| (l("zone"), l("kind"), c))
        })
        .collect())
}
