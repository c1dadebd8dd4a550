//! RPZ (DNS Response Policy Zone) files in master-file syntax. Owns the zone-file reading this
//! needs: `$ORIGIN` and `$TTL`, `;` comments, quoted strings, parentheses spanning lines, blank
//! owners (= the previous owner), `@`, optional TTL and class before the type. Only QNAME
//! triggers with CNAME policy actions become rules; the trigger is the owner name with the zone
//! apex removed.
//!
//! The apex is the first `$ORIGIN`, else the owner of the first SOA if absolute, else the root
//! (then relative owners are their own triggers). A later `$ORIGIN` below the apex makes
//! relative owners carry its extra labels. Absolute owners outside the apex are `RpzSyntax`.
//!
//! | record                    | rule                                                   |
//! |---------------------------|--------------------------------------------------------|
//! | `x CNAME .`               | `x` [`MatchKind::Exact`] [`Action::Nxdomain`]          |
//! | `*.x CNAME .`             | `x` [`MatchKind::Subdomains`] [`Action::Nxdomain`]     |
//! | `x CNAME *.`              | [`Action::Nodata`]                                     |
//! | `x CNAME rpz-passthru.`   | [`Action::Allow`] (also the legacy `x CNAME x.`)       |
//! | `x CNAME rpz-drop.`       | [`Action::Nxdomain`]: a DNS filter's nearest answer     |
//! | `x CNAME rpz-tcp-only.`, `x CNAME other.name.`, A/AAAA/TXT/... | `RpzUnsupportedAction` |
//! | owner ending in `rpz-ip`, `rpz-nsdname`, `rpz-nsip`, `rpz-client-ip` | `RpzUnsupportedTrigger` |
//!
//! SOA and NS records, and any record at the apex, are ignored silently. `$INCLUDE`,
//! `$GENERATE`, unknown directives and types, unbalanced parentheses and records over 64 KiB
//! are `RpzSyntax`.

use std::ops::Range;

use super::{Action, LineParser, MatchKind, Out, SkipReason};

/// Longest record (parenthesised lines joined) kept while waiting for its closing parenthesis.
const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Last labels of triggers other than QNAME.
const SPECIAL_LABELS: &[&str] = &["rpz-ip", "rpz-nsdname", "rpz-nsip", "rpz-client-ip"];
const CLASSES: &[&str] = &["IN", "CH", "HS", "CS"];
/// Record types that are local data in RPZ (reported as an unsupported action).
const DATA_TYPES: &[&str] = &[
    "A",
    "AAAA",
    "TXT",
    "MX",
    "PTR",
    "SRV",
    "DNAME",
    "HINFO",
    "CAA",
    "HTTPS",
    "SVCB",
    "NAPTR",
    "DS",
    "DNSKEY",
    "RRSIG",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "TLSA",
    "SSHFP",
    "LOC",
    "SPF",
    "RP",
    "AFSDB",
    "CERT",
    "URI",
    "DHCID",
    "OPENPGPKEY",
    "CDS",
    "CDNSKEY",
    "ZONEMD",
    "SMIMEA",
    "KEY",
    "SIG",
    "WKS",
    "MINFO",
    "MB",
    "MG",
    "MR",
    "NULL",
    "KX",
    "APL",
    "IPSECKEY",
    "HIP",
    "EUI48",
    "EUI64",
    "CSYNC",
];

/// What the current owner name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum OwnerKind {
    /// No record yet, so a blank owner has nothing to repeat.
    #[default]
    Unset,
    /// The zone apex: its records (SOA, NS, ...) are not policy.
    Apex,
    /// Not at or below the apex.
    Outside,
    /// A trigger name, held in [`Parser::owner`].
    Trigger,
}

/// The RPZ parser: zone-file state carried between lines.
#[derive(Debug, Default)]
pub(super) struct Parser {
    /// The zone apex: lower case, no trailing dot, `""` for the root.
    apex: String,
    apex_known: bool,
    /// The current `$ORIGIN` relative to the apex (`""` when it is the apex).
    origin_rel: String,
    /// The current `$ORIGIN` is not at or below the apex.
    origin_outside: bool,
    /// The current owner relative to the apex (the trigger), when `owner_kind` is `Trigger`.
    owner: String,
    owner_kind: OwnerKind,
    /// Token spans of the record being handled (reused).
    toks: Vec<Range<usize>>,
    /// Lines of a record whose parentheses are still open, joined by `\n`.
    pending: String,
    pending_line: u32,
    /// Open parentheses of `pending`.
    depth: i32,
}

