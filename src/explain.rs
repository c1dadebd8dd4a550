//! The `explain` command: "why was this name blocked for this client?". It loads the config and
//! every list exactly as the daemon does (same snapshot builder).

/// Writes to stdout, ignoring errors: `pixelguard explain | head` must end quietly when the
/// reader closes the pipe, not panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

use std::fmt::Write as _;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::str::FromStr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::command::CommandError;
use crate::config::{ConfigSource, ListSource, Mode};
use crate::lists::{self, CompiledList, catalogue, code, payload_action, payload_attr};
use crate::matcher::QueryName;
use crate::policy::{self, Canary, Decision};
use crate::respond::{self, Asked};
use crate::snapshot::Snapshot;

/// Where a rule is written: `file:line`, or the catalogue line.
fn rule_location(l: &CompiledList, rule: &str) -> String {
    match &l.source {
        ListSource::Builtin(b) => match catalogue::host_line(catalogue::BUILTIN_TRACKERS, rule) {
            Some(n) => format!("blocklists/{b}.toml:{n} (builtin:{b})"),
            None => format!("builtin:{b}"),
        },
        ListSource::Url(u) => u.clone(),
        ListSource::File(p) => {
            let Ok(f) = std::fs::File::open(p) else {
                return p.display().to_string();
            };
            let format = lists::parser_format(l.format);
            let mut line = None;
            let _ = lists::parse::parse(format, std::io::BufReader::new(f), |r| {
                if line.is_none() && r.name == rule {
                    line = Some(r.line);
                }
            });
            match line {
                Some(n) => format!("{}:{n}", p.display()),
                None => p.display().to_string(),
            }
        }
    }
}

fn action_name(a: u32) -> &'static str {
    match a {
        code::BLOCK => "block",
        code::ALLOW => "allow",
        code::NXDOMAIN => "nxdomain",
        code::NODATA => "nodata",
        _ => "none",
    }
}

