//! `pixelguard pseudonym` (issue 16 part 5): with a reason it prints, for each address, exactly
//! the client the query log of a real run wrote (hashed under the generated key file, or masked
//! where the zone says so) and appends one audit line to `state_dir/pseudonym-audit.log` (mode
//! 0600); without a reason, or when the audit line cannot be written, it refuses and prints no
//! pseudonym.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use support::{AuthServer, QueryOpts, loopback, pg, poll_until, query};

fn config(upstream: std::net::SocketAddr) -> String {
    // No `key`: the log's key is generated into state_dir/query-log.key, as in production.
    format!(
        "state_dir = \"state\"\n{}\
         [query_log]\npath = \"queries.jsonl\"\n\n\
         [lists.b]\nsource = \"b.txt\"\n\n\
         [zones.office]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"b\"]\n\n\
         [zones.lab]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"b\"]\nquery_log_client = \"masked\"\n",
        pg::base(&[upstream])
    )
}

fn pseudonym(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pixelguard"))
        .args(["pseudonym", "--config", config.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run pixelguard")
}

fn audit_lines(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("pseudonym-audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The real uid of this process, as the command reads it.
fn my_uid() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pseudonym_equals_the_query_log_and_is_audited() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&config(auth.addr()), &[("b.txt", "ads.example.test\n")]).await;
    for n in [2, 3] {
        let m = query(
            pg.addr,
            "ads.example.test.",
            RecordType::A,
            &QueryOpts::from_source(loopback(n)),
        )
        .await
        .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    let log = pg.path("queries.jsonl");
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    poll_until(Duration::from_secs(10), "both lines are logged", || {
        let n = lines().len();
        async move { n == 2 }
    })
    .await;
    let logged = |zone: &str| -> String {
        lines()
            .iter()
            .find(|l| l["zone"] == zone)
            .and_then(|l| l["client"].as_str().map(str::to_owned))
            .unwrap()
    };
    let office = logged("office");
    assert!(office.starts_with("c-"), "{office}");
    let cfg = pg.path("pixelguard.toml");
    let state = pg.path("state");

    // Refused without a reason, or with an empty one: exit 2, nothing on stdout, no audit line.
    for args in [&["127.0.0.2"][..], &["--reason", "  ", "127.0.0.2"]] {
        let out = pseudonym(&cfg, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--reason"), "{err}");
        assert!(audit_lines(&state).is_empty());
    }

    // With a reason: the log's own pseudonym (hash) and masked network, one audit line.
    let reason = "Case 2026/117, authorised by the SIRO";
    let out = pseudonym(&cfg, &["--reason", reason, "127.0.0.2", "::ffff:127.0.0.3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        format!("127.0.0.2 {office}\n127.0.0.3 {}\n", logged("lab"))
    );
    assert_eq!(logged("lab"), "127.0.0.0/24");
    let audit = audit_lines(&state);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["reason"], reason);
    assert_eq!(
        audit[0]["addresses"],
        serde_json::json!(["127.0.0.2", "127.0.0.3"])
    );
    assert_eq!(audit[0]["uid"].as_u64(), Some(my_uid()));
    assert!(!audit[0]["user"].as_str().unwrap().is_empty());
    assert!(humantime::parse_rfc3339(audit[0]["ts"].as_str().unwrap()).is_ok());
    let mode = std::fs::metadata(state.join("pseudonym-audit.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // A second look-up appends; the first line stays.
    let out = pseudonym(&cfg, &["--reason", "second", "127.0.0.2"]);
    assert!(out.status.success());
    let audit = audit_lines(&state);
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["reason"], reason);
    assert_eq!(audit[1]["reason"], "second");

    // A bad address: refused before anything is written.
    let out = pseudonym(&cfg, &["--reason", "x", "10.0.0.300"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(audit_lines(&state).len(), 2);
}

#[test]
fn no_pseudonym_when_the_audit_line_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pixelguard.toml");
    std::fs::write(
        &cfg,
        "state_dir = \"state\"\n[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n\
         [query_log]\npath = \"queries.jsonl\"\nkey = \"pseudonym-test-key-01\"\n\
         [zones.office]\nnetworks = [\"127.0.0.2/32\"]\n",
    )
    .unwrap();
    // The audit file's place is taken by a directory: opening it for appending fails (even as
    // root, unlike a permission).
    std::fs::create_dir_all(dir.path().join("state/pseudonym-audit.log")).unwrap();
    let out = pseudonym(&cfg, &["--reason", "case 1", "127.0.0.2"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit") && err.contains("no pseudonym printed"),
        "{err}"
    );

    // With the audit file writable, the same command prints the known pseudonym of this key.
    std::fs::remove_dir(dir.path().join("state/pseudonym-audit.log")).unwrap();
    let out = pseudonym(&cfg, &["--reason", "case 1", "127.0.0.2"]);
    assert!(out.status.success());
    let key = pixelguard::querylog::Pseudonymizer::from_secret("pseudonym-test-key-01");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("127.0.0.2 {}\n", key.pseudonym(loopback(2)))
    );
}
