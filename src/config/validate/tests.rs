//! Unit tests of validation: locations, sizes, networks, the admin and query-log sections,
//! resolv.conf reading, and a fuzz pass over the whole loader.

use std::net::SocketAddr;
use std::path::Path;

use super::super::raw::RawSize;
use super::super::{ClientMode, Overrides, RecordMode};
use super::query_log::parse_size;
use super::zones::parse_net;
use super::{line_col, resolv_conf_nameservers, validate};

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
}

#[test]
fn sizes() {
    let t = |s: &str| parse_size(&RawSize::Text(s.into()));
    assert_eq!(t("100MB"), Some(100_000_000));
    assert_eq!(t("64MiB"), Some(64 << 20));
    assert_eq!(t("1 gb"), Some(1_000_000_000));
    assert_eq!(t("4096"), Some(4096));
    assert_eq!(t("12 parsecs"), None);
    assert_eq!(t("MB"), None);
    assert_eq!(parse_size(&RawSize::Bytes(5)), Some(5));
}

#[test]
fn local_section_defaults_on_and_points_at_bad_values() {
    let ok = |t: &str| validate(t, "t.toml", Path::new("/etc/pg"), &Overrides::default());
    let head = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n";
    let c = ok(head).unwrap();
    assert!(c.local.private_reverse && c.local.special_names);
    let c = ok(&format!("{head}[local]\nspecial_names = false\n")).unwrap();
    assert!(c.local.private_reverse && !c.local.special_names);
    let e = ok(&format!("{head}[local]\nprivate_reverse = \"no\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t.toml:6:19: invalid type"), "{e}");
    let e = ok(&format!("{head}[local]\nspecial_name = false\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml:6:1: unknown field `special_name`"),
        "{e}"
    );
    assert!(
        e.contains("private_reverse") && e.contains("special_names"),
        "{e}"
    );
}

