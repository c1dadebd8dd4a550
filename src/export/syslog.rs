//! Syslog messages of policy events: RFC 5424 lines with pixelguard's parameters as structured
//! data under one SD-ID ([`SYSLOG_SD_ID`]), and their framing: one message per datagram over
//! UDP (RFC 5426), octet counting (`LEN SP MSG`, RFC 6587 §3.4.1) over TCP and TLS (RFC 5425).
//!
//! Hand-written: the maintained syslog crates either write RFC 3164 or RFC 5424 without
//! structured data or TLS; the format is one line, and the escaping of §6.3.3 (`"`, `\` and `]`
//! in a parameter value take a backslash) is tested below.
//!
//! Which events: blocked, would-block and watched answers, exception hits (an allow rule or an
//! `[[exceptions]]` entry beat a block rule; the entry's label in `exception`), bypass attempts (canaries, DoH endpoint names), list update failures and reloads.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::SystemTime;

use super::{Notice, QueryEvent};
use crate::config::{SYSLOG_SD_ID, SyslogConfig};
use crate::outcome::Outcome;

/// Severity codes of RFC 5424 §6.2.1.
const ERROR: u8 = 3;
const WARNING: u8 = 4;
const NOTICE: u8 = 5;
const INFO: u8 = 6;

/// The APP-NAME field.
pub const APP_NAME: &str = "pixelguard";

/// Appends `v` as an RFC 5424 PARAM-VALUE (§6.3.3: `"`, `\` and `]` escaped with `\`).
pub fn push_param_value(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'"' | b'\\' | b']')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The MSGID and severity of a query event, `None` when it is no policy event.
pub fn query_kind(ev: &QueryEvent) -> Option<(&'static str, u8)> {
    let e = &ev.entry;
    if ev.policy_hit {
        return Some(match e.outcome {
            Outcome::Blocked => ("blocked", NOTICE),
            Outcome::Watched => ("watched", INFO),
            _ => ("would_block", INFO),
        });
    }
    if ev.bypass.is_some() {
        return Some(("bypass", WARNING));
    }
    if ev.exception {
        return Some(("exception", INFO));
    }
    None
}

/// The PROCID field: this process's id, asked of the kernel once.
fn procid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Appends MSG text: one line; a control character from a query name cannot break the framing
/// of UDP or octet counting, but could confuse a line-based reader of the collector's file.
fn push_text(out: &mut String, t: &str) {
    if t.chars().any(char::is_control) {
        out.extend(t.chars().map(|c| if c.is_control() { '?' } else { c }));
    } else {
        out.push_str(t);
    }
}

/// Appends the header and structured data of an RFC 5424 message, up to the space before MSG.
fn push_head(
    out: &mut String,
    cfg: &SyslogConfig,
    ts: SystemTime,
    severity: u8,
    msgid: &str,
    params: &[(&str, Option<&str>)],
) {
    let pri = u16::from(cfg.facility) * 8 + u16::from(severity);
    let _ = write!(
        out,
        "<{pri}>1 {} {} {APP_NAME} {} {msgid} [{SYSLOG_SD_ID}",
        humantime::format_rfc3339_micros(ts),
        cfg.hostname,
        procid(),
    );
    for (k, v) in params {
        if let Some(v) = v {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            push_param_value(out, v);
            out.push('"');
        }
    }
    out.push_str("] ");
}

/// One RFC 5424 message (no framing): header, structured data, message text.
fn message(
    cfg: &SyslogConfig,
    ts: SystemTime,
    severity: u8,
    msgid: &str,
    params: &[(&str, Option<&str>)],
    text: &str,
) -> String {
    let mut s = String::with_capacity(256);
    push_head(&mut s, cfg, ts, severity, msgid, params);
    push_text(&mut s, text);
    s
}

/// The message of a query event, `None` when it is no policy event.
pub fn format_query(ev: &QueryEvent, cfg: &SyslogConfig) -> Option<String> {
    let mut s = String::with_capacity(384);
    push_query(&mut s, ev, cfg).then_some(s)
}

/// Appends the message of a query event to `out` (a writer thread's reused buffer); `false`
/// (nothing appended) when it is no policy event.
pub fn push_query(out: &mut String, ev: &QueryEvent, cfg: &SyslogConfig) -> bool {
    let Some((msgid, sev)) = query_kind(ev) else {
        return false;
    };
    let e = &ev.entry;
    let client = ev
        .key
        .client(e.client, ev.client_override.unwrap_or(cfg.client));
    let mut qt = [0u8; 24];
    let qtype = {
        let mut c = std::io::Cursor::new(&mut qt[..]);
        let _ = std::io::Write::write_fmt(&mut c, format_args!("{}", e.qtype));
        let n = c.position() as usize;
        std::str::from_utf8(&qt[..n]).unwrap_or("?")
    };
    let bypass = ev.bypass.map(|b| b.as_str());
    push_head(
        out,
        cfg,
        e.ts,
        sev,
        msgid,
        &[
            ("zone", e.zone.as_deref()),
            ("outcome", Some(e.outcome.as_str())),
            ("qname", Some(&e.qname)),
            ("qtype", Some(qtype)),
            ("list", e.list.as_deref()),
            ("rule", e.rule.as_deref()),
            ("vendor", e.vendor.as_deref()),
            ("category", e.category),
            ("exception", e.exception.as_deref()),
            ("bypass", bypass),
            ("client", client.as_deref()),
        ],
    );
    match (msgid, e.rule.as_deref()) {
        ("bypass", _) => {
            out.push_str("bypass attempt ");
            push_text(out, &e.qname);
            out.push_str(" (");
            out.push_str(bypass.unwrap_or("-"));
            out.push(')');
        }
        (_, Some(rule)) => {
            out.extend(msgid.chars().map(|c| if c == '_' { '-' } else { c }));
            out.push(' ');
            push_text(out, &e.qname);
            out.push(' ');
            out.push_str(qtype);
            out.push_str(" (list ");
            push_text(out, e.list.as_deref().unwrap_or("-"));
            out.push_str(", rule ");
            push_text(out, rule);
            out.push(')');
        }
        (_, None) => {
            out.push_str(msgid);
            out.push(' ');
            push_text(out, &e.qname);
            out.push(' ');
            out.push_str(qtype);
        }
    }
    true
}

