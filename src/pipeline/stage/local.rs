//! Locally served zones: the reverse zones of private and special address ranges (RFC 6303
//! section 4, and 100.64/10 from RFC 7793), the special-use names `localhost.` (RFC 6761),
//! `invalid.` (RFC 6761), `local.` (mDNS, RFC 6762), `home.arpa.` (RFC 8375) and `internal.`
//! (ICANN's private-use name), and A / AAAA queries for single-label names. They are answered
//! here and never forwarded: an upstream (an ISP, a public resolver) would learn the internal
//! network's addresses and names, and the public DNS has nothing for them anyway.
//!
//! Each zone is an empty zone as RFC 6303 section 3 writes it: its apex holds a SOA
//! (`@ nobody.invalid. 1 3600 1200 604800 10800`, TTL 10800) and an NS (`@`); any other name in it
//! is NXDOMAIN with the SOA in authority, another type at the apex NODATA with the SOA.
//! `localhost.` and every name below it have A 127.0.0.1 and AAAA ::1 (RFC 6761 section 6.3).
//! A single-label name (`printer.`, `wpad.`) is NXDOMAIN for A and AAAA only (dotless names are
//! not allowed in the public DNS), with a SOA at the name; other types (`com. NS`, `DS`, `SOA`)
//! and the root go on to the upstream.
//!
//! `c.f.ip6.arpa` (fc00::/8, the centrally assigned half of fc00::/7) is not served: RFC 6303
//! lists only `d.f.ip6.arpa` (fd00::/8, locally assigned), since the central half may one day be
//! delegated, and no network uses it today.
//!
//! Cost: the stage runs on every query on the UDP fast path. With both `[local]` switches off it
//! is one test of a flag; otherwise one comparison of the last label settles every name outside
//! `arpa.` and the special-use top-level names, and a name in `arpa.` costs a binary search of
//! [`ARPA`] per label boundary. No allocation.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::config::LocalConfig;
use crate::outcome::Outcome;
use crate::pipeline::chain::{Cx, Flow, Step};
use crate::pipeline::done::{Done, policy_verdict};
use crate::respond::{Answer, Local, LocalRecords};

/// What a locally served name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A reverse zone of a private or special range (`[local] private_reverse`).
    Reverse,
    /// A special-use name (`[local] special_names`): an empty zone.
    Special,
    /// `localhost.` (RFC 6761): loopback addresses at the apex and below it.
    Localhost,
    /// A single-label name asked for A or AAAA (part of `[local] special_names`).
    SingleLabel,
}

/// The locally served zone a name is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalZone<'n> {
    /// The apex, lower case, without the trailing dot (a suffix of the name).
    pub apex: &'n str,
    /// What it is.
    pub kind: Kind,
    /// The document that reserves it, for explain.
    pub rfc: &'static str,
}