#[test]
fn admin_and_query_log_sections() {
    let base = Path::new("/etc/pg");
    let ok = |t: &str| validate(t, "t.toml", base, &Overrides::default());
    let head = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n";
    let c = ok(head).unwrap();
    assert_eq!(c.admin.listen, "127.0.0.1:9153".parse().ok());
    assert!(c.admin.trust_loopback && c.admin.token.is_none());
    assert!(c.query_log.is_none());
    let c = ok(&format!("{head}[admin]\nlisten = \"\"\n")).unwrap();
    assert_eq!(c.admin.listen, None);
    let c = ok(&format!(
        "{head}[query_log]\npath = \"q.jsonl\"\nmax_size = \"1MiB\"\n[zones.z]\nnetworks = [\"10.0.0.0/8\"]\nquery_log = \"all\"\nquery_log_client = \"masked\"\n"
    ))
    .unwrap();
    let q = c.query_log.unwrap();
    assert_eq!(q.path, Path::new("/etc/pg/q.jsonl"));
    assert_eq!(
        q.key_file,
        Path::new(super::super::DEFAULT_STATE_DIR).join("query-log.key")
    );
    assert_eq!(
        (q.record, q.client, q.max_size),
        (RecordMode::Policy, ClientMode::Hash, 1 << 20)
    );
    assert_eq!(c.zones[0].query_log, Some(RecordMode::All));
    assert_eq!(c.zones[0].query_log_client, Some(ClientMode::Masked));
    let e = ok(&format!(
        "{head}[admin]\nlisten = \"nowhere\"\ntoken = \"short\"\n[query_log]\npath = \"q\"\nrecord = \"most\"\nclient = \"ip\"\nkey = \"k\"\n"
    ))
    .unwrap_err()
    .to_string();
    for want in [
        "t.toml:6:10: admin.listen",
        "t.toml:7:9: admin.token",
        "t.toml:10:10: query_log.record",
        "t.toml:11:10: query_log.client",
        "t.toml:12:7: query_log.key",
    ] {
        assert!(e.contains(want), "{want} in:\n{e}");
    }
    let c = ok(&format!(
        "{head}[admin]\ntoken = \"admin-token-0123456789\"\nread_token = \"read-token-0123456789\"\nprometheus = \"http://prom:9090\"\n"
    ))
    .unwrap();
    assert!(c.admin.read_token.is_some());
    assert_eq!(c.admin.prometheus.unwrap().as_str(), "http://prom:9090/");
    let e = ok(&format!(
        "{head}[admin]\ntoken = \"admin-token-0123456789\"\nread_token = \"admin-token-0123456789\"\nprometheus = \"prom:9090\"\n"
    ))
    .unwrap_err()
    .to_string();
    for want in [
        "t.toml:7:14: admin.read_token",
        "t.toml:8:14: admin.prometheus",
    ] {
        assert!(e.contains(want), "{want} in:\n{e}");
    }
    let e = ok(&format!(
        "{head}[zones.z]\nnetworks = [\"10.0.0.0/8\"]\nquery_log = \"all\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("t.toml:7:13: zones.z.query_log: there is no [query_log]"),
        "{e}"
    );
    let e = ok(&format!(
        "{head}[zones.none]\nnetworks = [\"10.0.0.0/8\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("zones.none: the zone name \"none\" is reserved"),
        "{e}"
    );
    let e = ok(&format!("{head}[query_log]\npath = \"q\"\nrotate = 1\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.toml:7:1") && e.contains("rotate"), "{e}");
}

#[test]
fn nets() {
    assert_eq!(parse_net("10.20.0.0/16"), "10.20.0.0/16".parse().ok());
    assert_eq!(parse_net("10.20.0.0/33"), None);
    assert_eq!(parse_net("10.20.3.0/16"), None);
    assert_eq!(parse_net("10.1.2.3"), "10.1.2.3/32".parse().ok());
    assert_eq!(parse_net("fd00::/8"), "fd00::/8".parse().ok());
}

#[test]
fn resolv_conf_skips_self() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("resolv.conf");
    std::fs::write(
        &p,
        "# c\nnameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch x\n",
    )
    .unwrap();
    let own: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().unwrap()];
    let got = resolv_conf_nameservers(&p, &own);
    assert_eq!(
        got,
        vec![
            "192.0.2.53:53".parse().unwrap(),
            "[fe80::1]:53".parse().unwrap()
        ]
    );
    let got = resolv_conf_nameservers(&p, &["127.0.0.1:5353".parse().unwrap()]);
    assert_eq!(got.len(), 3);
}