/// The message of a notice (list update failure, reload).
pub fn format_notice(n: &Notice, cfg: &SyslogConfig) -> String {
    match n {
        Notice::ListUpdateFailed { ts, list, reason } => message(
            cfg,
            *ts,
            WARNING,
            "list_update_failed",
            &[("list", Some(list)), ("reason", Some(reason))],
            &format!("list {list}: update failed ({reason}); the last good content stays in use"),
        ),
        Notice::Reload { ts, ok: true } => message(
            cfg,
            *ts,
            NOTICE,
            "reload",
            &[("result", Some("success"))],
            "reloaded",
        ),
        Notice::Reload { ts, ok: false } => message(
            cfg,
            *ts,
            ERROR,
            "reload",
            &[("result", Some("failure"))],
            "reload failed; the running config stays in use",
        ),
    }
}

/// Appends `msg` octet-counted (RFC 6587 §3.4.1): its length in bytes, a space, the message.
pub fn push_octet_counted(out: &mut Vec<u8>, msg: &str) {
    let _ = std::io::Write::write_fmt(out, format_args!("{} ", msg.len()));
    out.extend_from_slice(msg.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientMode, SyslogTransport};

    fn cfg() -> SyslogConfig {
        SyslogConfig {
            server: "127.0.0.1:514".parse().unwrap(),
            transport: SyslogTransport::Udp,
            facility: 21,
            client: ClientMode::Hash,
            hostname: "dns1".into(),
            ca_certs: Vec::new(),
            buffer: 8,
        }
    }

    #[test]
    fn param_values_are_escaped_per_rfc5424() {
        let mut s = String::new();
        push_param_value(&mut s, r#"a"b\c]d[e"#);
        assert_eq!(s, r#"a\"b\\c\]d[e"#);
    }

    #[test]
    fn a_blocked_event_is_one_rfc5424_line_with_structured_data() {
        let ev = super::super::tests::event(Outcome::Blocked);
        let m = format_query(&ev, &cfg()).unwrap();
        // local5.notice: 21 * 8 + 5 = 173.
        assert!(m.starts_with("<173>1 20"), "{m}");
        let parts: Vec<&str> = m.splitn(7, ' ').collect();
        assert_eq!(parts[2], "dns1");
        assert_eq!(parts[3], "pixelguard");
        assert_eq!(parts[5], "blocked");
        assert!(parts[1].ends_with('Z') && parts[1].contains('T'), "{m}");
        assert!(
            parts[6].starts_with(
                "[pixelguard@32473 zone=\"office\" outcome=\"blocked\" qname=\"px.tracker.example\" qtype=\"A\" list=\"trackers\" rule=\"tracker.example\" vendor=\"acme\" category=\"advertising\" client=\"c-"
            ),
            "{m}"
        );
        assert!(
            m.ends_with("] blocked px.tracker.example A (list trackers, rule tracker.example)"),
            "{m}"
        );
        assert!(!m.contains("10.1.2.3"), "{m}");
        let mut framed = Vec::new();
        push_octet_counted(&mut framed, &m);
        assert_eq!(framed, format!("{} {m}", m.len()).into_bytes());
    }

    #[test]
    fn ordinary_answers_are_no_syslog_events() {
        let mut ev = super::super::tests::event(Outcome::Forwarded);
        ev.policy_hit = false;
        assert!(format_query(&ev, &cfg()).is_none());
        ev.exception = true;
        assert_eq!(query_kind(&ev), Some(("exception", INFO)));
    }

    #[test]
    fn watched_and_excepted_answers_are_events_of_their_own() {
        let ev = super::super::tests::event(Outcome::Watched);
        assert_eq!(query_kind(&ev), Some(("watched", INFO)));
        let mut ev = super::super::tests::event(Outcome::Forwarded);
        ev.policy_hit = false;
        ev.exception = true;
        ev.entry.exception = Some("INC-4411".into());
        let m = format_query(&ev, &cfg()).unwrap();
        assert!(m.contains("exception=\"INC-4411\""), "{m}");
        assert!(m.contains("vendor=\"acme\""), "{m}");
        let j = super::super::dnstap::extra_json(&ev, None);
        let j: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(j["exception"], "INC-4411");
    }
}
