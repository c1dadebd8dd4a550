//! Adblock-style filter lists (Adblock Plus, uBlock Origin, AdGuard). Only whole-host rules are
//! used: `||host^` (also without the `^`, or ending `^|`) blocks the host and its subdomains,
//! `@@||host^` allows them, and the options `important` and `third-party` (`3p`) are accepted
//! and ignored. A bare `host.example` line (lists that mix in plain domains) blocks too.
//!
//! `!` lines, `#` lines that are not cosmetic rules, and `[Adblock Plus 2.0]`-style headers are
//! comments. Everything else is skipped with its reason: URL rules (paths, `|` anchors,
//! schemes) as `AdblockPath`, cosmetic rules as `AdblockCosmetic`, `/regex/` as `AdblockRegex`,
//! other options as `AdblockOption`; wildcards, ports, whitespace and bare patterns that are
//! not whole domain names (`-ad-banner-`, `example.com^`, single labels) as `AdblockOther`.

use std::borrow::Cow;

use super::{Action, LineParser, MatchKind, Out, Rule, SkipReason};
use crate::lists::name;

/// Options that do not narrow a rule in a way DNS could honour; they are ignored.
const HARMLESS_OPTIONS: &[&str] = &["important", "third-party", "3p"];

/// Separators of cosmetic, scriptlet and HTML-filtering rules.
const COSMETIC_MARKERS: &[&str] = &[
    "##", "#@#", "#?#", "#@?#", "#$#", "#@$#", "#$?#", "#@$?#", "#%#", "#@%#", "$$", "$@$",
];

/// The adblock line parser (stateless).
pub(super) struct Parser;

impl LineParser for Parser {
    fn line(&mut self, text: &str, line: u32, out: &mut Out<'_>) {
        let l = text.trim();
        if l.is_empty() || l.starts_with('!') || (l.starts_with('[') && l.ends_with(']')) {
            return;
        }
        if is_cosmetic(l) {
            out.skip(line, SkipReason::AdblockCosmetic, text);
            return;
        }
        if l.starts_with('#') {
            return;
        }
        match classify(l) {
            Ok((name, action)) => out.rule(Rule {
                name,
                kind: MatchKind::Subtree,
                action,
                line,
            }),
            Err(reason) => out.skip(line, reason, text),
        }
    }
}

/// Whether `l` (trimmed) is a cosmetic / scriptlet / HTML-filtering rule: a marker such as
/// `##` preceded by an optional domain list and followed by a selector. `#####` banners and
/// `## text` are not.
pub(super) fn is_cosmetic(l: &str) -> bool {
    if !l.contains(['#', '$']) {
        return false;
    }
    COSMETIC_MARKERS.iter().any(|m| {
        l.match_indices(m).any(|(at, _)| {
            let before = &l[..at];
            let after = &l[at + m.len()..];
            !before.contains(char::is_whitespace)
                && after
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_whitespace() && c != '#')
        })
    })
}

