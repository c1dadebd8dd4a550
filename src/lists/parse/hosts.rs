//! Hosts files (`/etc/hosts` syntax): an IPv4 or IPv6 address followed by one or more names,
//! `#` comments (whole-line or trailing after whitespace). The address is ignored (pixelguard
//! blocks by name); every name is a [`MatchKind::Subtree`] [`Action::Block`] rule, except the
//! loopback and housekeeping names every hosts file carries, which are dropped silently.
//!
//! Invalid names are skipped one by one, so a line can yield both rules and skips. A line whose
//! first token is not an address is `HostsBadAddress`; an address with no names is
//! `InvalidName(Empty)`.

use std::net::IpAddr;

use super::{Action, LineParser, MatchKind, Out, SkipReason, strip_hash_comment};
use crate::lists::name::NameError;

/// Names dropped without counting a skip.
const IGNORED: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// The hosts-file line parser (stateless).
pub(super) struct Parser;

impl LineParser for Parser {
    fn line(&mut self, text: &str, line: u32, out: &mut Out<'_>) {
        let body = strip_hash_comment(text);
        let mut tokens = body.split_whitespace();
        let Some(address) = tokens.next() else {
            return;
        };
        if !is_address(address) {
            out.skip(line, SkipReason::HostsBadAddress, text);
            return;
        }
        let mut any = false;
        for token in tokens {
            any = true;
            if !is_ignored(token) {
                out.name(token, MatchKind::Subtree, Action::Block, line, text);
            }
        }
        if !any {
            out.skip(line, SkipReason::InvalidName(NameError::Empty), text);
        }
    }
}

/// Whether `token` is an IPv4 or IPv6 address (an IPv6 zone such as `%lo0` is allowed).
pub(super) fn is_address(token: &str) -> bool {
    let addr = match token.split_once('%') {
        Some((addr, _)) if addr.contains(':') => addr,
        _ => token,
    };
    addr.parse::<IpAddr>().is_ok()
}

fn is_ignored(token: &str) -> bool {
    let token = token.strip_suffix('.').unwrap_or(token);
    IGNORED.iter().any(|n| n.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::{check, rules_of};
    use super::*;

    #[test]
    fn table() {
        let input = "\
127.0.0.1 localhost localhost.localdomain
::1 localhost ip6-localhost ip6-loopback
0.0.0.0 0.0.0.0
0.0.0.0 ads.example.com tracker.example.net # comment
127.0.0.1\tTAB.example.org
:: v6.example.com
::1 one.example.com
fe80::1%lo0 zone.example.com
2001:db8::1 doc.example
example.com
0.0.0.0 good.com bad..name also-good.com
0.0.0.0
300.1.1.1 x.com
0.0.0.0 10.0.0.1
0.0.0.0 Broadcasthost LOCAL. ip6-allrouters
# 0.0.0.0 commented.com
   0.0.0.0 indented.com
";
        let b = Action::Block;
        let s = MatchKind::Subtree;
        check(
            Format::Hosts,
            input,
            &[
                ("ads.example.com", s, b, 4),
                ("tracker.example.net", s, b, 4),
                ("tab.example.org", s, b, 5),
                ("v6.example.com", s, b, 6),
                ("one.example.com", s, b, 7),
                ("zone.example.com", s, b, 8),
                ("doc.example", s, b, 9),
                ("good.com", s, b, 11),
                ("also-good.com", s, b, 11),
                ("indented.com", s, b, 17),
            ],
            &[
                (10, "hosts_bad_address"),
                (11, "invalid_name_bad_label"),
                (12, "invalid_name_empty"),
                (13, "hosts_bad_address"),
                (14, "invalid_name_ip_address"),
            ],
        );
    }

    #[test]
    fn crlf_bom_comments() {
        let input =
            "\u{FEFF}# header\r\n0.0.0.0 a.com b.com #x\r\n\r\n#0.0.0.0 c.com\r\n0.0.0.0 d.com";
        let (rules, report) = rules_of(Format::Hosts, input.as_bytes());
        let names: Vec<_> = rules.iter().map(|r| (r.0.as_str(), r.3)).collect();
        assert_eq!(names, [("a.com", 2), ("b.com", 2), ("d.com", 5)]);
        assert_eq!(report.lines, 5);
        assert_eq!(report.skipped_total(), 0);
        // A BOM directly before the address must not turn it into a bad address.
        let (rules, _) = rules_of(Format::Hosts, "\u{FEFF}0.0.0.0 e.com\n".as_bytes());
        assert_eq!(rules.len(), 1);
    }
}
