//! Streaming parsers for the blocklist and allowlist formats pixelguard reads: plain domain
//! lists, hosts files, adblock-style filter lists and RPZ zone files. Owns the shared vocabulary
//! ([`Format`], [`Rule`], [`SkipReason`], [`ParseReport`]), the line reader (one reused buffer,
//! CRLF, BOM, over-long and non-UTF-8 lines), format guessing and the dispatch to the per-format
//! line parsers in the submodules. Bad lines are counted and skipped, never fatal.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead};

use super::name::{self, NameError};

mod adblock;
mod domains;
mod hosts;
mod rpz;

/// Lines longer than this many bytes (terminator excluded) are skipped as
/// [`SkipReason::LineTooLong`] without being read whole into memory.
pub const MAX_LINE_BYTES: usize = 4096;
/// How many characters of a skipped line [`Skipped::text`] keeps.
const SKIPPED_TEXT_CHARS: usize = 120;
/// How many skipped lines [`ParseReport::first_skipped`] keeps.
const FIRST_SKIPPED_MAX: usize = 20;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A list's syntax. (The TOML catalogue format is handled elsewhere.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One domain name per line, `#` comments.
    Domains,
    /// `/etc/hosts` syntax: an address followed by names.
    Hosts,
    /// Adblock Plus / uBlock / AdGuard filter syntax; only whole-host rules are used.
    Adblock,
    /// A DNS Response Policy Zone in master-file syntax; only QNAME triggers are used.
    Rpz,
}

impl Format {
    /// The stable lower-case name: `"domains"`, `"hosts"`, `"adblock"` or `"rpz"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Domains => "domains",
            Format::Hosts => "hosts",
            Format::Adblock => "adblock",
            Format::Rpz => "rpz",
        }
    }
}

/// How a rule's name matches query names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The name and every subdomain.
    Subtree,
    /// The name only.
    Exact,
    /// Only strict subdomains of the name (RPZ `*.x`).
    Subdomains,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The zone's configured block response.
    Block,
    /// Exempt from blocking.
    Allow,
    /// Answer NXDOMAIN (RPZ `CNAME .`, and `CNAME rpz-drop.`).
    Nxdomain,
    /// Answer NOERROR with no records (RPZ `CNAME *.`).
    Nodata,
}

impl Action {
    /// The name explain shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Allow => "allow",
            Self::Nxdomain => "nxdomain",
            Self::Nodata => "nodata",
        }
    }
}

/// One rule read from a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<'a> {
    /// The name in canonical form (see [`name::normalize`]); borrows the line when it already was.
    pub name: Cow<'a, str>,
    /// How the name matches query names.
    pub kind: MatchKind,
    /// What a match does.
    pub action: Action,
    /// 1-based line number where the rule (or its record) starts.
    pub line: u32,
}

/// Why a line (or, in hosts files, one name on a line) was skipped. A closed set whose
/// [`as_str`](SkipReason::as_str) labels are stable, for use as counter labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SkipReason {
    /// The name failed [`name::normalize`]. Also used for a domains-list line with more than
    /// one token before any comment (reported as [`NameError::BadChar`]).
    #[error("invalid name: {0}")]
    InvalidName(NameError),
    /// Adblock rule matching URLs rather than hosts: a path, a `|` URL anchor or a scheme.
    #[error("adblock rule with a path or URL")]
    AdblockPath,
    /// Adblock cosmetic (element hiding, scriptlet, HTML filtering) rule.
    #[error("adblock cosmetic rule")]
    AdblockCosmetic,
    /// Adblock rule with an option other than `important` and `third-party`.
    #[error("adblock rule with an unsupported option")]
    AdblockOption,
    /// Adblock regular-expression rule.
    #[error("adblock regular-expression rule")]
    AdblockRegex,
    /// Any other adblock rule that is not a whole-host rule (wildcards, ports, partial names).
    #[error("adblock rule that is not a host rule")]
    AdblockOther,
    /// A hosts-file line whose first token is not an IP address.
    #[error("hosts line without an IP address")]
    HostsBadAddress,
    /// RPZ trigger other than QNAME (`rpz-ip`, `rpz-nsdname`, `rpz-nsip`, `rpz-client-ip`).
    #[error("unsupported RPZ trigger")]
    RpzUnsupportedTrigger,
    /// RPZ action other than NXDOMAIN, NODATA, PASSTHRU and DROP (local data, `rpz-tcp-only.`).
    #[error("unsupported RPZ action")]
    RpzUnsupportedAction,
    /// Malformed zone-file syntax, an unsupported directive or a name outside the zone.
    #[error("RPZ syntax error")]
    RpzSyntax,
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("line too long")]
    LineTooLong,
}

