//! Tests shared by the format parsers: helpers, the line reader, format guessing, the RPZ
//! parser's tables, fuzzing every format, and a one-million-line run.

use std::io::{self, BufReader, Read};

use proptest::prelude::*;

use super::*;

/// A rule with its name owned, for comparing.
pub(super) type Got = (String, MatchKind, Action, u32);

/// Parses in-memory input, checking the report's rule count against the sink's.
pub(super) fn rules_of(format: Format, input: &[u8]) -> (Vec<Got>, ParseReport) {
    let mut rules = Vec::new();
    let result = parse(format, input, |r| {
        rules.push((r.name.into_owned(), r.kind, r.action, r.line));
    });
    let report = match result {
        Ok(report) => report,
        Err(e) => panic!("in-memory parse failed: {e}"),
    };
    assert_eq!(report.rules, rules.len() as u64);
    (rules, report)
}

/// Asserts the exact rules and the exact (line, reason) skips (at most the 20 kept).
pub(super) fn check(
    format: Format,
    input: &str,
    want_rules: &[(&str, MatchKind, Action, u32)],
    want_skips: &[(u32, &str)],
) {
    let (rules, report) = rules_of(format, input.as_bytes());
    let got: Vec<_> = rules
        .iter()
        .map(|(n, k, a, l)| (n.as_str(), *k, *a, *l))
        .collect();
    assert_eq!(got, want_rules, "rules of {}", format.as_str());
    let skips: Vec<_> = report
        .first_skipped
        .iter()
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skips, want_skips, "skips: {:#?}", report.first_skipped);
}

const ALL_FORMATS: [Format; 4] = [Format::Domains, Format::Hosts, Format::Adblock, Format::Rpz];

#[test]
fn reader_limits_and_encoding() {
    let mut input = Vec::new();
    input.extend_from_slice(b"ok.com\n");
    input.extend_from_slice(&[b'a'; 5000]);
    input.extend_from_slice(b"\nbad\xff.com\n");
    // Exactly at the limit (with CRLF), and one byte over.
    let at_limit = format!("{}.com", "a.".repeat((MAX_LINE_BYTES - 4) / 2));
    assert_eq!(at_limit.len(), MAX_LINE_BYTES);
    input.extend_from_slice(at_limit.as_bytes());
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(b"b");
    input.extend_from_slice(at_limit.as_bytes());
    input.extend_from_slice(b"\nlast.com");
    let (rules, report) = rules_of(Format::Domains, &input);
    let lines: Vec<_> = rules.iter().map(|r| r.3).collect();
    // The at-limit name is too long for DNS (invalid name), but it was read.
    assert_eq!(lines, [1, 6]);
    let skips: Vec<_> = report
        .first_skipped
        .iter()
        .map(|s| (s.line, s.reason))
        .collect();
    assert_eq!(
        skips,
        [
            (2, SkipReason::LineTooLong),
            (3, SkipReason::NotUtf8),
            (4, SkipReason::InvalidName(NameError::TooLong)),
            (5, SkipReason::LineTooLong),
        ]
    );
    assert_eq!(report.first_skipped[0].text.chars().count(), 120);
    assert_eq!(report.first_skipped[1].text, "bad\u{FFFD}.com");
    assert_eq!(report.lines, 6);
    assert_eq!(report.skipped_total(), 4);
}

#[test]
fn tiny_buffer_and_many_skips() {
    // A 1-byte BufReader exercises lines split across buffer refills.
    let text = "\u{FEFF}0.0.0.0 a.com\r\n0.0.0.0 b..com\r\n".repeat(30);
    let (rules, report) = rules_of(Format::Hosts, text.as_bytes());
    let mut r = Vec::new();
    let small = parse(
        Format::Hosts,
        BufReader::with_capacity(1, text.as_bytes()),
        |x| r.push(x.name.into_owned()),
    );
    assert!(small.is_ok());
    assert_eq!(r.len(), rules.len());
    // Only line 1 starts with the BOM; later BOMs make the address invalid.
    assert_eq!(rules.len(), 1);
    assert_eq!(report.skipped_by_reason.get("hosts_bad_address"), Some(&29));
    assert_eq!(report.skipped_total(), 59);
    assert_eq!(report.first_skipped.len(), 20);
    assert_eq!(
        report.skipped_by_reason.get("invalid_name_bad_label"),
        Some(&30)
    );
}

struct FailingReader(usize);

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        self.0 -= 1;
        let line = b"x.com\n";
        let n = line.len().min(buf.len());
        buf[..n].copy_from_slice(&line[..n]);
        Ok(n)
    }
}

#[test]
fn io_errors_are_returned() {
    for format in ALL_FORMATS {
        let mut n = 0;
        let result = parse(format, BufReader::new(FailingReader(3)), |_| n += 1);
        assert!(result.is_err(), "{}", format.as_str());
    }
}

