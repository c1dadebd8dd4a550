//! A [`Report`] as text: Markdown for people, CSV (one row per zone × vendor × outcome) for
//! spreadsheets, JSON (serde, the report's own shape) for machines.

use std::fmt::Write as _;

use super::Format;
use super::tally::{Report, Top};

/// The report in `format`, ending with a newline.
pub fn render(r: &Report, format: Format) -> String {
    match format {
        Format::Md => markdown(r),
        Format::Csv => csv(r),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(r)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            s.push('\n');
            s
        }
    }
}

/// A CSV field: quoted when it holds a comma, quote or line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(r: &Report) -> String {
    let mut s = String::from("period_from,period_to,zone,vendor,outcome,count\n");
    for (zone, z) in &r.zones {
        for (vendor, c) in &z.vendors {
            for (outcome, n) in c.rows() {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{outcome},{n}",
                    r.period.from,
                    r.period.to,
                    field(zone),
                    field(vendor)
                );
            }
        }
    }
    s
}

/// Markdown table cell: pipes and line breaks would break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# pixelguard report\n");
    let _ = writeln!(
        s,
        "Period: {} to {} (end excluded). Generated {}.\n",
        r.period.from, r.period.to, r.generated
    );
    let _ = writeln!(s, "## Tracker lookups by zone and vendor\n");
    let _ = writeln!(
        s,
        "Blocked: refused (enforce mode). Would block: a policy hit in log mode or a list in trial, answered. Watched: counted, answered. Excepted: allowed by an exception.\n"
    );
    let _ = writeln!(
        s,
        "| zone | vendor | blocked | would block | watched | excepted |\n|---|---|---:|---:|---:|---:|"
    );
    let mut any = false;
    for (zone, z) in &r.zones {
        for (vendor, c) in &z.vendors {
            any = true;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                cell(zone),
                cell(vendor),
                c.blocked,
                c.would_block,
                c.watched,
                c.excepted
            );
        }
    }
    if !any {
        let _ = writeln!(s, "| (none) | | 0 | 0 | 0 | 0 |");
    }
    let _ = writeln!(s, "\n## Logged answers by zone and outcome\n");
    let _ = writeln!(
        s,
        "What the query log recorded (a zone with `query_log = \"policy\"` records policy hits only).\n"
    );
    for (zone, z) in &r.zones {
        let parts: Vec<String> = z.outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
        let _ = writeln!(s, "- {}: {}", cell(zone), parts.join(", "));
    }
    let _ = writeln!(s, "\n## Vendors seen for the first time\n");
    match &r.first_seen.compared_with_log_from {
        Some(t) => {
            let _ = writeln!(
                s,
                "Compared with the log from {t} to the start of the period.\n"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "The log holds nothing before the period: every vendor of the period is listed.\n"
            );
        }
    }
    if r.first_seen.vendors.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for v in &r.first_seen.vendors {
        let _ = writeln!(
            s,
            "- {}: first seen {} in {}",
            cell(&v.vendor),
            v.first_seen,
            v.zones.join(", ")
        );
    }
    top_section(&mut s, "Top names per vendor", &r.top_names);
    if let Some(c) = &r.clients {
        top_section(&mut s, "Top clients per vendor (pseudonyms)", c);
    }
    exceptions(&mut s, r);
    lists(&mut s, r);
    let f = &r.footer;
    let _ = writeln!(s, "\n---\n");
    let _ = writeln!(
        s,
        "Read {} lines from {} file(s); {} skipped (malformed), {} outside the period. Log covers {} to {}.",
        f.lines_read,
        f.files.len(),
        f.lines_skipped,
        f.outside_period,
        f.earliest.as_deref().unwrap_or("-"),
        f.latest.as_deref().unwrap_or("-")
    );
    s
}

fn top_section(s: &mut String, title: &str, tops: &std::collections::BTreeMap<String, Top>) {
    let _ = writeln!(s, "\n## {title}\n");
    if tops.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for (vendor, t) in tops {
        let items: Vec<String> = t
            .top
            .iter()
            .map(|r| format!("{} ({})", cell(&r.key), r.count))
            .collect();
        let more = if t.unranked > 0 {
            format!("; {} more lines not ranked", t.unranked)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "- {} ({} distinct): {}{more}",
            cell(vendor),
            t.distinct,
            items.join(", ")
        );
    }
}

fn exceptions(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n## Exceptions\n");
    if r.exceptions.in_force.is_empty() && r.exceptions.expired.is_empty() {
        let _ = writeln!(s, "None in force or expired in the period.");
    }
    for (state, rows) in [
        ("in force", &r.exceptions.in_force),
        ("expired", &r.exceptions.expired),
    ] {
        for e in rows {
            let what: Vec<&str> = e
                .vendors
                .iter()
                .chain(&e.names)
                .map(String::as_str)
                .collect();
            let _ = writeln!(
                s,
                "- {state}: {} ({}) for {} in {}, until {}: {}",
                cell(&e.label),
                e.ticket.as_deref().unwrap_or("no ticket"),
                cell(&what.join(", ")),
                cell(&e.zones.join(", ")),
                super::period::stamp(e.until),
                cell(&e.reason)
            );
        }
    }
}

fn lists(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n## Lists\n");
    let _ = writeln!(
        s,
        "| list | source | entries | last good copy | age (days) | error |\n|---|---|---:|---|---:|---|"
    );
    for l in &r.lists {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&l.name),
            cell(&l.source),
            l.entries,
            l.last_good.as_deref().unwrap_or("-"),
            l.last_good_age_days
                .map_or("-".to_owned(), |d| d.to_string()),
            cell(l.error.as_deref().unwrap_or("-"))
        );
    }
}