/// Turns a non-comment, non-cosmetic line into a canonical name and action, or a skip reason.
fn classify(l: &str) -> Result<(Cow<'_, str>, Action), SkipReason> {
    let (body, action) = match l.strip_prefix("@@") {
        Some(body) => (body, Action::Allow),
        None => (l, Action::Block),
    };
    if let Some(inner) = body.strip_prefix('/') {
        // `/regex/` or `/regex/$options`, else a path pattern such as `/ads/banner.`.
        return Err(match inner.rfind('/') {
            Some(i) if inner[i + 1..].is_empty() || inner[i + 1..].starts_with('$') => {
                SkipReason::AdblockRegex
            }
            _ => SkipReason::AdblockPath,
        });
    }
    let (pattern, options) = match body.split_once('$') {
        Some((pattern, options)) => (pattern, Some(options)),
        None => (body, None),
    };
    let (host, anchored) = match pattern.strip_prefix("||") {
        Some(rest) => {
            let host = rest
                .strip_suffix("^|")
                .or_else(|| rest.strip_suffix('^'))
                .unwrap_or(rest);
            (host, true)
        }
        None if pattern.starts_with('|') || pattern.contains("://") => {
            return Err(SkipReason::AdblockPath);
        }
        None => (pattern, false),
    };
    if host.contains(char::is_whitespace) || host.contains(['*', ':', '|']) {
        return Err(SkipReason::AdblockOther);
    }
    if host.contains(['/', '?']) || (anchored && host.contains('^')) {
        return Err(SkipReason::AdblockPath);
    }
    if let Some(options) = options {
        let harmless = |o: &str| {
            HARMLESS_OPTIONS
                .iter()
                .any(|h| h.eq_ignore_ascii_case(o.trim()))
        };
        if !options.split(',').all(harmless) {
            return Err(SkipReason::AdblockOption);
        }
    }
    match name::normalize(host) {
        Ok(name) if anchored || name.contains('.') => Ok((name, action)),
        Ok(_) => Err(SkipReason::AdblockOther),
        Err(e) if anchored => Err(SkipReason::InvalidName(e)),
        Err(_) => Err(SkipReason::AdblockOther),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::{check, rules_of};
    use super::*;

    #[test]
    fn table() {
        let input = "\
[Adblock Plus 2.0]
! Title: test
||ads.example.com^
@@||ok.example.com^
||imp.example^$important
||tp.example^$third-party
||both.example^$important,third-party
@@||allowimp.example^$important
||noCaret.Example.com
bare.example.org
||pipe.example^|
||example.com/ads
|https://example.com/x
https://example.com/
/ads[0-9]+\\.example/
/banner/ads.
##.ad-banner
example.com##.ad
example.com#@#.ad
example.com#?#div:has(.ad)
example.com#$#body { color: red }
example.com#%#//scriptlet('abort')
||script.example^$script
||d.example^$domain=a.com
||dt.example^$dnstype=AAAA
||c.example^$client=127.0.0.1
||da.example^$denyallow=x.com
||*.wild.example^
||wild*.example^
||port.example:8080^
-ad-banner-
example.com^
localhost
||bad..name^
# hosts-style comment
##########
||trailing.example^$
";
        let (s, b, a) = (MatchKind::Subtree, Action::Block, Action::Allow);
        check(
            Format::Adblock,
            input,
            &[
                ("ads.example.com", s, b, 3),
                ("ok.example.com", s, a, 4),
                ("imp.example", s, b, 5),
                ("tp.example", s, b, 6),
                ("both.example", s, b, 7),
                ("allowimp.example", s, a, 8),
                ("nocaret.example.com", s, b, 9),
                ("bare.example.org", s, b, 10),
                ("pipe.example", s, b, 11),
            ],
            &[
                (12, "adblock_path"),
                (13, "adblock_path"),
                (14, "adblock_path"),
                (15, "adblock_regex"),
                (16, "adblock_path"),
                (17, "adblock_cosmetic"),
                (18, "adblock_cosmetic"),
                (19, "adblock_cosmetic"),
                (20, "adblock_cosmetic"),
                (21, "adblock_cosmetic"),
                (22, "adblock_cosmetic"),
                (23, "adblock_option"),
                (24, "adblock_option"),
                (25, "adblock_option"),
                (26, "adblock_option"),
                (27, "adblock_option"),
                (28, "adblock_other"),
                (29, "adblock_other"),
                (30, "adblock_other"),
                (31, "adblock_other"),
            ],
        );
        let (_, report) = rules_of(Format::Adblock, input.as_bytes());
        assert_eq!(report.skipped_by_reason.get("adblock_other"), Some(&6));
        assert_eq!(
            report.skipped_by_reason.get("invalid_name_bad_label"),
            Some(&1)
        );
        assert_eq!(report.skipped_by_reason.get("adblock_option"), Some(&6));
        assert_eq!(report.skipped_total(), 24);
    }

    #[test]
    fn crlf_bom_comments() {
        let input =
            "\u{FEFF}[Adblock Plus 2.0]\r\n! c\r\n||a.com^\r\n\r\n# c\r\n@@||b.com^$important\r\n";
        let (rules, report) = rules_of(Format::Adblock, input.as_bytes());
        let got: Vec<_> = rules.iter().map(|r| (r.0.as_str(), r.2, r.3)).collect();
        assert_eq!(
            got,
            [("a.com", Action::Block, 3), ("b.com", Action::Allow, 6)]
        );
        assert_eq!(report.lines, 6);
        assert_eq!(report.skipped_total(), 0);
    }

    #[test]
    fn cosmetic_detection() {
        assert!(is_cosmetic("##.ad"));
        assert!(is_cosmetic("a.com,b.com##div"));
        assert!(!is_cosmetic("#####"));
        assert!(!is_cosmetic("## Section"));
        assert!(!is_cosmetic("# comment ##x"));
        assert!(!is_cosmetic("||a.com^$important"));
    }
}
