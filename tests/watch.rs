//! Watch against a running pixelguard: a zone's watched names (the catalogue's server-side
//! endpoints, or a list of its own) are forwarded, counted as `watched` (queries and tracker
//! attempts with the vendor, mode `watch`) and logged, and never blocked, even by a block list
//! of the same zone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod governance;
mod support;

use governance::{blocked, head, lines_for, log_lines, metric, resolves, scrape, upstream};
use pixelguard::metrics;
use support::pg;

#[tokio::test]
async fn watched_names_are_forwarded_counted_and_logged_never_blocked() {
    let up = upstream();
    let config = format!(
        "{}[lists.trackers]\nsource = \"builtin:trackers\"\n[lists.mine]\nsource = \"mine.txt\"\n\
         [lists.plain]\nsource = \"plain.txt\"\n\n\
         [zones.webservers]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\", \"plain\"]\n\
         watch = [\"catalogue:server_side\", \"mine\"]\n\
         [zones.office]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\"]\n",
        head(up.addr())
    );
    let files = [
        ("mine.txt", "mine.example.test\nplain.example.test\n"),
        ("plain.txt", "plain.example.test\n"),
    ];
    let pg = pg::start(&config, &files).await;

    // Server-side endpoints: forwarded in both zones, watched only in webservers.
    assert!(resolves(&pg, 2, "graph.facebook.com").await);
    assert!(
        resolves(&pg, 2, "graph.facebook.com").await,
        "cached, still watched"
    );
    assert!(resolves(&pg, 2, "business-api.tiktok.com").await);
    assert!(resolves(&pg, 3, "graph.facebook.com").await);
    // A watched name is never blocked: www.google-analytics.com is a catalogue block host too.
    assert!(resolves(&pg, 2, "www.google-analytics.com").await);
    assert!(blocked(&pg, 3, "www.google-analytics.com").await);
    // A list of one's own; watch wins over the zone's block list.
    assert!(resolves(&pg, 2, "mine.example.test").await);
    assert!(resolves(&pg, 2, "plain.example.test").await);
    // Trackers not watched stay blocked.
    assert!(blocked(&pg, 2, "connect.facebook.net").await);

    let m = scrape(&pg).await;
    let q = metrics::QUERIES_TOTAL;
    assert_eq!(
        metric(&m, q, &[("zone", "webservers"), ("outcome", "watched")]),
        Some(6.0)
    );
    assert_eq!(
        metric(&m, q, &[("zone", "office"), ("outcome", "watched")]),
        Some(0.0)
    );
    let t = metrics::TRACKER_ATTEMPTS_TOTAL;
    let watched = |v, c| {
        [
            ("zone", "webservers"),
            ("vendor", v),
            ("category", c),
            ("mode", "watch"),
        ]
    };
    assert_eq!(
        metric(&m, t, &watched("meta", "server_side")),
        Some(2.0),
        "{m}"
    );
    assert_eq!(metric(&m, t, &watched("tiktok", "server_side")), Some(1.0));
    assert_eq!(metric(&m, t, &watched("google", "server_side")), Some(1.0));
    assert_eq!(metric(&m, t, &watched("other", "other")), Some(2.0));
    assert_eq!(
        metric(
            &m,
            metrics::BLOCKED_TOTAL,
            &[("zone", "webservers"), ("list", "plain")]
        ),
        Some(0.0)
    );

    let lines = log_lines(&pg).await;
    let g = lines_for(&lines, "graph.facebook.com");
    assert_eq!(
        g.len(),
        2,
        "office's plain answers are no policy events: {lines:#?}"
    );
    for l in g {
        assert_eq!(l["outcome"], "watched");
        assert_eq!(l["zone"], "webservers");
        assert_eq!(l["vendor"], "meta");
        assert_eq!(l["category"], "server_side");
        assert_eq!(l["list"], "catalogue:server_side");
    }
    let mine = lines_for(&lines, "mine.example.test");
    assert_eq!(mine[0]["outcome"], "watched");
    assert_eq!(mine[0]["list"], "mine");
}