/// The explanation as text (also used by tests).
pub fn explain_text(snap: &Snapshot, client: IpAddr, name: &str, qtype: RecordType) -> String {
    let mut s = String::new();
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let _ = writeln!(s, "query     {lower} {qtype} from {client}");
    let Some((_, zone)) = snap.zone_of(client) else {
        let _ = writeln!(s, "zone      none: {client} is in no zone's networks");
        let _ = writeln!(s, "answer    REFUSED (pixelguard is not an open resolver)");
        return s;
    };
    let zc = snap.config.zones.iter().find(|z| z.name == *zone.name);
    let net = zc
        .and_then(|z| {
            z.networks
                .iter()
                .filter(|n| n.contains(&client))
                .max_by_key(|n| n.prefix_len())
        })
        .map(|n| n.to_string())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "zone      {} (network {net}, the longest prefix containing {client}); mode {}, response {}",
        zone.name,
        zone.mode.as_str(),
        zone.response.describe()
    );
    let qn = Name::from_str(&format!("{lower}.")).unwrap_or_else(|_| Name::root());
    let asked = Asked {
        name: &qn,
        qtype,
        dnssec_ok: false,
        authentic_data: false,
    };
    let ttl = u32::try_from(zone.block_ttl.as_secs()).unwrap_or(u32::MAX);
    if zone.canaries
        && let Some(c) = Canary::of(&lower)
    {
        let _ = writeln!(
            s,
            "canary    {lower} is a bypass canary ({}), answered locally, never forwarded",
            c.kind()
        );
        let r = respond::local_negative(&asked, c != Canary::Ddr, 300, "pixelguard: bypass canary");
        let _ = writeln!(s, "answer    {}", describe_reply(&r));
        return s;
    }
    for &i in zone.allow.iter().chain(zone.block.iter()) {
        if let Some(l) = snap.lists.get(usize::from(i))
            && let Some(e) = &l.error
        {
            let _ = writeln!(
                s,
                "warning   list {} is not loaded ({e}); the zone runs without it",
                l.name
            );
        }
    }
    let q = QueryName::new(lower.as_bytes());
    let mut any = false;
    for (role, ids) in [("allow", &zone.allow), ("block", &zone.block)] {
        for &i in ids.iter() {
            let Some(l) = snap.lists.get(usize::from(i)) else {
                continue;
            };
            for (m, what) in [(&l.matcher, "name"), (&l.cloak, "cloak-target")] {
                m.find(&q, |hit| {
                    let a = payload_action(hit.payload, hit.exact);
                    if a != code::NONE {
                        any = true;
                        let rule = lower.get(hit.start..).unwrap_or(&lower);
                        let attr = payload_attr(hit.payload).and_then(|x| l.attrs.get(x));
                        let vend = attr.map_or("other/other".to_owned(), |a| format!("{}/{} ({})", a.vendor, a.category, a.status.as_str()));
                        let _ = writeln!(
                            s,
                            "match     {role} list {}: rule {rule} ({}{}, action {}) at {}; vendor {vend}",
                            l.name,
                            if hit.exact { "exact" } else { "parent of the name" },
                            if what == "cloak-target" { ", cloak target: counts only inside CNAME answers" } else { "" },
                            action_name(a),
                            rule_location(l, rule),
                        );
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
    }
    if !any {
        let _ = writeln!(s, "match     no rule in the zone's lists matches {lower}");
    }
    if zone.mode == Mode::Off {
        let _ = writeln!(s, "decision  mode off: no policy; resolved normally");
        return s;
    }
    match policy::decide(&snap.lists, zone, &q) {
        Some(Decision::Allow(v)) => {
            let _ = writeln!(
                s,
                "decision  allowed by list {} rule {}: resolved normally through the upstream",
                v.list_name, v.rule
            );
        }
        Some(Decision::Block(v, action)) => {
            let _ = writeln!(
                s,
                "decision  blocked by list {} rule {} (most specific match wins)",
                v.list_name, v.rule
            );
            if zone.mode == Mode::Log {
                let _ = writeln!(
                    s,
                    "answer    log mode: resolved normally; recorded as would-block ({})",
                    v.ede_text()
                );
            } else {
                let owner = Name::from_str(&format!("{}.", v.rule)).unwrap_or_else(|_| qn.clone());
                let r =
                    respond::blocked(&asked, &zone.response, action, ttl, &owner, &v.ede_text());
                let _ = writeln!(s, "answer    {}", describe_reply(&r));
            }
        }
        None => {
            let _ = writeln!(
                s,
                "decision  not blocked: resolved through the upstream; its answer's CNAME/SVCB targets are then checked{}",
                if zone.uncloak {
                    ""
                } else {
                    " (uncloaking is off in this zone)"
                }
            );
        }
    }
    s
}

/// The presentation name of a response code (NXDOMAIN, not "Non-Existent Domain").
pub fn rcode_name(r: ResponseCode) -> String {
    match r {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

fn describe_reply(r: &respond::Reply) -> String {
    let mut s = if r.rcode == ResponseCode::NoError && r.answers.is_empty() {
        "NOERROR (NODATA)".to_owned()
    } else {
        rcode_name(r.rcode)
    };
    for a in &r.answers {
        let _ = write!(
            s,
            "; answer {} {} {} {}",
            a.name,
            a.ttl,
            a.record_type(),
            a.data
        );
    }
    for a in &r.authorities {
        let _ = write!(s, "; authority {} {} {}", a.name, a.ttl, a.record_type());
    }
    for o in &r.options {
        if let hickory_proto::rr::rdata::opt::EdnsOption::Unknown(respond::EDE_CODE, d) = o
            && d.len() >= 2
        {
            let _ = write!(
                s,
                "; EDE {} {:?}",
                u16::from_be_bytes([d[0], d[1]]),
                String::from_utf8_lossy(&d[2..])
            );
        }
    }
    s
}

/// `pixelguard explain`.
pub fn explain(
    source: &ConfigSource,
    client: IpAddr,
    name: &str,
    qtype: &str,
    resolve: bool,
) -> Result<(), CommandError> {
    let config = source.load()?;
    let Ok(qtype) = RecordType::from_str(&qtype.to_ascii_uppercase()) else {
        return Err(CommandError::UnknownQueryType(qtype.to_owned()));
    };
    let supply = crate::lists::supply::ListSupply::new(&config.state_dir);
    let snap = Snapshot::build(config, None, Some(&supply));
    out!("{}", explain_text(&snap, client, name, qtype));
    if resolve {
        out!("{}", explain_resolved(&snap, client, name, qtype));
    }
    Ok(())
}

/// `explain --resolve`: asks the configured upstream (exactly as the daemon would, unless the
/// name is blocked: a blocked name is never sent) and checks the answer's alias targets.
fn explain_resolved(snap: &Snapshot, client: IpAddr, name: &str, qtype: RecordType) -> String {
    let mut s = String::new();
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let Some((_, zone)) = snap.zone_of(client) else {
        return s;
    };
    let q = QueryName::new(lower.as_bytes());
    if zone.mode == Mode::Enforce
        && matches!(
            policy::decide(&snap.lists, zone, &q),
            Some(Decision::Block(..))
        )
    {
        let _ = writeln!(
            s,
            "resolve   not sent: the name is blocked in this zone, so it never reaches an upstream"
        );
        return s;
    }
    let Ok(qn) = Name::from_str(&format!("{lower}.")) else {
        return s;
    };
    let question = crate::upstream::Question {
        query: hickory_proto::op::Query::query(qn, qtype),
        dnssec_ok: false,
        checking_disabled: false,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(s, "resolve   cannot start a runtime: {e}");
            return s;
        }
    };
    let Some(ans) = rt.block_on(snap.upstreams.resolve(&question)) else {
        let _ = writeln!(
            s,
            "resolve   every upstream failed: the client would get SERVFAIL"
        );
        return s;
    };
    let m = &ans.message;
    let _ = writeln!(
        s,
        "resolve   {} answered {} with {} record(s)",
        ans.server,
        rcode_name(m.metadata.response_code),
        m.answers.len()
    );
    let mut hit = false;
    for r in &m.answers {
        let Some(t) = respond::alias_target(&r.data) else {
            continue;
        };
        let tq = QueryName::new(t.as_bytes());
        match policy::decide_target(&snap.lists, zone, &tq) {
            Some(Decision::Block(v, _)) => {
                hit = true;
                let _ = writeln!(
                    s,
                    "uncloak   {} {} -> {t}: blocked by list {} rule {} ({})",
                    r.name,
                    r.record_type(),
                    v.list_name,
                    v.rule,
                    v.ede_text()
                );
            }
            Some(Decision::Allow(v)) => {
                let _ = writeln!(
                    s,
                    "uncloak   {} {} -> {t}: allowed by list {} rule {}",
                    r.name,
                    r.record_type(),
                    v.list_name,
                    v.rule
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "uncloak   {} {} -> {t}: no rule",
                    r.name,
                    r.record_type()
                );
            }
        }
    }
    if hit {
        let _ = writeln!(
            s,
            "decision  {}: a CNAME-cloaked tracker",
            if zone.mode == Mode::Enforce && zone.uncloak {
                "blocked (the zone's block response, for the original name)"
            } else {
                "would block (log mode or uncloak off)"
            }
        );
    }
    s
}

/// The explanation as JSON (admin API `GET /api/explain`): the steps of [`explain_text`] as
/// fields (`zone`, `canary`, `matches`, `decision`, `answer`, `warnings`), plus that text itself.
pub fn explain_json(
    snap: &Snapshot,
    client: IpAddr,
    name: &str,
    qtype: RecordType,
) -> serde_json::Value {
    use serde_json::{Value, json};
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let mut out = json!({
        "query": { "name": lower, "type": qtype.to_string(), "client": client.to_string() },
        "text": explain_text(snap, client, name, qtype),
    });
    let Some((_, zone)) = snap.zone_of(client) else {
        out["zone"] = Value::Null;
        out["decision"] = json!({ "kind": "refused", "reason": "client in no zone" });
        out["answer"] = json!("REFUSED");
        return out;
    };
    let net = snap
        .config
        .zones
        .iter()
        .find(|z| z.name == *zone.name)
        .and_then(|z| {
            z.networks
                .iter()
                .filter(|n| n.contains(&client))
                .max_by_key(|n| n.prefix_len())
        })
        .map(|n| n.to_string());
    out["zone"] = json!({
        "name": &*zone.name,
        "network": net,
        "mode": zone.mode.as_str(),
        "response": zone.response.describe(),
        "canaries": zone.canaries,
        "uncloak": zone.uncloak,
    });
    let qn = Name::from_str(&format!("{lower}.")).unwrap_or_else(|_| Name::root());
    let asked = Asked {
        name: &qn,
        qtype,
        dnssec_ok: false,
        authentic_data: false,
    };
    if zone.canaries
        && let Some(c) = Canary::of(&lower)
    {
        let r = respond::local_negative(&asked, c != Canary::Ddr, 300, "pixelguard: bypass canary");
        out["canary"] = json!(c.kind());
        out["decision"] = json!({ "kind": "local", "reason": "bypass canary, never forwarded" });
        out["answer"] = json!(describe_reply(&r));
        return out;
    }
    let mut warnings = Vec::new();
    for &i in zone.allow.iter().chain(zone.block.iter()) {
        if let Some(l) = snap.lists.get(usize::from(i))
            && let Some(e) = &l.error
        {
            warnings.push(json!(format!(
                "list {} is not loaded ({e}); the zone runs without it",
                l.name
            )));
        }
    }
    out["warnings"] = Value::Array(warnings);
    let q = QueryName::new(lower.as_bytes());
    let mut matches = Vec::new();
    for (role, ids) in [("allow", &zone.allow), ("block", &zone.block)] {
        for &i in ids.iter() {
            let Some(l) = snap.lists.get(usize::from(i)) else {
                continue;
            };
            for (m, cloak) in [(&l.matcher, false), (&l.cloak, true)] {
                m.find(&q, |hit| {
                    let a = payload_action(hit.payload, hit.exact);
                    if a != code::NONE {
                        let rule = lower.get(hit.start..).unwrap_or(&lower);
                        let attr = payload_attr(hit.payload).and_then(|x| l.attrs.get(x));
                        matches.push(json!({
                            "role": role,
                            "list": &*l.name,
                            "rule": rule,
                            "exact": hit.exact,
                            "cloak_target": cloak,
                            "action": action_name(a),
                            "location": rule_location(l, rule),
                            "vendor": attr.map(|a| &*a.vendor),
                            "category": attr.map(|a| a.category),
                            "status": attr.map(|a| a.status.as_str()),
                        }));
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
        }
    }
    out["matches"] = Value::Array(matches);
    if zone.mode == Mode::Off {
        out["decision"] = json!({ "kind": "off", "reason": "mode off: no policy" });
        return out;
    }
    let verdict = |v: &crate::outcome::Verdict| {
        json!({
            "list": &*v.list_name,
            "rule": v.rule,
            "vendor": v.vendor.as_deref(),
            "category": v.category,
        })
    };
    match policy::decide(&snap.lists, zone, &q) {
        Some(Decision::Allow(v)) => {
            let mut d = verdict(&v);
            d["kind"] = json!("allowed");
            out["decision"] = d;
        }
        Some(Decision::Block(v, action)) => {
            let mut d = verdict(&v);
            if zone.mode == Mode::Log {
                d["kind"] = json!("would_block");
                out["answer"] = json!("resolved normally (log mode)");
            } else {
                d["kind"] = json!("blocked");
                let ttl = u32::try_from(zone.block_ttl.as_secs()).unwrap_or(u32::MAX);
                let owner = Name::from_str(&format!("{}.", v.rule)).unwrap_or_else(|_| qn.clone());
                let r =
                    respond::blocked(&asked, &zone.response, action, ttl, &owner, &v.ede_text());
                out["answer"] = json!(describe_reply(&r));
            }
            d["ede"] = json!(v.ede_text());
            out["decision"] = d;
        }
        None => {
            out["decision"] = json!({
                "kind": "not_blocked",
                "reason": if zone.uncloak {
                    "resolved through the upstream; its answer's CNAME/SVCB targets are then checked"
                } else {
                    "resolved through the upstream (uncloaking is off in this zone)"
                },
            });
        }
    }
    out
}