impl LineParser for Parser {
    fn line(&mut self, text: &str, line: u32, out: &mut Out<'_>) {
        let scanned = scan(text, &mut self.toks);
        if self.depth == 0 {
            if scanned.min < 0 {
                out.skip(line, SkipReason::RpzSyntax, text);
            } else if scanned.depth > 0 {
                self.pending.clear();
                self.pending.push_str(text);
                self.pending_line = line;
                self.depth = scanned.depth;
            } else {
                self.record(text, line, out);
            }
            return;
        }
        let min = self.depth + scanned.min;
        self.depth += scanned.depth;
        self.pending.push('\n');
        self.pending.push_str(text);
        if min < 0 || self.pending.len() > MAX_RECORD_BYTES {
            out.skip(self.pending_line, SkipReason::RpzSyntax, &self.pending);
            self.depth = 0;
        } else if self.depth == 0 {
            let record = std::mem::take(&mut self.pending);
            scan(&record, &mut self.toks);
            self.record(&record, self.pending_line, out);
            self.pending = record;
        }
    }

    fn finish(&mut self, out: &mut Out<'_>) {
        if self.depth > 0 {
            out.skip(self.pending_line, SkipReason::RpzSyntax, &self.pending);
            self.depth = 0;
        }
    }
}

impl Parser {
    /// Handles one complete record (or directive) whose token spans are in `self.toks`.
    fn record(&mut self, text: &str, line: u32, out: &mut Out<'_>) {
        let toks = std::mem::take(&mut self.toks);
        self.record_tokens(text, &toks, line, out);
        self.toks = toks;
    }

    fn record_tokens(&mut self, text: &str, toks: &[Range<usize>], line: u32, out: &mut Out<'_>) {
        let tok = |i: usize| toks.get(i).and_then(|r| text.get(r.clone())).unwrap_or("");
        if toks.is_empty() {
            return;
        }
        let indented = text.starts_with([' ', '\t']);
        let first = tok(0);
        if !indented && first.starts_with('$') {
            if !self.directive(first, &toks[1..], text) {
                out.skip(line, SkipReason::RpzSyntax, text);
            }
            return;
        }
        // Optional TTL and class, in either order, before the type.
        let mut i = usize::from(!indented);
        let type_at_least = i;
        while i < toks.len() && i < type_at_least + 2 && (is_ttl(tok(i)) || is_class(tok(i))) {
            i += 1;
        }
        if i >= toks.len() {
            out.skip(line, SkipReason::RpzSyntax, text);
            return;
        }
        let rtype = tok(i);
        let is_soa = rtype.eq_ignore_ascii_case("SOA");
        if !indented {
            if is_soa
                && !self.apex_known
                && let Some(abs) = first.strip_suffix('.')
            {
                self.apex = abs.to_ascii_lowercase();
                self.apex_known = true;
            }
            self.set_owner(first);
        }
        match self.owner_kind {
            OwnerKind::Trigger => {}
            OwnerKind::Apex => return,
            OwnerKind::Unset | OwnerKind::Outside => {
                out.skip(line, SkipReason::RpzSyntax, text);
                return;
            }
        }
        if is_soa || rtype.eq_ignore_ascii_case("NS") {
            return;
        }
        let trigger = self.owner.as_str();
        let last_label = trigger.rsplit('.').next().unwrap_or("");
        if SPECIAL_LABELS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(last_label))
        {
            out.skip(line, SkipReason::RpzUnsupportedTrigger, text);
            return;
        }
        if !rtype.eq_ignore_ascii_case("CNAME") {
            let reason = if is_data_type(rtype) {
                SkipReason::RpzUnsupportedAction
            } else {
                SkipReason::RpzSyntax
            };
            out.skip(line, reason, text);
            return;
        }
        if toks.len() != i + 2 {
            out.skip(line, SkipReason::RpzSyntax, text);
            return;
        }
        let Some(action) = cname_action(tok(i + 1), trigger) else {
            out.skip(line, SkipReason::RpzUnsupportedAction, text);
            return;
        };
        let (kind, name) = match trigger.strip_prefix("*.") {
            Some(rest) => (MatchKind::Subdomains, rest),
            None => (MatchKind::Exact, trigger),
        };
        out.name(name, kind, action, line, text);
    }

    /// Applies a `$` directive; false when it is unsupported or malformed.
    fn directive(&mut self, name: &str, args: &[Range<usize>], text: &str) -> bool {
        if name.eq_ignore_ascii_case("$TTL") {
            return args.len() == 1;
        }
        if !name.eq_ignore_ascii_case("$ORIGIN") || args.len() != 1 {
            return false;
        }
        let Some(arg) = args.first().and_then(|r| text.get(r.clone())) else {
            return false;
        };
        let arg = arg.to_ascii_lowercase();
        match arg.strip_suffix('.') {
            _ if !self.apex_known => {
                // The first origin is the apex (a relative one is relative to the root).
                self.apex = arg.strip_suffix('.').unwrap_or(&arg).to_owned();
                self.apex_known = true;
                self.origin_rel.clear();
                self.origin_outside = false;
            }
            Some(abs) => match strip_apex(abs, &self.apex) {
                Some(rel) => {
                    self.origin_rel = rel.to_owned();
                    self.origin_outside = false;
                }
                None => {
                    self.origin_rel.clear();
                    self.origin_outside = true;
                }
            },
            None if self.origin_outside => {}
            None => {
                if !self.origin_rel.is_empty() {
                    self.origin_rel.insert(0, '.');
                }
                self.origin_rel.insert_str(0, &arg);
            }
        }
        true
    }

    /// Resolves an owner token into `self.owner` / `self.owner_kind`.
    fn set_owner(&mut self, tok: &str) {
        self.owner.clear();
        self.owner_kind = if tok == "@" {
            if self.origin_outside {
                OwnerKind::Outside
            } else if self.origin_rel.is_empty() {
                OwnerKind::Apex
            } else {
                self.owner.push_str(&self.origin_rel);
                OwnerKind::Trigger
            }
        } else if let Some(abs) = tok.strip_suffix('.') {
            match strip_apex(abs, &self.apex) {
                Some("") => OwnerKind::Apex,
                Some(rel) => {
                    self.owner.push_str(rel);
                    OwnerKind::Trigger
                }
                None => OwnerKind::Outside,
            }
        } else if self.origin_outside {
            OwnerKind::Outside
        } else {
            self.owner.push_str(tok);
            if !self.origin_rel.is_empty() {
                self.owner.push('.');
                self.owner.push_str(&self.origin_rel);
            }
            OwnerKind::Trigger
        };
    }
}

