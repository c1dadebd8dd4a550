//! `pixelguard audit --baseline`: the real binary audits the CSP fixture site (tests/csp_site,
//! on 127.0.0.1), saves the JSON report, then audits it again after the reporting page gained a
//! TikTok pixel: exit code 4, and the output names exactly that page and that pixel ID.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod csp_site;

use std::sync::atomic::Ordering;

use csp_site::{TIKTOK_ID, audit, config, start_site};
use serde_json::Value;

const TIKTOK: &str = "TikTok (ByteDance) - TikTok Pixel";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pixel_on_the_reporting_page_exits_4_and_is_named() {
    let site = start_site().await;
    let cfg = config();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baseline.json");
    let base_s = base.display().to_string();
    let run = audit(
        &site,
        &cfg,
        &[
            "--fail-on",
            "none",
            "--format",
            "json",
            "--write-report",
            &base_s,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(written["pages"], printed["pages"]);

    // Nothing changed: no output, exit 0 (even with a Meta Pixel on a sensitive page: it was
    // there before).
    let run = audit(&site, &cfg, &["--baseline", &base_s]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);

    // The campaign puts a TikTok pixel on the reporting page.
    site.state.v2.store(true, Ordering::SeqCst);
    let page = format!("{}/report-a-crime.html", site.base);
    let run = audit(&site, &cfg, &["--baseline", &base_s]).await;
    assert_eq!(
        run.code, 4,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("NEW   new tracker {TIKTOK} on {page}"),
            format!("NEW   new tiktok_pixel {TIKTOK_ID} ({TIKTOK}) on {page}"),
        ],
        "{}",
        run.stdout
    );

    // The same as JSON, for alerting pipelines.
    let run = audit(&site, &cfg, &["--baseline", &base_s, "--format", "json"]).await;
    assert_eq!(run.code, 4);
    let d: Value = serde_json::from_str(&run.stdout).unwrap();
    let alerts = d["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts.iter().all(|a| a["page"] == page.as_str()));
    assert_eq!(alerts[1]["kind"], "new_id");
    assert_eq!(alerts[1]["id"]["id"], TIKTOK_ID);
    assert_eq!(d["info"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_baseline_is_a_usage_error_naming_the_file() {
    let site = start_site().await;
    let cfg = config();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": \"pixelguard.audit/1\", \"pages\": [").unwrap();
    let bad_s = bad.display().to_string();
    let run = audit(&site, &cfg, &["--baseline", &bad_s]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("bad.json"), "{}", run.stderr);
    let missing = dir.path().join("missing.json").display().to_string();
    let run = audit(&site, &cfg, &["--baseline", &missing]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("missing.json"), "{}", run.stderr);
}
