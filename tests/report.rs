//! `pixelguard report` (issue 16 part 4): a report built from the query log of a real run equals
//! that run's /metrics, zone by zone and vendor by vendor; `--from`/`--to` bound the period;
//! rotated files (plain and gzip) are read; a malformed line is skipped and counted; client
//! pseudonyms appear only with `--clients`.
//!
//! A real pixelguard on loopback with an in-process upstream, three zones (127.0.0.2 enforce,
//! 127.0.0.3 log mode, 127.0.0.4 enforce with a policy-only log), a query log small enough to
//! rotate during the run; the report is made by the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use support::scripted::answer_for;
use support::{QueryOpts, Reply, ScriptedUpstream, loopback, pg, poll_until, query};

const LOCAL_LIST: &str = "unattributed.example.test\n";

/// (source, name, times): the known load. Names from the built-in catalogue (meta, google,
/// linkedin, tiktok), one only a plain list knows (vendor `other`), and allowed names.
const LOAD: &[(u8, &str, usize)] = &[
    (2, "connect.facebook.net.", 5),
    (2, "www.google-analytics.com.", 3),
    (2, "unattributed.example.test.", 2),
    (2, "www.example.test.", 6),
    (2, "allowed.example.test.", 4),
    (3, "connect.facebook.net.", 4),
    (3, "snap.licdn.com.", 3),
    (3, "www.example.test.", 5),
    (4, "analytics.tiktok.com.", 2),
    (4, "connect.facebook.net.", 1),
    (4, "www.example.test.", 3),
];

fn config(upstream: std::net::SocketAddr) -> String {
    format!(
        "state_dir = \"state\"\n{}\
         [query_log]\npath = \"log/queries.jsonl\"\nkey = \"report-test-key-000001\"\nrecord = \"all\"\n\
         max_size = 4096\nkeep = 50\n\n\
         [lists.trackers]\nsource = \"builtin:trackers\"\n[lists.local]\nsource = \"local.txt\"\n\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\", \"local\"]\n\n\
         [zones.staff]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\", \"local\"]\nmode = \"log\"\n\n\
         [zones.guest]\nnetworks = [\"127.0.0.4/32\"]\nblock = [\"trackers\"]\nquery_log = \"policy\"\n",
        pg::base(&[upstream])
    )
}

/// The samples of one metric family: labels → value.
async fn samples(pg: &pg::Pg, family: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let url = format!("http://{}/metrics", pg.app.admin_addr.unwrap());
    let text = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(family)?.strip_prefix('{')?;
            let (labels, value) = rest.split_once("} ")?;
            let map = labels
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect();
            Some((map, value.trim().parse().ok()?))
        })
        .collect()
}

/// Every line of the query log, all files.
fn log_lines(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        v.extend(
            std::fs::read_to_string(&p)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned),
        );
    }
    v
}

fn pixelguard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pixelguard"))
        .args(args)
        .output()
        .expect("run pixelguard")
}