/// `abs` (absolute, trailing dot removed) relative to `apex`: `""` when equal, `None` when not
/// at or below it.
fn strip_apex<'n>(abs: &'n str, apex: &str) -> Option<&'n str> {
    if apex.is_empty() {
        return Some(abs);
    }
    let (a, p) = (abs.as_bytes(), apex.as_bytes());
    if a.eq_ignore_ascii_case(p) {
        return Some("");
    }
    let cut = a.len().checked_sub(p.len())?;
    if cut >= 2 && a[cut - 1] == b'.' && a[cut..].eq_ignore_ascii_case(p) {
        return abs.get(..cut - 1);
    }
    None
}

/// The action a CNAME target encodes, or `None` for local data and unsupported actions.
fn cname_action(target: &str, trigger: &str) -> Option<Action> {
    match target {
        "." => Some(Action::Nxdomain),
        "*." => Some(Action::Nodata),
        t if t.eq_ignore_ascii_case("rpz-passthru.") => Some(Action::Allow),
        t if t.eq_ignore_ascii_case("rpz-drop.") => Some(Action::Nxdomain),
        // The legacy PASSTHRU encoding: a CNAME to the trigger name itself.
        t if t
            .strip_suffix('.')
            .is_some_and(|n| n.eq_ignore_ascii_case(trigger)) =>
        {
            Some(Action::Allow)
        }
        _ => None,
    }
}

fn is_ttl(t: &str) -> bool {
    t.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && t.bytes().all(|b| {
            b.is_ascii_digit() || matches!(b.to_ascii_lowercase(), b'w' | b'd' | b'h' | b'm' | b's')
        })
}

fn is_class(t: &str) -> bool {
    CLASSES.iter().any(|c| c.eq_ignore_ascii_case(t))
}

fn is_data_type(t: &str) -> bool {
    DATA_TYPES.iter().any(|d| d.eq_ignore_ascii_case(t))
        || t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("TYPE"))
            && t.len() > 4
            && t.bytes().skip(4).all(|b| b.is_ascii_digit())
}

/// Parenthesis depth at the end of a scanned text, and the lowest it reached.
struct Scan {
    depth: i32,
    min: i32,
}

/// Splits zone-file text into token spans: whitespace separates, `;` comments run to the end of
/// the line, `"..."` is one token, `\` escapes the next byte, `(` and `)` are dropped but counted.
fn scan(text: &str, toks: &mut Vec<Range<usize>>) -> Scan {
    toks.clear();
    let b = text.as_bytes();
    let (mut depth, mut min) = (0i32, 0i32);
    let (mut quote, mut comment) = (false, false);
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if comment {
            comment = c != b'\n';
        } else if quote {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                quote = false;
                if let Some(s) = start.take() {
                    toks.push(s..i + 1);
                }
            }
        } else {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => {
                    if let Some(s) = start.take() {
                        toks.push(s..i);
                    }
                    match c {
                        b';' => comment = true,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            min = min.min(depth);
                        }
                        b'"' => {
                            quote = true;
                            start = Some(i);
                        }
                        _ => {}
                    }
                }
                b'\\' => {
                    start.get_or_insert(i);
                    i += 1;
                }
                _ => {
                    start.get_or_insert(i);
                }
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        toks.push(s..b.len());
    }
    Scan { depth, min }
}
