//! The `explain` command and `/api/explain`: "why was this name blocked for this client?". Both
//! run the real request chain ([`crate::pipeline::Pipeline::explain`]) with a trace and no side
//! effects, and render what each stage saw, ending with the answer the client gets, encoded by
//! the server's own encoder and decoded back. No stage logic lives here, so explain cannot tell
//! an operator something the server does not do.

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
use std::str::FromStr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};

use crate::command::CommandError;
use crate::config::{ConfigSource, ListSource};
use crate::lists::{self, CompiledList, catalogue};
use crate::outcome::Outcome;
use crate::pipeline::trace::{Entry, RuleMatch};
use crate::pipeline::{Explained, Pipeline};
use crate::respond::{rcode_name, read_ede};
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

/// An explanation, as text and as JSON.
pub struct Explanation {
    /// The text `pixelguard explain` prints.
    pub text: String,
    /// The JSON `/api/explain` returns (the text is in its `text` field).
    pub json: Value,
}

/// Explains `name`/`qtype` from `client` on a pipeline (the daemon's own, for the admin API, or
/// one built from the config, for the command).
pub async fn explain_on(
    pipeline: &Pipeline,
    client: IpAddr,
    name: &str,
    qtype: RecordType,
    resolve: bool,
) -> Explanation {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let qn = Name::from_str(&format!("{lower}.")).unwrap_or_else(|_| Name::root());
    let ex = pipeline.explain(client, &qn, qtype, resolve).await;
    let snap = pipeline.snapshot.load_full();
    render(&snap, &ex, client, &lower, qtype, resolve)
}

/// Renders an explained query (reads list files for the rules' line numbers: call it off the
/// async workers where that matters).
pub fn render(
    snap: &Snapshot,
    ex: &Explained,
    client: IpAddr,
    lower: &str,
    qtype: RecordType,
    resolve: bool,
) -> Explanation {
    let mut s = String::new();
    let mut stages = Vec::new();
    let mut matches = Vec::new();
    let mut warnings = Vec::new();
    let line = |s: &mut String, label: &str, text: &str| {
        let _ = writeln!(s, "{label:<10}{text}");
    };
    line(&mut s, "query", &format!("{lower} {qtype} from {client}"));
    let entries = ex.trace.entries();
    for e in &entries {
        match e {
            Entry::Line(label, text) => {
                line(&mut s, label, text);
                if *label == "warning" {
                    warnings.push(json!(text));
                }
                stages.push(json!({ "stage": label, "text": text }));
            }
            Entry::Matches(found) => {
                if found.is_empty() {
                    line(
                        &mut s,
                        "match",
                        &format!("no rule in the zone's lists matches {lower}"),
                    );
                }
                for m in found {
                    let (text, j) = render_match(snap, m);
                    line(&mut s, "match", &text);
                    stages.push(json!({ "stage": "match", "text": text }));
                    matches.push(j);
                }
            }
        }
    }
    if resolve
        && ex.outcome == Outcome::Blocked
        && !ex
            .trace
            .entries()
            .iter()
            .any(|e| matches!(e, Entry::Line("upstream", _)))
    {
        let text = "not sent: the name is blocked in this zone, so it never reaches an upstream";
        line(&mut s, "resolve", text);
        stages.push(json!({ "stage": "resolve", "text": text }));
    }
    let (answer, prediction) = describe_answer(ex);
    line(&mut s, "answer", &answer);
    let mut j = json!({
        "query": { "name": lower, "type": qtype.to_string(), "client": client.to_string() },
        "zone": Value::Null,
        "stages": stages,
        "matches": matches,
        "warnings": warnings,
        "outcome": ex.outcome.as_str(),
        "answer": answer,
        "prediction": prediction,
    });
    for (k, v) in ex.trace.fields() {
        j[k] = v;
    }
    j["text"] = json!(s);
    Explanation { text: s, json: j }
}

fn render_match(snap: &Snapshot, m: &RuleMatch) -> (String, Value) {
    let Some(l) = snap.lists.get(m.list) else {
        return (String::new(), Value::Null);
    };
    let location = rule_location(l, &m.rule);
    let vend = m
        .vendor
        .as_ref()
        .map_or("other/other".to_owned(), |(v, c, st)| {
            format!("{v}/{c} ({st})")
        });
    let text = format!(
        "{} list {}: rule {} ({}{}, action {}) at {location}; vendor {vend}",
        m.role,
        l.name,
        m.rule,
        if m.exact {
            "exact"
        } else {
            "parent of the name"
        },
        if m.cloak_target {
            ", cloak target: counts only inside CNAME answers"
        } else {
            ""
        },
        m.action,
    );
    let j = json!({
        "role": m.role,
        "list": &*l.name,
        "rule": m.rule,
        "exact": m.exact,
        "cloak_target": m.cloak_target,
        "action": m.action,
        "location": location,
        "vendor": m.vendor.as_ref().map(|v| v.0.clone()),
        "category": m.vendor.as_ref().map(|v| v.1),
        "status": m.vendor.as_ref().map(|v| v.2),
    });
    (text, j)
}

/// The answer line, and the prediction a test (or an operator's script) can compare with what
/// the server sends: rcode, the smallest TTL of the records, the EDE options.
fn describe_answer(ex: &Explained) -> (String, Value) {
    let would = if ex.outcome == Outcome::WouldBlock {
        "; recorded as would-block"
    } else {
        ""
    };
    if ex.dropped {
        let text = "nothing: the query is dropped (rate limit, action drop)".to_owned();
        return (text, json!({ "sent": false }));
    }
    if ex.unresolved {
        let text = format!("the upstream's answer (not asked: explain --resolve asks it){would}");
        return (text, json!({ "sent": true, "upstream": true }));
    }
    let Ok(m) = Message::from_vec(&ex.wire) else {
        return ("nothing".into(), json!({ "sent": false }));
    };
    let rcode = m.metadata.response_code;
    let mut s = if rcode == ResponseCode::NoError && m.answers.is_empty() {
        "NOERROR (NODATA)".to_owned()
    } else {
        rcode_name(rcode)
    };
    if m.metadata.truncation {
        s.push_str(" (truncated: the client retries over TCP)");
    }
    for a in &m.answers {
        let _ = write!(
            s,
            "; answer {} {} {} {}",
            a.name,
            a.ttl,
            a.record_type(),
            a.data
        );
    }
    for a in &m.authorities {
        let _ = write!(s, "; authority {} {} {}", a.name, a.ttl, a.record_type());
    }
    let ede = read_ede(&m);
    for (code, text) in &ede {
        let _ = write!(s, "; EDE {code} {text:?}");
    }
    s.push_str(would);
    let ttl = m
        .answers
        .iter()
        .chain(m.authorities.iter())
        .map(|r| r.ttl)
        .min();
    let prediction = json!({
        "sent": true,
        "rcode": rcode_name(rcode),
        "ttl": ttl,
        "answers": m.answers.len(),
        "ede": ede.iter().map(|(c, t)| json!({ "code": c, "text": t })).collect::<Vec<_>>(),
    });
    (s, prediction)
}

/// `pixelguard explain`: builds the pipeline the daemon would build from the config (an empty
/// cache, fresh rate-limit buckets) and explains one query on it.
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    let pipeline = Pipeline::new(snap);
    let ex = rt.block_on(explain_on(&pipeline, client, name, qtype, resolve));
    out!("{}", ex.text);
    Ok(())
}
