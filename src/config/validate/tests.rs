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
    }
}