impl SkipReason {
    /// Every reason, for registering counters up front.
    pub const ALL: [SkipReason; 18] = [
        SkipReason::InvalidName(NameError::Empty),
        SkipReason::InvalidName(NameError::TooLong),
        SkipReason::InvalidName(NameError::BadLabel),
        SkipReason::InvalidName(NameError::BadChar),
        SkipReason::InvalidName(NameError::Hyphen),
        SkipReason::InvalidName(NameError::Idna),
        SkipReason::InvalidName(NameError::IpAddress),
        SkipReason::AdblockPath,
        SkipReason::AdblockCosmetic,
        SkipReason::AdblockOption,
        SkipReason::AdblockRegex,
        SkipReason::AdblockOther,
        SkipReason::HostsBadAddress,
        SkipReason::RpzUnsupportedTrigger,
        SkipReason::RpzUnsupportedAction,
        SkipReason::RpzSyntax,
        SkipReason::NotUtf8,
        SkipReason::LineTooLong,
    ];

    /// Stable snake_case label. Invalid names carry their [`NameError`]:
    /// `invalid_name_empty`, `invalid_name_bad_char`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::InvalidName(e) => match e {
                NameError::Empty => "invalid_name_empty",
                NameError::TooLong => "invalid_name_too_long",
                NameError::BadLabel => "invalid_name_bad_label",
                NameError::BadChar => "invalid_name_bad_char",
                NameError::Hyphen => "invalid_name_hyphen",
                NameError::Idna => "invalid_name_idna",
                NameError::IpAddress => "invalid_name_ip_address",
            },
            SkipReason::AdblockPath => "adblock_path",
            SkipReason::AdblockCosmetic => "adblock_cosmetic",
            SkipReason::AdblockOption => "adblock_option",
            SkipReason::AdblockRegex => "adblock_regex",
            SkipReason::AdblockOther => "adblock_other",
            SkipReason::HostsBadAddress => "hosts_bad_address",
            SkipReason::RpzUnsupportedTrigger => "rpz_unsupported_trigger",
            SkipReason::RpzUnsupportedAction => "rpz_unsupported_action",
            SkipReason::RpzSyntax => "rpz_syntax",
            SkipReason::NotUtf8 => "not_utf8",
            SkipReason::LineTooLong => "line_too_long",
        }
    }
}

/// A skipped line, kept for diagnostics.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// 1-based line number.
    pub line: u32,
    /// Why it was skipped.
    pub reason: SkipReason,
    /// The line (invalid UTF-8 replaced), truncated to 120 characters.
    pub text: String,
}

/// What a parse produced besides its rules.
#[derive(Debug, Default, Clone)]
pub struct ParseReport {
    /// Rules passed to the sink.
    pub rules: u64,
    /// Physical lines read, including blank, comment and skipped lines.
    pub lines: u64,
    /// Skip counts keyed by [`SkipReason::as_str`].
    pub skipped_by_reason: BTreeMap<&'static str, u64>,
    /// The first skips (at most 20), in input order.
    pub first_skipped: Vec<Skipped>,
}

impl ParseReport {
    /// Total skips over all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_by_reason.values().sum()
    }
}

/// Guesses the format from the first few KiB of content (comments skipped): hosts lines start
/// with an IP, adblock has `||`/`@@`/`!` comments/`[Adblock Plus`, RPZ has `$ORIGIN`/`$TTL`/SOA
/// or `CNAME .` records, else domains. Looks at no more than the first 64 KiB and 500 lines;
/// a trailing partial line is ignored.
pub fn guess_format(head: &[u8]) -> Format {
    let head = &head[..head.len().min(64 * 1024)];
    let head = head.strip_prefix(BOM).unwrap_or(head);
    let head = match head.iter().rposition(|&b| b == b'\n') {
        Some(i) => &head[..=i],
        None => head,
    };
    let text = String::from_utf8_lossy(head);
    let (mut domains, mut hosts, mut adblock, mut rpz) = (0u32, 0u32, 0u32, 0u32);
    for line in text.lines().take(500) {
        let l = line.trim();
        let lower_start = |p: &str| l.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p));
        if l.is_empty() {
            continue;
        }
        if lower_start("[adblock") || lower_start("[ublock") {
            return Format::Adblock;
        }
        if lower_start("$origin") || lower_start("$ttl") {
            return Format::Rpz;
        }
        if l.starts_with('!') || adblock::is_cosmetic(l) {
            adblock += 2;
            continue;
        }
        if l.starts_with(';') {
            rpz += 1;
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        if l.starts_with("||") || l.starts_with("@@") {
            adblock += 3;
            continue;
        }
        let mut tokens = strip_hash_comment(l).split_whitespace();
        let first = tokens.next().unwrap_or("");
        let rest = tokens.clone().count();
        if rest > 0 && hosts::is_address(first) {
            hosts += 1;
        } else if tokens.any(|t| {
            ["SOA", "NS", "CNAME", "IN"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k))
        }) {
            rpz += 2;
        } else if rest == 0 && (l.contains('^') || l.contains('$')) {
            adblock += 1;
        } else if rest == 0 {
            domains += 1;
        }
    }
    if rpz > 0 && rpz >= hosts && rpz >= adblock {
        Format::Rpz
    } else if adblock > 0 && adblock >= hosts {
        // The adblock parser also accepts bare domain lines, so any adblock evidence wins.
        Format::Adblock
    } else if hosts > 0 && hosts >= domains {
        Format::Hosts
    } else {
        Format::Domains
    }
}

