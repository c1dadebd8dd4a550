//! List trials against a running pixelguard: a list in `block` as `{ list, mode = "log" }` never
//! blocks; names only it matches are forwarded and recorded as would-block naming the list
//! (`pixelguard_would_block_total{zone,list}`, the query log); the zone's other lists keep
//! enforcing, and a name both match is blocked by the enforcing one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod governance;
mod support;

use governance::{blocked, head, lines_for, log_lines, metric, resolves, scrape, upstream};
use pixelguard::metrics;
use support::pg;

#[tokio::test]
async fn a_list_on_trial_never_blocks_and_records_would_block() {
    let up = upstream();
    let config = format!(
        "{}[lists.trackers]\nsource = \"builtin:trackers\"\n[lists.local]\nsource = \"local.txt\"\n\
         [lists.candidate]\nsource = \"candidate.txt\"\n\n\
         [zones.office]\nnetworks = [\"127.0.0.2/32\"]\n\
         block = [\"trackers\", \"local\", {{ list = \"candidate\", mode = \"log\" }}]\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\", \"local\"]\n",
        head(up.addr())
    );
    let files = [
        ("local.txt", "ads.example.test\nboth.example.test\n"),
        (
            "candidate.txt",
            "trial.example.test\nboth.example.test\nfacebook.net\n",
        ),
    ];
    let pg = pg::start(&config, &files).await;

    // Only the trial list matches: forwarded (twice: fresh, then cached), would-block.
    assert!(resolves(&pg, 2, "trial.example.test").await);
    assert!(resolves(&pg, 2, "trial.example.test").await);
    // Enforcing lists still block; a name both match is blocked by the enforcing one.
    assert!(blocked(&pg, 2, "ads.example.test").await);
    assert!(blocked(&pg, 2, "both.example.test").await);
    assert!(blocked(&pg, 2, "connect.facebook.net").await);
    // Another zone never sees the trial.
    assert!(resolves(&pg, 3, "trial.example.test").await);

    let m = scrape(&pg).await;
    let wb = metrics::WOULD_BLOCK_TOTAL;
    assert_eq!(
        metric(&m, wb, &[("zone", "office"), ("list", "candidate")]),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, wb, &[("zone", "kiosk"), ("list", "candidate")]),
        None
    );
    let q = metrics::QUERIES_TOTAL;
    assert_eq!(
        metric(&m, q, &[("zone", "office"), ("outcome", "would_block")]),
        Some(2.0)
    );
    assert_eq!(
        metric(&m, q, &[("zone", "office"), ("outcome", "blocked")]),
        Some(3.0)
    );
    let b = metrics::BLOCKED_TOTAL;
    assert_eq!(
        metric(&m, b, &[("zone", "office"), ("list", "local")]),
        Some(2.0)
    );
    assert_eq!(
        metric(&m, b, &[("zone", "office"), ("list", "candidate")]),
        None
    );
    let t = metrics::TRACKER_ATTEMPTS_TOTAL;
    let trial = [
        ("zone", "office"),
        ("vendor", "other"),
        ("category", "other"),
        ("mode", "log"),
    ];
    assert_eq!(metric(&m, t, &trial), Some(2.0));

    let lines = log_lines(&pg).await;
    let t = lines_for(&lines, "trial.example.test");
    assert_eq!(t.len(), 2, "{lines:#?}");
    for l in t {
        assert_eq!(l["zone"], "office");
        assert_eq!(l["outcome"], "would_block");
        assert_eq!(l["list"], "candidate");
    }
    let both = lines_for(&lines, "both.example.test");
    assert_eq!(both[0]["outcome"], "blocked");
    assert_eq!(both[0]["list"], "local");
}