/// The zones under `arpa.`, sorted by their bytes (binary search; a unit test keeps it sorted):
/// the reverse zones of RFC 6303 section 4 and RFC 7793, and `home.arpa` (RFC 8375).
const ARPA: &[&str] = &[
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    "0.in-addr.arpa",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
    "10.in-addr.arpa",
    "100.100.in-addr.arpa",
    "100.51.198.in-addr.arpa",
    "101.100.in-addr.arpa",
    "102.100.in-addr.arpa",
    "103.100.in-addr.arpa",
    "104.100.in-addr.arpa",
    "105.100.in-addr.arpa",
    "106.100.in-addr.arpa",
    "107.100.in-addr.arpa",
    "108.100.in-addr.arpa",
    "109.100.in-addr.arpa",
    "110.100.in-addr.arpa",
    "111.100.in-addr.arpa",
    "112.100.in-addr.arpa",
    "113.0.203.in-addr.arpa",
    "113.100.in-addr.arpa",
    "114.100.in-addr.arpa",
    "115.100.in-addr.arpa",
    "116.100.in-addr.arpa",
    "117.100.in-addr.arpa",
    "118.100.in-addr.arpa",
    "119.100.in-addr.arpa",
    "120.100.in-addr.arpa",
    "121.100.in-addr.arpa",
    "122.100.in-addr.arpa",
    "123.100.in-addr.arpa",
    "124.100.in-addr.arpa",
    "125.100.in-addr.arpa",
    "126.100.in-addr.arpa",
    "127.100.in-addr.arpa",
    "127.in-addr.arpa",
    "16.172.in-addr.arpa",
    "168.192.in-addr.arpa",
    "17.172.in-addr.arpa",
    "18.172.in-addr.arpa",
    "19.172.in-addr.arpa",
    "2.0.192.in-addr.arpa",
    "20.172.in-addr.arpa",
    "21.172.in-addr.arpa",
    "22.172.in-addr.arpa",
    "23.172.in-addr.arpa",
    "24.172.in-addr.arpa",
    "25.172.in-addr.arpa",
    "254.169.in-addr.arpa",
    "255.255.255.255.in-addr.arpa",
    "26.172.in-addr.arpa",
    "27.172.in-addr.arpa",
    "28.172.in-addr.arpa",
    "29.172.in-addr.arpa",
    "30.172.in-addr.arpa",
    "31.172.in-addr.arpa",
    "64.100.in-addr.arpa",
    "65.100.in-addr.arpa",
    "66.100.in-addr.arpa",
    "67.100.in-addr.arpa",
    "68.100.in-addr.arpa",
    "69.100.in-addr.arpa",
    "70.100.in-addr.arpa",
    "71.100.in-addr.arpa",
    "72.100.in-addr.arpa",
    "73.100.in-addr.arpa",
    "74.100.in-addr.arpa",
    "75.100.in-addr.arpa",
    "76.100.in-addr.arpa",
    "77.100.in-addr.arpa",
    "78.100.in-addr.arpa",
    "79.100.in-addr.arpa",
    "8.b.d.0.1.0.0.2.ip6.arpa",
    "8.e.f.ip6.arpa",
    "80.100.in-addr.arpa",
    "81.100.in-addr.arpa",
    "82.100.in-addr.arpa",
    "83.100.in-addr.arpa",
    "84.100.in-addr.arpa",
    "85.100.in-addr.arpa",
    "86.100.in-addr.arpa",
    "87.100.in-addr.arpa",
    "88.100.in-addr.arpa",
    "89.100.in-addr.arpa",
    "9.e.f.ip6.arpa",
    "90.100.in-addr.arpa",
    "91.100.in-addr.arpa",
    "92.100.in-addr.arpa",
    "93.100.in-addr.arpa",
    "94.100.in-addr.arpa",
    "95.100.in-addr.arpa",
    "96.100.in-addr.arpa",
    "97.100.in-addr.arpa",
    "98.100.in-addr.arpa",
    "99.100.in-addr.arpa",
    "a.e.f.ip6.arpa",
    "b.e.f.ip6.arpa",
    "d.f.ip6.arpa",
    "home.arpa",
];

/// The length of the longest name in [`ARPA`] (the zone of `::1`); a unit test checks it.
const LONGEST: usize = 72;

/// The locally served zone holding `name` (lower case, no trailing dot, "" for the root) asked
/// for `qtype`, with the switches of `cfg`.
pub fn zone_of(name: &str, qtype: RecordType, cfg: LocalConfig) -> Option<LocalZone<'_>> {
    let special = cfg.special_names;
    // The last label: one backward scan for a dot (an ASCII byte, so `at` is a char boundary).
    let at = name.bytes().rposition(|b| b == b'.').map_or(0, |i| i + 1);
    // A special-use top-level name is its own zone's apex.
    let tld = &name[at..];
    let apex = tld;
    let zone = |kind, rfc| Some(LocalZone { apex, kind, rfc });
    let found = match tld {
        "arpa" => arpa_zone(name, cfg),
        "localhost" if special => zone(Kind::Localhost, "RFC 6761"),
        "invalid" if special => zone(Kind::Special, "RFC 6761"),
        "local" if special => zone(Kind::Special, "RFC 6762"),
        "internal" if special => zone(Kind::Special, "ICANN private use"),
        _ => None,
    };
    let single_label = special
        && !name.is_empty()
        && apex.len() == name.len()
        && matches!(qtype, RecordType::A | RecordType::AAAA);
    match found {
        None if single_label => zone(Kind::SingleLabel, "no dotless names in the public DNS"),
        found => found,
    }
}

/// A zone under `arpa.`: the name's suffixes at each label boundary, shortest first (a reverse
/// name has up to 34 labels; its zone is found in at most 10), looked up in [`ARPA`].
fn arpa_zone(name: &str, cfg: LocalConfig) -> Option<LocalZone<'_>> {
    let starts = name.rmatch_indices('.').map(|(i, _)| i + 1);
    for at in starts.chain(std::iter::once(0)) {
        let suffix = &name[at..];
        if suffix.len() > LONGEST {
            return None;
        }
        if ARPA.binary_search(&suffix).is_err() {
            continue;
        }
        let (kind, rfc, on) = if suffix == "home.arpa" {
            (Kind::Special, "RFC 8375", cfg.special_names)
        } else if suffix.ends_with(".100.in-addr.arpa") {
            (Kind::Reverse, "RFC 7793", cfg.private_reverse)
        } else {
            (Kind::Reverse, "RFC 6303", cfg.private_reverse)
        };
        // The zones do not nest (a unit test checks it): the first one found is the only one.
        return on.then_some(LocalZone {
            apex: suffix,
            kind,
            rfc,
        });
    }
    None
}