/// Streams `reader` line by line (one reused line buffer), calling `sink` for every rule; bad
/// lines are skipped and counted, never fatal. Returns `Err` only on an I/O error from the
/// reader. Lines may end in `\n` or `\r\n`; a UTF-8 BOM at the start is ignored.
pub fn parse(
    format: Format,
    mut reader: impl BufRead,
    mut sink: impl FnMut(Rule<'_>),
) -> io::Result<ParseReport> {
    let mut report = ParseReport::default();
    let mut out = Out {
        sink: &mut sink,
        report: &mut report,
    };
    match format {
        Format::Domains => run(&mut domains::Parser, &mut reader, &mut out)?,
        Format::Hosts => run(&mut hosts::Parser, &mut reader, &mut out)?,
        Format::Adblock => run(&mut adblock::Parser, &mut reader, &mut out)?,
        Format::Rpz => run(&mut rpz::Parser::default(), &mut reader, &mut out)?,
    }
    Ok(report)
}

/// A per-format parser fed one decoded line at a time.
trait LineParser {
    /// Handles one line (terminator and, on line 1, BOM removed).
    fn line(&mut self, text: &str, line: u32, out: &mut Out<'_>);
    /// Called once at end of input.
    fn finish(&mut self, _out: &mut Out<'_>) {}
}

/// Where line parsers put rules and skips.
struct Out<'o> {
    sink: &'o mut dyn FnMut(Rule<'_>),
    report: &'o mut ParseReport,
}

impl Out<'_> {
    fn rule(&mut self, rule: Rule<'_>) {
        self.report.rules += 1;
        (self.sink)(rule);
    }

    fn skip(&mut self, line: u32, reason: SkipReason, text: &str) {
        *self
            .report
            .skipped_by_reason
            .entry(reason.as_str())
            .or_insert(0) += 1;
        if self.report.first_skipped.len() < FIRST_SKIPPED_MAX {
            self.report.first_skipped.push(Skipped {
                line,
                reason,
                text: text.chars().take(SKIPPED_TEXT_CHARS).collect(),
            });
        }
    }

    /// Normalises `raw` and emits it as a rule, or skips `text` as an invalid name.
    fn name(&mut self, raw: &str, kind: MatchKind, action: Action, line: u32, text: &str) {
        match name::normalize(raw) {
            Ok(name) => self.rule(Rule {
                name,
                kind,
                action,
                line,
            }),
            Err(e) => self.skip(line, SkipReason::InvalidName(e), text),
        }
    }
}

fn run(p: &mut impl LineParser, reader: &mut impl BufRead, out: &mut Out<'_>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(256);
    let mut line: u32 = 0;
    while let Some(too_long) = read_line(reader, &mut buf)? {
        line = line.saturating_add(1);
        out.report.lines += 1;
        let bytes = if line == 1 {
            buf.strip_prefix(BOM).unwrap_or(&buf)
        } else {
            &buf[..]
        };
        if too_long {
            out.skip(
                line,
                SkipReason::LineTooLong,
                &String::from_utf8_lossy(bytes),
            );
            continue;
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => p.line(text, line, out),
            Err(_) => out.skip(line, SkipReason::NotUtf8, &String::from_utf8_lossy(bytes)),
        }
    }
    p.finish(out);
    Ok(())
}

/// Reads one line into `buf`, without its `\n` or `\r\n`. Returns `None` at end of input, else
/// whether the line is longer than [`MAX_LINE_BYTES`] (then `buf` holds only its start).
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let mut read_any = false;
    let mut too_long = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        read_any = true;
        let (piece, used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        // Room for the longest allowed line plus the `\r` of a CRLF.
        let room = (MAX_LINE_BYTES + 1).saturating_sub(buf.len());
        if piece.len() > room {
            too_long = true;
            buf.extend_from_slice(&piece[..room]);
        } else {
            buf.extend_from_slice(piece);
        }
        reader.consume(used);
        if done {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if !too_long && buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(too_long || buf.len() > MAX_LINE_BYTES))
}

/// Cuts a `#` comment that starts the line or follows whitespace (domains and hosts syntax).
fn strip_hash_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, _) in line.match_indices('#') {
        if i == 0 || matches!(bytes[i - 1], b' ' | b'\t') {
            return &line[..i];
        }
    }
    line
}

#[cfg(test)]
mod tests;