/// Every duration and size past its bound is an error at its value, quoting what the file says;
/// at the bound it is accepted; every default is within its bound.
#[test]
fn durations_and_sizes_are_bounded() {
    let base = Path::new("/etc/pg");
    let load = |t: &str| validate(t, "t.toml", base, &Overrides::default());
    let head = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n";
    let e = load(&format!("{head}timeout = \"400000000000y\"\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "t.toml:5:11: upstream.timeout: at most 1m, got 400000000000y"
    );
    let c = load(&format!("{head}timeout = \"1m\"\n")).unwrap();
    assert_eq!(c.upstream.timeout, std::time::Duration::from_secs(60));
    // One key of each section (the section header, the key and its value, the expected message).
    for (section, line, want) in [
        (
            "[server]",
            "tcp_idle_timeout = \"2h\"",
            "server.tcp_idle_timeout: at most 1h, got 2h",
        ),
        (
            "[server]",
            "workers = 100000",
            "server.workers: at most 1024, got 100000",
        ),
        (
            "[server]",
            "udp_sockets = 5000",
            "server.udp_sockets: at most 1024, got 5000",
        ),
        (
            "[server]",
            "tcp_max_connections = 9999999999",
            "server.tcp_max_connections: at most 1000000, got 9999999999",
        ),
        (
            "[server]",
            "tcp_max_connections_per_client = 70000",
            "server.tcp_max_connections_per_client: at most 65536, got 70000",
        ),
        (
            "[upstream]",
            "deadline = \"1h\"",
            "upstream.deadline: at most 5m, got 1h",
        ),
        (
            "[upstream]",
            "max_inflight = 2000000",
            "upstream.max_inflight: at most 1000000, got 2000000",
        ),
        (
            "[cache]",
            "max_entries = 1000000000",
            "cache.max_entries: at most 100000000, got 1000000000",
        ),
        (
            "[cache]",
            "max_size = \"128GiB\"",
            "cache.max_size: at most 64GiB, got 128GiB",
        ),
        (
            "[cache]",
            "max_size = \"1k\"",
            "cache.max_size: expected a size of at least 65536 bytes, e.g. 67108864, \"64MiB\" or \"1GB\"; got 1k",
        ),
        (
            "[cache]",
            "min_ttl = \"2d\"",
            "cache.min_ttl: at most 1d, got 2d",
        ),
        (
            "[cache]",
            "max_ttl = \"8d\"",
            "cache.max_ttl: at most 7d, got 8d",
        ),
        (
            "[cache]",
            "negative_max_ttl = \"25h\"",
            "cache.negative_max_ttl: at most 1d, got 25h",
        ),
        (
            "[cache]",
            "servfail_ttl = \"6s\"",
            "cache.servfail_ttl: at most 5s, got 6s",
        ),
        (
            "[cache]",
            "serve_stale = \"1y\"",
            "cache.serve_stale: at most 7d, got 1y",
        ),
        (
            "[lists.r]\nsource = \"https://lists.example/l.txt\"",
            "refresh = \"31d\"",
            "lists.r.refresh: at most 30d, got 31d",
        ),
        (
            "[lists.r]\nsource = \"https://lists.example/l.txt\"",
            "timeout = \"1h\"",
            "lists.r.timeout: at most 30m, got 1h",
        ),
        (
            "[lists.r]\nsource = \"https://lists.example/l.txt\"",
            "max_size = 2147483648",
            "lists.r.max_size: at most 1073741824 (1 GiB), got 2147483648",
        ),
        (
            "[zones.z]\nnetworks = [\"10.0.0.0/8\"]",
            "block_ttl = \"2d\"",
            "zones.z.block_ttl: at most 1d, got 2d",
        ),
        (
            "[query_log]\npath = \"q\"\nkey = \"0123456789abcdef\"",
            "max_size = \"65GiB\"",
            "query_log.max_size: at most 64GiB, got 65GiB",
        ),
        (
            "[query_log]\npath = \"q\"\nkey = \"0123456789abcdef\"",
            "keep = 1001",
            "query_log.keep: at most 1000, got 1001",
        ),
        (
            "[query_log]\npath = \"q\"\nkey = \"0123456789abcdef\"",
            "max_age = \"367d\"",
            "query_log.max_age: at most 366d, got 367d",
        ),
        (
            "[query_log]\npath = \"q\"\nkey = \"0123456789abcdef\"",
            "buffer = 1000001",
            "query_log.buffer: at most 1000000, got 1000001",
        ),
    ] {
        // The section goes after `head`, so [server] and [upstream] keys join those tables.
        let text = if section == "[server]" {
            format!(
                "[server]\nlisten = [\"127.0.0.1:53\"]\n{line}\n[upstream]\nservers = [\"127.0.0.1:53\"]\n"
            )
        } else if section == "[upstream]" {
            format!("{head}{line}\n")
        } else {
            format!("{head}{section}\n{line}\n")
        };
        let row = text.lines().position(|l| l == line).unwrap() + 1;
        let col = line.find(" = ").unwrap() + 4;
        let e = load(&text).unwrap_err().to_string();
        assert_eq!(e, format!("t.toml:{row}:{col}: {want}"), "{text}");
    }
    // The defaults are within their bounds: the embedded default and a bare config load, and
    // the bound constants are at least the defaults.
    use super::super as d;
    use super::bounds as b;
    for (default, max) in [
        (d::DEFAULT_TCP_IDLE_TIMEOUT, b::TCP_IDLE_TIMEOUT),
        (d::DEFAULT_UPSTREAM_TIMEOUT, b::UPSTREAM_TIMEOUT),
        (d::DEFAULT_UPSTREAM_DEADLINE, b::UPSTREAM_DEADLINE),
        (d::DEFAULT_CACHE_MAX_TTL, b::CACHE_MAX_TTL),
        (d::DEFAULT_NEGATIVE_MAX_TTL, b::CACHE_NEGATIVE_MAX_TTL),
        (d::DEFAULT_SERVFAIL_TTL, b::CACHE_SERVFAIL_TTL),
        (d::DEFAULT_SERVE_STALE, b::CACHE_SERVE_STALE),
        (d::DEFAULT_LIST_REFRESH, b::LIST_REFRESH),
        (d::DEFAULT_LIST_TIMEOUT, b::LIST_TIMEOUT),
        (d::DEFAULT_BLOCK_TTL, b::BLOCK_TTL),
        (d::DEFAULT_QUERY_LOG_MAX_AGE, b::QUERY_LOG_MAX_AGE),
    ] {
        assert!(default <= max.value, "{default:?} > {}", max.text);
        assert_eq!(humantime::parse_duration(max.text).ok(), Some(max.value));
    }
    for (default, max) in [
        (
            d::DEFAULT_TCP_MAX_CONNECTIONS as u64,
            b::TCP_MAX_CONNECTIONS,
        ),
        (d::DEFAULT_TCP_PER_CLIENT as u64, b::TCP_PER_CLIENT),
        (d::DEFAULT_MAX_INFLIGHT as u64, b::MAX_INFLIGHT),
        (d::DEFAULT_CACHE_ENTRIES as u64, b::CACHE_ENTRIES),
        (d::DEFAULT_LIST_MAX_SIZE, b::LIST_MAX_SIZE),
        (d::DEFAULT_QUERY_LOG_MAX_SIZE, b::QUERY_LOG_MAX_SIZE),
        (d::DEFAULT_QUERY_LOG_KEEP as u64, b::QUERY_LOG_KEEP),
        (d::DEFAULT_QUERY_LOG_BUFFER as u64, b::QUERY_LOG_BUFFER),
    ] {
        assert!(default <= max.value, "{default} > {}", max.text);
    }
    crate::config::Config::embedded(&Overrides::default()).unwrap();
}

mod fuzz {
    use proptest::prelude::*;

    use crate::config::{Config, Overrides};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The config loader on arbitrary text: an error or a config, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = Config::from_str(&text, "fuzz.toml", std::path::Path::new("."), &Overrides::default());
        }

        /// Near-valid configs: real keys with arbitrary values.
        #[test]
        fn real_keys_arbitrary_values_never_panic(listen in "\\PC{0,30}", net in "\\PC{0,30}", resp in "\\PC{0,20}", qps in any::<f64>()) {
            let text = format!(
                "[server]\nlisten = [{listen:?}]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[zones.z]\nnetworks = [{net:?}]\nresponse = {resp:?}\nrate_limit = {{ qps = {qps:?} }}\n"
            );
            let _ = Config::from_str(&text, "fuzz.toml", std::path::Path::new("."), &Overrides::default());
        }

        /// One duration or size key at a time with an arbitrary value (huge numbers, every unit,
        /// negative sizes, garbage): an error or a config, never a panic; an accepted config keeps
        /// every value within its bound, and the time arithmetic done with it cannot overflow.
        #[test]
        fn arbitrary_durations_and_sizes_are_bounded(
            key in 0..KEYS.len(),
            dur in duration_text(),
            size in size_value(),
            qsize in "[0-9]{1,22} ?(b|k|kb|m|mb|g|gb|kib|mib|gib|KiB|GB|parsec)?",
        ) {
            let (section, name, kind) = KEYS[key];
            let value = match kind {
                Kind::Duration => format!("{dur:?}"),
                Kind::Size => size,
                Kind::TextSize => format!("{qsize:?}"),
            };
            let mut text = String::from(BASE);
            let at = text.find(section).unwrap() + section.len();
            text.insert_str(at, &format!("\n{name} = {value}"));
            let got = Config::from_str(&text, "fuzz.toml", std::path::Path::new("."), &Overrides::default());
            if let Ok(c) = got {
                use super::super::bounds::*;
                let b = |x: MaxDuration| x.value;
                prop_assert!(c.server.tcp_idle_timeout <= b(TCP_IDLE_TIMEOUT));
                prop_assert!(c.server.workers as u64 <= WORKERS.value);
                prop_assert!(c.server.udp_sockets as u64 <= UDP_SOCKETS.value);
                prop_assert!(c.server.tcp_max_connections as u64 <= TCP_MAX_CONNECTIONS.value);
                prop_assert!(c.server.tcp_max_connections_per_client as u64 <= TCP_PER_CLIENT.value);
                prop_assert!(c.upstream.timeout <= b(UPSTREAM_TIMEOUT));
                prop_assert!(c.upstream.deadline <= b(UPSTREAM_DEADLINE));
                prop_assert!(c.upstream.max_inflight as u64 <= MAX_INFLIGHT.value);
                prop_assert!(c.cache.max_entries as u64 <= CACHE_ENTRIES.value);
                prop_assert!(c.cache.min_ttl <= b(CACHE_MIN_TTL));
                prop_assert!(c.cache.max_ttl <= b(CACHE_MAX_TTL));
                prop_assert!(c.cache.negative_max_ttl <= b(CACHE_NEGATIVE_MAX_TTL));
                prop_assert!(c.cache.servfail_ttl <= b(CACHE_SERVFAIL_TTL));
                prop_assert!(c.cache.serve_stale <= b(CACHE_SERVE_STALE));
                let f = &c.lists["r"].fetch;
                prop_assert!(f.refresh <= b(LIST_REFRESH));
                prop_assert!(f.timeout <= b(LIST_TIMEOUT));
                prop_assert!(f.max_size <= LIST_MAX_SIZE.value);
                prop_assert!(c.zones[0].block_ttl <= b(BLOCK_TTL));
                let q = c.query_log.as_ref().unwrap();
                prop_assert!(q.max_size <= QUERY_LOG_MAX_SIZE.value);
                prop_assert!(q.keep as u64 <= QUERY_LOG_KEEP.value);
                prop_assert!(q.max_age <= b(QUERY_LOG_MAX_AGE));
                prop_assert!(q.buffer as u64 <= QUERY_LOG_BUFFER.value);
                let now = std::time::Instant::now();
                prop_assert!(now.checked_add(c.upstream.deadline).is_some());
                prop_assert!(now.checked_add(c.cache.serve_stale + c.cache.max_ttl).is_some());
                prop_assert!(f.refresh.checked_mul(2).is_some());
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Kind {
        Duration,
        Size,
        TextSize,
    }

    /// A config with every section; one key at a time is added after its section header.
    const BASE: &str = "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[cache]\n[lists.r]\nsource = \"https://lists.example/l.txt\"\n[zones.z]\nnetworks = [\"10.0.0.0/8\"]\n[query_log]\npath = \"q\"\nkey = \"0123456789abcdef\"\n";

    /// Every duration and size key: (the line it goes after, key, kind).
    const KEYS: &[(&str, &str, Kind)] = &[
        ("[server]", "tcp_idle_timeout", Kind::Duration),
        ("[server]", "workers", Kind::Size),
        ("[server]", "udp_sockets", Kind::Size),
        ("[server]", "tcp_max_connections", Kind::Size),
        ("[server]", "tcp_max_connections_per_client", Kind::Size),
        ("[upstream]", "timeout", Kind::Duration),
        ("[upstream]", "deadline", Kind::Duration),
        ("[upstream]", "max_inflight", Kind::Size),
        ("[cache]", "max_entries", Kind::Size),
        ("[cache]", "max_size", Kind::TextSize),
        ("[cache]", "max_size", Kind::Size),
        ("[cache]", "min_ttl", Kind::Duration),
        ("[cache]", "max_ttl", Kind::Duration),
        ("[cache]", "negative_max_ttl", Kind::Duration),
        ("[cache]", "servfail_ttl", Kind::Duration),
        ("[cache]", "serve_stale", Kind::Duration),
        ("[lists.r]", "refresh", Kind::Duration),
        ("[lists.r]", "timeout", Kind::Duration),
        ("[lists.r]", "max_size", Kind::Size),
        ("[zones.z]", "block_ttl", Kind::Duration),
        ("[query_log]", "max_size", Kind::TextSize),
        ("[query_log]", "max_size", Kind::Size),
        ("[query_log]", "keep", Kind::Size),
        ("[query_log]", "max_age", Kind::Duration),
        ("[query_log]", "buffer", Kind::Size),
    ];

    /// A duration as a user might write it: small and huge numbers, every humantime unit, several
    /// parts, and some garbage.
    fn duration_text() -> impl Strategy<Value = String> {
        let unit = prop_oneof![
            Just("ns"),
            Just("us"),
            Just("ms"),
            Just("s"),
            Just("m"),
            Just("min"),
            Just("h"),
            Just("d"),
            Just("w"),
            Just("M"),
            Just("y"),
            Just("years"),
            Just(""),
            Just("parsec"),
        ];
        let part = (prop_oneof![0u64..100, 0u64..100_000, any::<u64>()], unit)
            .prop_map(|(n, u)| format!("{n}{u}"));
        prop::collection::vec(part, 1..3).prop_map(|p| p.join(" "))
    }

    /// A size or count as a TOML value: small, near the bounds, huge, negative.
    fn size_value() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..5000).prop_map(|n| n.to_string()),
            (0u64..2_000_000).prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
        ]
    }
}