/// The answer `zone` gives for `name` / `qtype`.
pub fn answer(name: &str, qtype: RecordType, zone: &LocalZone<'_>) -> Local {
    let labels = |s: &str| s.split('.').count();
    let at_apex = name.len() == zone.apex.len();
    let any = qtype == RecordType::ANY;
    let loopback = zone.kind == Kind::Localhost;
    let records = LocalRecords {
        soa: at_apex && (any || qtype == RecordType::SOA),
        ns: at_apex && (any || qtype == RecordType::NS),
        a: loopback && (any || qtype == RecordType::A),
        aaaa: loopback && (any || qtype == RecordType::AAAA),
    };
    let exists = (at_apex || loopback) && zone.kind != Kind::SingleLabel;
    Local {
        rcode: if exists {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        },
        apex_labels: labels(zone.apex),
        records,
    }
}

/// Whether a forward rule covers the query name: such a rule wins over a locally served zone
/// (the domain controllers hold `10.in-addr.arpa`). Only asked for a name in a locally served
/// zone, so it costs nothing on other queries.
fn forwarded_by_rule(cx: &Cx<'_>) -> bool {
    cx.snap.forwards.covers(cx.q.name)
}

/// The locally served zone of the query, whatever the forward rules say (`None` when both
/// switches are off: one test of a flag).
fn find<'a>(cx: &Cx<'a>) -> Option<LocalZone<'a>> {
    let cfg = cx.snap.config.local;
    // IN only: another class (CH, HS) names something else.
    if !cfg.any() || cx.q.qclass != 1 {
        return None;
    }
    zone_of(cx.q.name, RecordType::from(cx.q.qtype), cfg)
}

/// Whether this stage will answer the query (for the trace of the stages before it).
pub fn serves(cx: &Cx<'_>) -> bool {
    find(cx).is_some() && !forwarded_by_rule(cx)
}

