//! The dashboard's HTML (maud templates): the overview page and the sign-in form. Server-rendered
//! and complete without JavaScript; styles and the refresh script are separate embedded files
//! (the CSP allows `'self'` only). No client address appears anywhere on the overview.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use maud::{DOCTYPE, Markup, html};

use super::chart::{self, Stack};
use super::series::{MAX_ROWS, Period, ROW_BYTES};
use super::view::{Source, View};

/// How a `mode` label value reads on the page (new values, such as `watched`, read as is).
pub fn mode_word(mode: &str) -> &str {
    match mode {
        "enforce" => "blocked",
        "log" => "would block (log mode)",
        other => other,
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds.
pub fn time(t: u64) -> String {
    if t == 0 {
        return "–".into();
    }
    let s = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string();
    format!("{} {}", &s[..10], &s[11..16])
}

fn bucket_label(period: Period, t: u64) -> String {
    let s = time(t);
    match period {
        Period::Hour | Period::Day => s[11..].to_owned(),
        Period::Week => s[5..].to_owned(),
    }
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="icon" href="/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/dashboard.css";
                script src="/dashboard.js" defer {}
            }
            body { (body) }
        }
    }
}

/// The sign-in form; `error` after a refused token.
pub fn login(error: Option<&str>) -> String {
    page(
        "pixelguard: sign in",
        html! {
            main class="login" {
                h1 { "pixelguard" }
                p { "Sign in with the admin token or the read-only token (" code { "[admin] read_token" } ")." }
                @if let Some(e) = error { p class="error" role="alert" { (e) } }
                form method="post" action="/login" {
                    label for="token" { "Token" }
                    input type="password" id="token" name="token" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
    .into_string()
}

/// The overview page.
pub fn overview(v: &View) -> String {
    let labels: Vec<String> = v
        .window
        .starts
        .iter()
        .map(|t| bucket_label(v.period, *t))
        .collect();
    let modes: BTreeSet<&str> = v.window.rows.keys().map(|k| k.mode.as_str()).collect();
    // zone → mode → vendor → counts
    let mut charts: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, Vec<u64>>>> = BTreeMap::new();
    for (k, (counts, _, _)) in &v.window.rows {
        let e = charts
            .entry(&k.zone)
            .or_default()
            .entry(&k.mode)
            .or_default()
            .entry(&k.vendor)
            .or_insert_with(|| vec![0; counts.len()]);
        for (a, c) in e.iter_mut().zip(counts) {
            *a += c;
        }
    }
    // (zone, vendor, category) → mode → count, first, last
    type Cell = (BTreeMap<String, u64>, u64, u64);
    let mut table: BTreeMap<(&str, &str, &str), Cell> = BTreeMap::new();
    for (k, (counts, first, last)) in &v.window.rows {
        let e = table
            .entry((&k.zone, &k.vendor, &k.category))
            .or_insert_with(|| (BTreeMap::new(), u64::MAX, 0));
        *e.0.entry(k.mode.clone()).or_default() += counts.iter().sum::<u64>();
        e.1 = e.1.min(*first);
        e.2 = e.2.max(*last);
    }
    let body = html! {
        header {
            h1 { "pixelguard: attempted tracker calls" }
            nav aria-label="period" {
                "Period: "
                @for p in [Period::Hour, Period::Day, Period::Week] {
                    @if p == v.period { strong aria-current="page" { (p.as_str()) } }
                    @else { a href=(format!("/?period={}", p.as_str())) { (p.as_str()) } }
                    " "
                }
            }
            p class="source" id="source" {
                @match &v.source {
                    Source::Local => "This page shows this instance only (set [admin] prometheus for the whole cluster).",
                    Source::Prometheus(u) => { "All replicas, summed by Prometheus at " code { (u) } "." }
                    Source::PrometheusFailed(u, e) => { strong { "Prometheus at " code { (u) } " failed: " (e) } " — this page shows this instance only." }
                }
                " Updated " (time(v.now)) " UTC."
            }
            form method="post" action="/logout" class="logout" { button type="submit" { "Sign out" } }
        }
        main {
            section aria-labelledby="h-time" {
                h2 id="h-time" { "Attempted tracker calls over time (" (v.period.as_str()) ")" }
                @if charts.is_empty() { p { "No tracker calls in this period." } }
                @for (zone, by_mode) in &charts {
                    @for (mode, vendors) in by_mode {
                        @let stacks = chart::fold(vendors.iter().map(|(n, c)| Stack { name: (*n).to_owned(), counts: c.clone() }).collect());
                        @let title = format!("Zone {zone}: {}", mode_word(mode));
                        figure class="chart" data-zone=(zone) data-mode=(mode) {
                            figcaption { (title) }
                            (chart::stacked(&title, &labels, &stacks))
                            (chart::legend(&stacks))
                            details { summary { "Table" } (chart::table(&title, &labels, &stacks)) }
                        }
                    }
                }
            }
            section aria-labelledby="h-table" {
                h2 id="h-table" { "This period by zone × vendor" }
                table class="data" id="zone-vendor" {
                    caption { "Tracker calls per zone and vendor, " (v.period.as_str()) }
                    thead { tr {
                        th scope="col" { "Zone" } th scope="col" { "Vendor" } th scope="col" { "Category" }
                        @for m in &modes { th scope="col" data-mode=(m) { (mode_word(m)) } }
                        th scope="col" { "Total" } th scope="col" { "Share blocked" }
                        th scope="col" { "First seen (UTC)" } th scope="col" { "Last seen (UTC)" }
                    } }
                    tbody {
                        @for ((zone, vendor, category), (by, first, last)) in &table {
                            @let total: u64 = by.values().sum();
                            @let blocked = by.get("enforce").copied().unwrap_or(0);
                            tr data-zone=(zone) data-vendor=(vendor) data-category=(category) {
                                th scope="row" { (zone) } td { (vendor) } td { (category) }
                                @for m in &modes { td class="n" data-mode=(m) { (by.get(*m).copied().unwrap_or(0)) } }
                                td class="n" { (total) }
                                td class="n" { (format!("{:.0} %", 100.0 * blocked as f64 / total.max(1) as f64)) }
                                td { (time(*first)) } td { (time(*last)) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="h-top" {
                h2 id="h-top" { "Top blocked names" }
                @if v.top_names.is_empty() { p { "None." } }
                @for (zone, names) in &v.top_names {
                    table class="data" {
                        caption { "Zone " (zone) }
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Policy hits" } } }
                        tbody { @for (n, c) in names { tr { td { (n) } td class="n" { (c) } } } }
                    }
                }
            }
            section aria-labelledby="h-bypass" {
                h2 id="h-bypass" { "Bypass attempts (since start)" }
                @if v.bypass.is_empty() { p { "None." } } @else {
                    table class="data" id="bypass" {
                        thead { tr { th scope="col" { "Zone" } th scope="col" { "Kind" } th scope="col" { "Attempts" } } }
                        tbody { @for (z, k, n) in &v.bypass { tr { th scope="row" { (z) } td { (k) } td class="n" { (n) } } } }
                    }
                }
            }
            section aria-labelledby="h-lists" {
                h2 id="h-lists" { "Lists" }
                table class="data" {
                    thead { tr { th scope="col" { "List" } th scope="col" { "Entries" } th scope="col" { "Last good copy (UTC)" } th scope="col" { "Update failures" } th scope="col" { "Last error" } } }
                    tbody { @for l in &v.lists { tr {
                        th scope="row" { (l["name"].as_str().unwrap_or("")) }
                        td class="n" { (l["entries"]) }
                        td { (l["last_success"].as_u64().map_or_else(|| "–".to_owned(), time)) }
                        td class="n" { (l["update_failures"]) }
                        td { (l["error"].as_str().unwrap_or("–")) }
                    } } }
                }
            }
            section aria-labelledby="h-up" {
                h2 id="h-up" { "Upstreams" }
                table class="data" {
                    thead { tr { th scope="col" { "Group" } th scope="col" { "Server" } th scope="col" { "Answered" } th scope="col" { "Failed" } th scope="col" { "Mean RTT" } } }
                    tbody { @for u in &v.upstreams { tr {
                        td { (u.group) } th scope="row" { (u.server) } td class="n" { (u.ok) } td class="n" { (u.failed) }
                        td class="n" { (u.rtt_ms.map_or_else(|| "–".to_owned(), |r| format!("{r:.1} ms"))) }
                    } } }
                }
            }
            section aria-labelledby="h-exc" {
                h2 id="h-exc" { "Exceptions expiring soon" }
                @if v.exceptions.is_empty() { p { "None." } } @else {
                    table class="data" {
                        thead { tr { th scope="col" { "Zone" } th scope="col" { "Exception" } th scope="col" { "Expires" } } }
                        tbody { @for (z, r, e) in &v.exceptions { tr { td { (z) } td { (r) } td { (e) } } } }
                    }
                }
            }
            section aria-labelledby="h-start" {
                h2 id="h-start" { "Start-up summary" }
                p { "DNS listeners: " @for l in &v.listeners { code { (l) } " " } }
                table class="data" {
                    thead { tr { th scope="col" { "Zone" } th scope="col" { "Mode" } th scope="col" { "Networks" } } }
                    tbody { @for (z, m, n) in &v.zones { tr { th scope="row" { (z) } td { (m) } td { (n.join(", ")) } } } }
                }
            }
        }
        footer {
            p { "Time series in memory: " (v.rows_held) " of at most " (MAX_ROWS) " zone × vendor × mode series, "
                (ROW_BYTES) " bytes each (" (v.rows_held * ROW_BYTES / 1024) " KiB)." }
        }
    };
    page("pixelguard dashboard", body).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(time(0), "–");
        assert_eq!(time(1_800_000_000), "2027-01-15 08:00");
        assert_eq!(bucket_label(Period::Week, 1_800_000_000), "01-15 08:00");
        assert_eq!(mode_word("watched"), "watched");
    }
}
