//! `pixelguard catalogue check` run as a user runs it, against the committed real-format samples
//! (tests/data/owners): the built-in catalogue agrees with them on ownership, the one Quantcast
//! domain it lacks is reported, a misattributed host in a catalogue file is reported, sources
//! age, and unusable input is a clear usage error (exit 2). CI runs this file with `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_pixelguard");
const DISCONNECT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/owners/disconnect-services-sample.json"
);
const RADAR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/owners/tracker-radar/comScore, Inc.json"
);

fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(BIN)
        .args(["catalogue", "check"])
        .args(args)
        .output()
        .expect("run pixelguard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_builtin_catalogue_against_the_samples() {
    let (code, out, err) = run(&[
        "--against",
        DISCONNECT,
        "--against",
        RADAR,
        "--today",
        "2026-12-03",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("33 domains (31 tracker domains), 0 items skipped"),
        "{out}"
    );
    assert!(out.contains("6 domains (0 tracker domains)"), "{out}");
    assert!(
        out.contains("0 catalogue host(s) attributed to a different owner"),
        "{out}"
    );
    assert!(
        out.contains("1 tracker domain(s) of catalogue vendors missing")
            && out.contains("struq.com: Quantcast (vendor.quantcast)"),
        "{out}"
    );
    // Everything was dated within a year on that day except the vendors sourced only from the
    // EasyPrivacy snapshot of 2025-10-31 and undated list versions.
    assert!(out.contains("vendor.snap: 2025-10-31"), "{out}");
    assert!(!out.contains("vendor.siteimprove"), "{out}");
}

#[test]
fn a_misattributed_host_and_old_sources_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat.toml");
    std::fs::write(
        &cat,
        "[sources]\nX = \"a page seen 2024-05-01\"\n\n[vendor.acme]\nname = \"Acme Analytics\"\n\n\
         [vendor.acme.analytics]\nblock = [\"insight.adsrvr.org\"]\nsources = [\"X\"]\nnotes = \"test\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&[
        "--catalogue",
        cat.to_str().unwrap(),
        "--against",
        DISCONNECT,
        "--today",
        "2026-12-03",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("insight.adsrvr.org: catalogue acme,") && out.contains(": The Trade Desk"),
        "{out}"
    );
    assert!(out.contains("vendor.acme: 2024-05-01"), "{out}");
    // the same catalogue within its age limit
    let (_, out, _) = run(&[
        "--catalogue",
        cat.to_str().unwrap(),
        "--today",
        "2024-06-01",
    ]);
    assert!(
        out.contains("0 vendor(s) whose newest dated source"),
        "{out}"
    );
}

#[test]
fn unusable_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let ep = dir.path().join("easyprivacy.txt");
    std::fs::write(&ep, "||example-tracker.test^\n").unwrap();
    let (code, _, err) = run(&["--against", ep.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be checked for ownership"), "{err}");
    let (code, _, err) = run(&["--today", "03/12/2026"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected YYYY-MM-DD"), "{err}");
    let (code, _, err) = run(&["--against", "/nonexistent/services.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/services.json"), "{err}");
}