#[test]
fn trusted_proxies_and_forwarders() {
    let base = Path::new("/");
    let load = |t: &str| validate(t, "t.toml", base, &Overrides::default());
    let text = |lines: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n{lines}\n[upstream]\nservers = [\"127.0.0.1:53\"]\n"
        )
    };
    // Absent: empty lists (an existing config keeps working).
    let c = load(&text("")).unwrap();
    assert!(c.server.proxy_protocol.is_empty() && c.server.client_subnet_from.is_empty());
    // Bare addresses are /32 and /128; one network may be in both lists.
    let c = load(&text(
        "proxy_protocol = [\"10.0.0.5\", \"fd00::/64\"]\nclient_subnet_from = [\"10.0.0.5/32\"]",
    ))
    .unwrap();
    assert_eq!(
        c.server.proxy_protocol,
        ["10.0.0.5/32".parse().unwrap(), "fd00::/64".parse().unwrap()]
    );
    assert_eq!(
        c.server.client_subnet_from,
        ["10.0.0.5/32".parse().unwrap()]
    );
    for (line, col, want) in [
        (
            "proxy_protocol = [\"10.0.0.5/33\"]",
            19,
            "server.proxy_protocol[0]: invalid network \"10.0.0.5/33\"; expected an address or a CIDR with no host bits, such as \"10.0.0.5\", \"10.0.0.0/24\" or \"fd00::53/128\"",
        ),
        (
            "client_subnet_from = [\"10.1.2.0/16\", \"dnsmasq\"]",
            23,
            "server.client_subnet_from[0]: invalid network \"10.1.2.0/16\"; expected an address or a CIDR with no host bits, such as \"10.0.0.5\", \"10.0.0.0/24\" or \"fd00::53/128\"",
        ),
        (
            "client_subnet_from = [\"10.1.2.53\", \"10.1.2.53/32\"]",
            36,
            "server.client_subnet_from[1]: 10.1.2.53/32 is listed twice",
        ),
    ] {
        let e = load(&text(line)).unwrap_err().to_string();
        assert!(e.starts_with(&format!("t.toml:3:{col}: {want}")), "{e}");
    }
}