#[test]
fn labels_are_unique_and_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for reason in SkipReason::ALL {
        let label = reason.as_str();
        assert!(seen.insert(label), "{label}");
        assert!(
            label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
    }
    let names: Vec<_> = ALL_FORMATS.iter().map(|f| f.as_str()).collect();
    assert_eq!(names, ["domains", "hosts", "adblock", "rpz"]);
}

#[test]
fn guesses_formats() {
    let cases: &[(&str, Format)] = &[
        (
            "# a list\nexample.com\ntracker.example.net\n",
            Format::Domains,
        ),
        ("", Format::Domains),
        ("\u{FEFF}ads.example\n*.x.example\n", Format::Domains),
        ("a.example # why\nb.example\t# why\n", Format::Domains),
        (
            "# hosts mixed with bare names\n0.0.0.0 a.example\nb.example\n",
            Format::Hosts,
        ),
        (
            "##### hosts #####\n# c\n127.0.0.1 localhost\n0.0.0.0 ads.example\n",
            Format::Hosts,
        ),
        (":: v6.example\n::1 localhost\n", Format::Hosts),
        ("[Adblock Plus 2.0]\n||ads.example^\n", Format::Adblock),
        (
            "! Title: list\n! Expires: 1 day\nads.example\n",
            Format::Adblock,
        ),
        (
            "# AdGuard DNS\n||a.example^\n||b.example^\nc.example\n",
            Format::Adblock,
        ),
        ("@@||ok.example^\n", Format::Adblock),
        ("$TTL 300\n@ SOA a. b. 1 2 3 4 5\n", Format::Rpz),
        ("; zone\n$ORIGIN rpz.example.\nads CNAME .\n", Format::Rpz),
        (
            "; zone\n@ IN SOA a. b. (1 2 3 4 5)\nads.com CNAME .\n",
            Format::Rpz,
        ),
        ("ads.com CNAME .\n*.ads.com CNAME .\n", Format::Rpz),
    ];
    for (head, want) in cases {
        assert_eq!(guess_format(head.as_bytes()), *want, "{head:?}");
    }
    // A truncated last line does not count.
    assert_eq!(
        guess_format(b"0.0.0.0 a.com\n0.0.0.0 b.com\nexamp"),
        Format::Hosts
    );
}

#[test]
fn rpz_table() {
    let zone = "\
$TTL 300
$ORIGIN rpz.example.
@ IN SOA localhost. root.localhost. (
        2024010101 ; serial ( not counted )
        3600 600 1209600 300 )
  IN NS localhost.
ads.com CNAME .
*.ads.com CNAME .
nodata.com 300 IN CNAME *.
ok.ads.com IN 1h CNAME rpz-passthru.
drop.com CNAME RPZ-DROP.
tcp.com CNAME rpz-tcp-only.
local.com A 10.0.0.1
redirect.com CNAME walled.garden.example.
abs.com.rpz.example. CNAME .
other.zone. CNAME .
32.1.0.0.127.rpz-ip CNAME .
ns.evil.rpz-nsdname CNAME .
32.1.0.0.10.rpz-nsip CNAME .
32.1.0.0.10.rpz-client-ip CNAME rpz-passthru.
Mixed.Case.COM CNAME .
\tTXT \"local ; data\"
\tCNAME *.
bad..name CNAME .
foo.com CNAME
foo.com BOGUS x
$INCLUDE other.zone
legacy.com CNAME legacy.com.
$ORIGIN sub.rpz.example.
x CNAME .
@ CNAME .
$ORIGIN rpz.example.
multi.com ( CNAME
  . ) ; comment
@ TXT \"apex data is ignored\"
bücher.example CNAME .
";
    let (e, s) = (MatchKind::Exact, MatchKind::Subdomains);
    check(
        Format::Rpz,
        zone,
        &[
            ("ads.com", e, Action::Nxdomain, 7),
            ("ads.com", s, Action::Nxdomain, 8),
            ("nodata.com", e, Action::Nodata, 9),
            ("ok.ads.com", e, Action::Allow, 10),
            ("drop.com", e, Action::Nxdomain, 11),
            ("abs.com", e, Action::Nxdomain, 15),
            ("mixed.case.com", e, Action::Nxdomain, 21),
            ("mixed.case.com", e, Action::Nodata, 23),
            ("legacy.com", e, Action::Allow, 28),
            ("x.sub", e, Action::Nxdomain, 30),
            ("sub", e, Action::Nxdomain, 31),
            ("multi.com", e, Action::Nxdomain, 33),
            ("xn--bcher-kva.example", e, Action::Nxdomain, 36),
        ],
        &[
            (12, "rpz_unsupported_action"),
            (13, "rpz_unsupported_action"),
            (14, "rpz_unsupported_action"),
            (16, "rpz_syntax"),
            (17, "rpz_unsupported_trigger"),
            (18, "rpz_unsupported_trigger"),
            (19, "rpz_unsupported_trigger"),
            (20, "rpz_unsupported_trigger"),
            (22, "rpz_unsupported_action"),
            (24, "invalid_name_bad_label"),
            (25, "rpz_syntax"),
            (26, "rpz_syntax"),
            (27, "rpz_syntax"),
        ],
    );
}