/// Answers a locally served name.
pub fn run<'a>(cx: &Cx<'a>) -> Flow<'a> {
    let Some(zone) = find(cx) else {
        return Flow::Continue;
    };
    let (name, qtype) = (cx.q.name, RecordType::from(cx.q.qtype));
    if forwarded_by_rule(cx) {
        cx.note(Step::Local, || {
            format!(
                "{} is in the locally served zone {} ({}), but a forward rule covers it: forwarded",
                name, zone.apex, zone.rfc
            )
        });
        return Flow::Continue;
    }
    let what = match zone.kind {
        Kind::SingleLabel => format!(
            "single-label name {} ({}): A / AAAA answered locally, never forwarded",
            zone.apex, zone.rfc
        ),
        _ => format!(
            "locally served zone {} ({}), never forwarded",
            zone.apex, zone.rfc
        ),
    };
    let local = answer(name, qtype, &zone);
    cx.detail(|t| {
        t.line(Step::Local.name(), what.clone());
        t.set(
            "local",
            serde_json::json!({ "zone": zone.apex, "kind": kind_name(zone.kind), "source": zone.rfc }),
        );
        t.set(
            "decision",
            serde_json::json!({ "kind": "local", "reason": what }),
        );
    });
    Flow::Answer(
        Done::new(Answer::Local(local), Outcome::Local).because(policy_verdict(&cx.policy)),
    )
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Reverse => "private_reverse",
        Kind::Special | Kind::Localhost => "special_name",
        Kind::SingleLabel => "single_label",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: LocalConfig = LocalConfig {
        private_reverse: true,
        special_names: true,
    };

    fn apex(name: &str, qtype: RecordType, cfg: LocalConfig) -> Option<&str> {
        zone_of(name, qtype, cfg).map(|z| z.apex)
    }

    #[test]
    fn the_table_is_sorted_and_unique() {
        assert!(ARPA.windows(2).all(|w| w[0] < w[1]), "ARPA must be sorted");
        assert_eq!(ARPA.iter().map(|z| z.len()).max(), Some(LONGEST));
        for a in ARPA {
            let nested = ARPA
                .iter()
                .filter(|b| a != *b && a.ends_with(&format!(".{b}")))
                .collect::<Vec<_>>();
            assert!(nested.is_empty(), "{a} nests in {nested:?}");
        }
        assert_eq!(
            ARPA.iter()
                .filter(|z| z.ends_with(".172.in-addr.arpa"))
                .count(),
            16
        );
        assert_eq!(
            ARPA.iter()
                .filter(|z| z.ends_with(".100.in-addr.arpa"))
                .count(),
            64
        );
    }

    #[test]
    fn names_match_at_label_boundaries_only() {
        use RecordType::*;
        assert_eq!(
            apex("7.3.20.10.in-addr.arpa", PTR, ON),
            Some("10.in-addr.arpa")
        );
        assert_eq!(apex("10.in-addr.arpa", SOA, ON), Some("10.in-addr.arpa"));
        assert_eq!(apex("110.in-addr.arpa", SOA, ON), None);
        assert_eq!(
            apex("1.0.20.172.in-addr.arpa", PTR, ON),
            Some("20.172.in-addr.arpa")
        );
        assert_eq!(apex("1.0.32.172.in-addr.arpa", PTR, ON), None);
        assert_eq!(
            apex("1.0.64.100.in-addr.arpa", PTR, ON),
            Some("64.100.in-addr.arpa")
        );
        assert_eq!(apex("1.0.128.100.in-addr.arpa", PTR, ON), None);
        assert_eq!(apex("8.8.8.8.in-addr.arpa", PTR, ON), None);
        assert_eq!(apex("1.0.0.0.d.f.ip6.arpa", PTR, ON), Some("d.f.ip6.arpa"));
        assert_eq!(apex("1.0.0.0.c.f.ip6.arpa", PTR, ON), None);
        assert_eq!(apex("0.8.e.f.ip6.arpa", PTR, ON), Some("8.e.f.ip6.arpa"));
        assert_eq!(apex("0.c.e.f.ip6.arpa", PTR, ON), None);
        assert_eq!(apex("x.home.arpa", A, ON), Some("home.arpa"));
        assert_eq!(apex("x.myhome.arpa", A, ON), None);
        assert_eq!(apex("arpa", A, ON), Some("arpa"), "single-label A");
        assert_eq!(apex("arpa", NS, ON), None);
        assert_eq!(apex("a.b.localhost", MX, ON), Some("localhost"));
        assert_eq!(apex("printer.local", A, ON), Some("local"));
        assert_eq!(apex("x.internal", TXT, ON), Some("internal"));
        assert_eq!(apex("x.invalid", A, ON), Some("invalid"));
        assert_eq!(apex("printer", AAAA, ON), Some("printer"));
        assert_eq!(apex("printer", TXT, ON), None);
        assert_eq!(apex("", A, ON), None, "the root is forwarded");
        assert_eq!(apex("www.example.com", A, ON), None);
        assert_eq!(apex("x.test", A, ON), None, "test. is forwarded");
        assert_eq!(apex("notlocal", MX, ON), None);
    }

    #[test]
    fn each_switch_turns_off_its_own_names() {
        use RecordType::*;
        let reverse_only = LocalConfig {
            private_reverse: true,
            special_names: false,
        };
        let special_only = LocalConfig {
            private_reverse: false,
            special_names: true,
        };
        assert_eq!(
            apex("1.10.in-addr.arpa", PTR, reverse_only),
            Some("10.in-addr.arpa")
        );
        assert_eq!(apex("x.home.arpa", A, reverse_only), None);
        assert_eq!(apex("localhost", A, reverse_only), None);
        assert_eq!(apex("printer", A, reverse_only), None);
        assert_eq!(apex("1.10.in-addr.arpa", PTR, special_only), None);
        assert_eq!(apex("x.home.arpa", A, special_only), Some("home.arpa"));
    }

    #[test]
    fn answers_follow_rfc_6303_and_rfc_6761() {
        use RecordType::*;
        let z = |n: &'static str, t| zone_of(n, t, ON).unwrap();
        let below = answer("1.10.in-addr.arpa", PTR, &z("1.10.in-addr.arpa", PTR));
        assert_eq!(below.rcode, ResponseCode::NXDomain);
        assert_eq!(below.records.count(), 0);
        assert_eq!(below.apex_labels, 3);
        let soa = answer("10.in-addr.arpa", SOA, &z("10.in-addr.arpa", SOA));
        assert_eq!(
            (soa.rcode, soa.records.soa, soa.records.count()),
            (ResponseCode::NoError, true, 1)
        );
        let nodata = answer("10.in-addr.arpa", TXT, &z("10.in-addr.arpa", TXT));
        assert_eq!(
            (nodata.rcode, nodata.records.count()),
            (ResponseCode::NoError, 0)
        );
        let lh = answer("a.localhost", AAAA, &z("a.localhost", AAAA));
        assert_eq!(
            (lh.rcode, lh.records.aaaa, lh.records.count()),
            (ResponseCode::NoError, true, 1)
        );
        let lh_mx = answer("localhost", MX, &z("localhost", MX));
        assert_eq!(
            (lh_mx.rcode, lh_mx.records.count()),
            (ResponseCode::NoError, 0)
        );
        let single = answer("printer", A, &z("printer", A));
        assert_eq!(
            (single.rcode, single.apex_labels),
            (ResponseCode::NXDomain, 1)
        );
    }
}