fn report(config: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = pixelguard(&args);
    assert!(
        out.status.success(),
        "report {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_numbers_equal_the_metrics_of_the_same_run() {
    let upstream = ScriptedUpstream::start(|q| match &q.message {
        Some(m) => Reply::Message(answer_for(m, "192.0.2.1".parse().unwrap(), 60)),
        None => Reply::Silence,
    });
    let pg = pg::start(&config(upstream.addr()), &[("local.txt", LOCAL_LIST)]).await;
    std::fs::create_dir_all(pg.path("log")).unwrap();
    for &(src, name, times) in LOAD {
        for _ in 0..times {
            let m = query(
                pg.addr,
                name,
                RecordType::A,
                &QueryOpts::from_source(loopback(src)),
            )
            .await
            .unwrap_or_else(|e| panic!("{name} from .{src}: {e}"));
            assert!(
                matches!(
                    m.metadata.response_code,
                    ResponseCode::NoError | ResponseCode::NXDomain
                ),
                "{name}: {:?}",
                m.metadata.response_code
            );
        }
    }
    // Every answer the log records (all of kiosk and staff, policy hits of guest) is written.
    let want_lines: usize = LOAD
        .iter()
        .filter(|(src, name, _)| *src != 4 || !name.starts_with("www."))
        .map(|l| l.2)
        .sum();
    let log_dir = pg.path("log");
    poll_until(
        Duration::from_secs(10),
        "the query log has every line",
        || {
            let n = log_lines(&log_dir).len();
            async move { n == want_lines }
        },
    )
    .await;
    let files = std::fs::read_dir(&log_dir).unwrap().count();
    assert!(files >= 3, "the log rotated during the run ({files} files)");

    let cfg = pg.path("pixelguard.toml");
    let json: Value = serde_json::from_str(&report(&cfg, &["--format", "json"])).unwrap();

    // Tracker attempts: mode enforce → blocked, mode log → would_block, per zone × vendor.
    let mut want: BTreeMap<(String, String, &str), u64> = BTreeMap::new();
    for (labels, v) in samples(&pg, "pixelguard_tracker_attempts_total").await {
        if v == 0.0 {
            continue;
        }
        let outcome = if labels["mode"] == "log" {
            "would_block"
        } else {
            "blocked"
        };
        *want
            .entry((labels["zone"].clone(), labels["vendor"].clone(), outcome))
            .or_default() += v as u64;
    }
    let mut got: BTreeMap<(String, String, &str), u64> = BTreeMap::new();
    for (zone, z) in json["zones"].as_object().unwrap() {
        for (vendor, c) in z["vendors"].as_object().unwrap() {
            for outcome in ["blocked", "would_block", "watched", "excepted"] {
                let n = c[outcome].as_u64().unwrap();
                if n > 0 {
                    got.insert((zone.clone(), vendor.clone(), outcome), n);
                }
            }
        }
    }
    assert_eq!(got, want, "report vs pixelguard_tracker_attempts_total");
    // The load as written above, so the comparison cannot pass on two empty maps.
    assert_eq!(
        want[&("kiosk".into(), "meta".into(), "blocked")],
        5,
        "{want:?}"
    );
    assert_eq!(want[&("staff".into(), "linkedin".into(), "would_block")], 3);
    assert_eq!(want[&("kiosk".into(), "other".into(), "blocked")], 2);
    assert_eq!(want[&("guest".into(), "tiktok".into(), "blocked")], 2);

    // Outcomes of the zones that log every answer equal pixelguard_queries_total.
    for (labels, v) in samples(&pg, "pixelguard_queries_total").await {
        let zone = labels["zone"].as_str();
        if !matches!(zone, "kiosk" | "staff") {
            continue;
        }
        let got = json["zones"][zone]["outcomes"][labels["outcome"].as_str()]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(got, v as u64, "{zone} {}", labels["outcome"]);
    }
    assert_eq!(json["zones"]["kiosk"]["outcomes"]["blocked"], 10);

    // Footer: every file and line, nothing skipped; top names and first-seen vendors.
    assert_eq!(json["footer"]["files"].as_array().unwrap().len(), files);
    assert_eq!(json["footer"]["lines_read"], want_lines as u64);
    assert_eq!(json["footer"]["lines_skipped"], 0);
    assert_eq!(
        json["top_names"]["meta"]["top"][0]["key"], "connect.facebook.net",
        "{}",
        json["top_names"]
    );
    assert_eq!(json["top_names"]["meta"]["top"][0]["count"], 10);
    let new: Vec<&str> = json["first_seen"]["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vendor"].as_str().unwrap())
        .collect();
    assert_eq!(new, ["google", "linkedin", "meta", "tiktok"]);
    let lists: Vec<&str> = json["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(lists, ["local", "trackers"]);
    assert_eq!(json["lists"][0]["entries"], 1);

    // No client pseudonym in any format without --clients; with it, they are there.
    let clients: Vec<String> = log_lines(&log_dir)
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some(v["client"].as_str()?.to_owned())
        })
        .collect();
    assert!(clients.iter().all(|c| c.starts_with("c-")), "{clients:?}");
    for format in ["md", "csv", "json"] {
        let text = report(&cfg, &["--format", format]);
        for c in &clients {
            assert!(!text.contains(c.as_str()), "{format} shows {c}:\n{text}");
        }
    }
    assert!(json.get("clients").is_none());
    let with = report(&cfg, &["--format", "json", "--clients"]);
    assert!(with.contains(clients[0].as_str()), "{with}");
    let csv = report(&cfg, &["--format", "csv"]);
    assert!(
        csv.lines().any(|l| l.ends_with(",kiosk,meta,blocked,5")),
        "{csv}"
    );
    let md = report(&cfg, &["--out", pg.path("r.md").to_str().unwrap()]);
    assert!(md.is_empty());
    let md = std::fs::read_to_string(pg.path("r.md")).unwrap();
    assert!(md.contains("| kiosk | meta | 5 | 0 | 0 | 0 |"), "{md}");
    assert!(md.contains("0 skipped"), "{md}");
}

