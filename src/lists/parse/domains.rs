//! Plain domain lists: one name per line, `#` comments (whole-line, or trailing after
//! whitespace), blank lines ignored, an optional leading `*.` meaning the same as the bare name.
//! Every name is a [`MatchKind::Subtree`] [`Action::Block`] rule.
//!
//! A line with more than one token before any comment (`a.com b.com`, `a.com junk`) is skipped
//! as `InvalidName(BadChar)` rather than guessing which token was meant.

use super::{Action, LineParser, MatchKind, Out, SkipReason, strip_hash_comment};
use crate::lists::name::NameError;

/// The domains-list line parser (stateless).
pub(super) struct Parser;

impl LineParser for Parser {
    fn line(&mut self, text: &str, line: u32, out: &mut Out<'_>) {
        let body = strip_hash_comment(text).trim();
        if body.is_empty() {
            return;
        }
        if body.contains([' ', '\t']) {
            out.skip(line, SkipReason::InvalidName(NameError::BadChar), text);
            return;
        }
        let name = body.strip_prefix("*.").unwrap_or(body);
        out.name(name, MatchKind::Subtree, Action::Block, line, text);
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
example.com
  Tracker.Example.NET.   # trailing comment
# whole-line comment

*.wild.example
münchen.de
a..b
two tokens.com
bad#char.com
*.
-hyphen.com
10.0.0.1
x.com\t#tab comment
";
        check(
            Format::Domains,
            input,
            &[
                ("example.com", MatchKind::Subtree, Action::Block, 1),
                ("tracker.example.net", MatchKind::Subtree, Action::Block, 2),
                ("wild.example", MatchKind::Subtree, Action::Block, 5),
                ("xn--mnchen-3ya.de", MatchKind::Subtree, Action::Block, 6),
                ("x.com", MatchKind::Subtree, Action::Block, 13),
            ],
            &[
                (7, "invalid_name_bad_label"),
                (8, "invalid_name_bad_char"),
                (9, "invalid_name_bad_char"),
                (10, "invalid_name_empty"),
                (11, "invalid_name_hyphen"),
                (12, "invalid_name_ip_address"),
            ],
        );
    }

    #[test]
    fn crlf_bom_comments() {
        let input = "\u{FEFF}first.com\r\n# c\r\n\r\nsecond.com # c\r\nthird.com";
        let (rules, report) = rules_of(Format::Domains, input.as_bytes());
        let names: Vec<_> = rules.iter().map(|r| (r.0.as_str(), r.3)).collect();
        assert_eq!(
            names,
            [("first.com", 1), ("second.com", 4), ("third.com", 5)]
        );
        assert_eq!(report.lines, 5);
        assert_eq!(report.skipped_total(), 0);
    }
}