#[test]
fn rpz_without_origin_and_broken_syntax() {
    let (e, n) = (MatchKind::Exact, Action::Nxdomain);
    // No $ORIGIN, no SOA: relative names are their own triggers, absolute ones too.
    check(
        Format::Rpz,
        "a.com CNAME .\nb.com. CNAME .\n\tCNAME *.\n",
        &[
            ("a.com", e, n, 1),
            ("b.com", e, n, 2),
            ("b.com", e, Action::Nodata, 3),
        ],
        &[],
    );
    // The SOA owner is the apex when there is no $ORIGIN (zone transfer output).
    check(
        Format::Rpz,
        "rpz.example. 60 IN SOA a. b. 1 2 3 4 5\nc.com.rpz.example. 60 IN CNAME .\nd.com. CNAME .\n",
        &[("c.com", e, n, 2)],
        &[(3, "rpz_syntax")],
    );
    // Blank owner before any record, stray ')', and a '(' never closed.
    check(
        Format::Rpz,
        "  CNAME .\nx.com CNAME . )\nok.com CNAME .\ny.com ( CNAME\n.\n",
        &[("ok.com", e, n, 3)],
        &[(1, "rpz_syntax"), (2, "rpz_syntax"), (4, "rpz_syntax")],
    );
}

#[test]
fn rpz_crlf_bom_comments() {
    let zone = "\u{FEFF}$ORIGIN rpz.example.\r\n; comment\r\n\r\n@ SOA a. b. ( 1 2\r\n 3 4 5 )\r\na.com CNAME . ; c\r\n";
    let (rules, report) = rules_of(Format::Rpz, zone.as_bytes());
    let got: Vec<_> = rules.iter().map(|r| (r.0.as_str(), r.3)).collect();
    assert_eq!(got, [("a.com", 6)]);
    assert_eq!(report.lines, 6);
    assert_eq!(report.skipped_total(), 0);
}

#[test]
fn one_million_domain_lines() {
    let mut input = Vec::with_capacity(30_000_000);
    for i in 0..1_000_000u32 {
        input.extend_from_slice(format!("host{i}.example{}.com\n", i % 97).as_bytes());
    }
    let mut count = 0u64;
    let mut owned = 0u64;
    let result = parse(Format::Domains, &input[..], |r| {
        count += 1;
        owned += u64::from(matches!(r.name, Cow::Owned(_)));
    });
    let Ok(report) = result else {
        panic!("in-memory parse failed")
    };
    assert_eq!(
        (report.rules, report.lines, count),
        (1_000_000, 1_000_000, 1_000_000)
    );
    assert_eq!(
        owned, 0,
        "canonical names must be borrowed from the line buffer"
    );
}

/// Fragments that steer random input into every parser's interesting paths.
const FRAGMENTS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"#",
    b";",
    b"(",
    b")",
    b"\"",
    b"\\",
    b"!",
    b"$",
    b",",
    b"@",
    b"$ORIGIN ",
    b"$TTL 60",
    b"rpz.example.",
    b"@",
    b"SOA",
    b"NS",
    b"IN",
    b"CNAME",
    b".",
    b"*.",
    b"rpz-passthru.",
    b"rpz-ip",
    b"TXT",
    b"0.0.0.0",
    b"::1",
    b"||",
    b"@@",
    b"^",
    b"$important",
    b"third-party",
    b"##",
    b"#@#",
    b"/",
    b"*",
    b"a.com",
    b"xn--",
    b"\xc3\xbc",
    b"\xff",
    b"\xEF\xBB\xBF",
    b"-",
    b"localhost",
    b"[Adblock Plus 2.0]",
    b"|",
];

fn fragment_soup() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..200),
        prop::option::of(0usize..200),
    )
        .prop_map(|(parts, long_at)| {
            let mut out = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                if long_at == Some(i) {
                    out.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES + 3));
                }
                out.extend_from_slice(p);
            }
            out
        })
}

fn check_invariants(input: &[u8]) -> Result<(), TestCaseError> {
    for format in ALL_FORMATS {
        let mut rules = 0u64;
        let mut bad = None;
        let result = parse(format, input, |r| {
            rules += 1;
            if name::validate(&r.name).is_err() || r.line == 0 {
                bad = Some(r.name.into_owned());
            }
        });
        let report = match result {
            Ok(report) => report,
            Err(e) => return Err(TestCaseError::fail(format!("{}: {e}", format.as_str()))),
        };
        prop_assert_eq!(bad, None);
        prop_assert_eq!(report.rules, rules);
        prop_assert!(report.first_skipped.len() as u64 <= report.skipped_total().min(20));
        let newlines = input.iter().filter(|&&b| b == b'\n').count() as u64;
        prop_assert!(report.lines <= newlines + 1);
        let _ = guess_format(input);
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_or_fail(input in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_invariants(&input)?;
    }

    #[test]
    fn fragment_soup_never_panics_or_fails(input in fragment_soup()) {
        check_invariants(&input)?;
    }
}