/// One query-log line as the writer writes it (plus the policy helper's `exception` field).
fn line(ts: &str, zone: &str, outcome: &str, vendor: &str, qname: &str) -> String {
    format!(
        "{{\"ts\":\"{ts}\",\"zone\":\"{zone}\",\"client\":\"c-00112233aabbccdd\",\"qname\":\"{qname}\",\"qtype\":\"A\",\"outcome\":\"{outcome}\",\"rcode\":\"NXDOMAIN\",\"list\":\"trackers\",\"rule\":\"{qname}\",\"vendor\":\"{vendor}\",\"category\":\"advertising\",\"cloaked_via\":null,\"upstream\":null,\"duration_us\":12}}\n"
    )
}

#[test]
fn period_bounds_rotated_gzip_files_and_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let cfg = dir.path().join("pixelguard.toml");
    std::fs::write(
        &cfg,
        "state_dir = \"state\"\n[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n\
         [query_log]\npath = \"log/queries.jsonl\"\nkey = \"report-test-key-000001\"\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.2/32\"]\n",
    )
    .unwrap();
    // Oldest: October (before the period): meta already known.
    std::fs::write(
        log.join("queries.jsonl.2"),
        line(
            "2026-10-20T10:00:00.000000Z",
            "kiosk",
            "blocked",
            "meta",
            "connect.facebook.net",
        ),
    )
    .unwrap();
    // November, gzip-compressed by an operator's logrotate: one malformed line among them.
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(log.join("queries.jsonl.1.gz")).unwrap(),
        flate2::Compression::default(),
    );
    let nov = [
        line(
            "2026-11-01T00:00:00.000000Z",
            "kiosk",
            "blocked",
            "meta",
            "connect.facebook.net",
        ),
        "{\"ts\": \"2026-11-02T00:00:00Z\", \"outcome\": \n".to_owned(),
        line(
            "2026-11-03T08:00:00.000000Z",
            "kiosk",
            "blocked",
            "tiktok",
            "analytics.tiktok.com",
        ),
        line(
            "2026-11-04T08:00:00.000000Z",
            "kiosk",
            "forwarded",
            "meta",
            "connect.facebook.net",
        )
        .replace(
            "\"duration_us\"",
            "\"exception\":\"INC-4411\",\"duration_us\"",
        ),
    ];
    gz.write_all(nov.concat().as_bytes()).unwrap();
    gz.finish().unwrap();
    // Live: the last minute of November (in), then December (out).
    std::fs::write(
        log.join("queries.jsonl"),
        [
            line(
                "2026-11-30T23:59:59.000000Z",
                "kiosk",
                "blocked",
                "meta",
                "pixel.facebook.com",
            ),
            line(
                "2026-12-01T00:00:00.000000Z",
                "kiosk",
                "blocked",
                "meta",
                "connect.facebook.net",
            ),
            line(
                "2026-12-02T00:00:00.000000Z",
                "kiosk",
                "blocked",
                "linkedin",
                "snap.licdn.com",
            ),
        ]
        .concat(),
    )
    .unwrap();

    let json: Value = serde_json::from_str(&report(
        &cfg,
        &[
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let meta = &json["zones"]["kiosk"]["vendors"]["meta"];
    assert_eq!(meta["blocked"], 2, "{json}");
    assert_eq!(meta["excepted"], 1, "{json}");
    assert_eq!(json["zones"]["kiosk"]["vendors"]["tiktok"]["blocked"], 1);
    assert!(json["zones"]["kiosk"]["vendors"].get("linkedin").is_none());
    assert_eq!(json["footer"]["files"].as_array().unwrap().len(), 3);
    assert_eq!(json["footer"]["lines_read"], 8);
    assert_eq!(json["footer"]["lines_skipped"], 1);
    assert_eq!(json["footer"]["outside_period"], 3);
    assert_eq!(json["first_seen"]["vendors"][0]["vendor"], "tiktok");
    assert_eq!(json["first_seen"]["vendors"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["first_seen"]["compared_with_log_from"],
        "2026-10-20T10:00:00Z"
    );
    assert_eq!(json["period"]["from"], "2026-11-01T00:00:00Z");
    assert_eq!(json["period"]["to"], "2026-12-01T00:00:00Z");

    // An RFC 3339 end is excluded: the last line of November is out.
    let json: Value = serde_json::from_str(&report(
        &cfg,
        &[
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30T23:59:59Z",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(json["zones"]["kiosk"]["vendors"]["meta"]["blocked"], 1);

    // A bad bound: exit 2, the expected form named, nothing on stdout.
    let out = pixelguard(&[
        "report",
        "--config",
        cfg.to_str().unwrap(),
        "--from",
        "1/11/2026",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--from") && err.contains("YYYY-MM-DD"),
        "{err}"
    );
}
