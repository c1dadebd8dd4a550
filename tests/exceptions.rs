//! Exceptions and vendor-level policy against a running pixelguard: an exception lets a blocked
//! vendor or name through in its zones only, is recorded (query log `exception`, metrics), and
//! stops applying at its `until` without a reload; `allow_vendors` and `block_vendors` act per
//! zone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod governance;
mod support;

use std::time::{Duration, SystemTime};

use governance::{blocked, head, lines_for, log_lines, metric, resolves, scrape, upstream};
use pixelguard::metrics;
use support::pg;

#[tokio::test]
async fn an_exception_lifts_blocks_in_its_zone_and_ends_by_itself() {
    let up = upstream();
    // An exception ending a few seconds from now, written as RFC 3339.
    let soon = SystemTime::now() + Duration::from_secs(6);
    let soon = humantime::format_rfc3339_seconds(soon).to_string();
    let config = format!(
        "{}[lists.trackers]\nsource = \"builtin:trackers\"\n\n\
         [zones.recruitment]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\"]\n\
         [zones.kiosk]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"trackers\"]\n\n\
         [[exceptions]]\nzones = [\"recruitment\"]\nvendors = [\"linkedin\"]\nuntil = \"2099-12-31\"\n\
         reason = \"Recruitment campaign\"\nticket = \"INC-4411\"\n\n\
         [[exceptions]]\nzones = [\"recruitment\"]\nnames = [\"facebook.net\"]\nuntil = \"{soon}\"\n\
         reason = \"Short trial\"\n",
        head(up.addr())
    );
    let pg = pg::start(&config, &[]).await;

    // By vendor: through in recruitment, blocked in kiosk.
    assert!(resolves(&pg, 2, "px.ads.linkedin.com").await);
    assert!(blocked(&pg, 3, "px.ads.linkedin.com").await);
    // By name (a parent of the query name), until its end.
    assert!(resolves(&pg, 2, "connect.facebook.net").await);
    let m = scrape(&pg).await;
    let g = metrics::EXCEPTIONS;
    assert_eq!(metric(&m, g, &[("state", "active")]), Some(1.0), "{m}");
    assert_eq!(metric(&m, g, &[("state", "expiring")]), Some(1.0));
    assert_eq!(metric(&m, g, &[("state", "expired")]), Some(0.0));

    // explain shows the exception, its reason, ticket and days left, and the precedence.
    let url = format!(
        "http://{}/api/explain?client=127.0.0.2&name=px.ads.linkedin.com&type=A",
        pg.app.admin_addr.unwrap()
    );
    let body = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = j["text"].as_str().unwrap();
    assert!(text.contains("allowed by exception INC-4411 (reason: Recruitment campaign; until 2100-01-01T00:00:00Z"), "{text}");
    assert!(
        text.contains("allow lists > allow_vendors > exceptions in force > watch"),
        "{text}"
    );
    assert_eq!(j["decision"]["exception"]["ticket"], "INC-4411");
    assert!(j["decision"]["exception"]["days_left"].as_u64().unwrap() > 365 * 70);

    // No reload: the second exception stops applying at its `until`.
    support::poll_until(Duration::from_secs(20), "the exception ends", || async {
        blocked(&pg, 2, "connect.facebook.net").await
    })
    .await;
    assert!(
        resolves(&pg, 2, "px.ads.linkedin.com").await,
        "the other one still applies"
    );
    let m = scrape(&pg).await;
    assert_eq!(metric(&m, g, &[("state", "active")]), Some(1.0));
    assert_eq!(metric(&m, g, &[("state", "expiring")]), Some(0.0));
    assert_eq!(metric(&m, g, &[("state", "expired")]), Some(1.0));

    let hits = metrics::EXCEPTION_HITS_TOTAL;
    let recruitment = |v| [("zone", "recruitment"), ("vendor", v)];
    assert_eq!(metric(&m, hits, &recruitment("linkedin")), Some(2.0));
    // connect.facebook.net was asked until the end (once or more before it).
    let meta = metric(&m, hits, &recruitment("meta")).unwrap_or(0.0);
    assert!(meta >= 1.0, "{meta}");
    assert_eq!(
        metric(&m, hits, &[("zone", "kiosk"), ("vendor", "linkedin")]),
        None
    );
    let q = metrics::QUERIES_TOTAL;
    let fw = metric(&m, q, &[("zone", "recruitment"), ("outcome", "forwarded")]).unwrap_or(0.0);
    let ca = metric(&m, q, &[("zone", "recruitment"), ("outcome", "cached")]).unwrap_or(0.0);
    assert_eq!(
        fw + ca,
        2.0 + meta,
        "excepted answers keep forwarded/cached"
    );

    // The query log (record = "policy") holds the excepted answers with their label and vendor.
    let lines = log_lines(&pg).await;
    let li = lines_for(&lines, "px.ads.linkedin.com");
    let excepted: Vec<_> = li.iter().filter(|l| l["zone"] == "recruitment").collect();
    assert_eq!(excepted.len(), 2, "{lines:#?}");
    for l in &excepted {
        assert_eq!(l["exception"], "INC-4411");
        assert_eq!(l["vendor"], "linkedin");
        assert_eq!(l["list"], "trackers");
        assert!(
            l["outcome"] == "forwarded" || l["outcome"] == "cached",
            "{l}"
        );
    }
    let kiosk: Vec<_> = li.iter().filter(|l| l["zone"] == "kiosk").collect();
    assert_eq!(kiosk.len(), 1);
    assert_eq!(kiosk[0]["outcome"], "blocked");
    assert!(kiosk[0].get("exception").is_none(), "{}", kiosk[0]);
    let fb = lines_for(&lines, "connect.facebook.net");
    let fb_excepted = fb
        .iter()
        .filter(|l| l["exception"] == "exceptions[1]")
        .count();
    assert_eq!(fb_excepted as f64, meta, "one log line per exception hit");
    assert_eq!(fb[0]["exception"], "exceptions[1]");
    assert_eq!(fb[0]["vendor"], "meta");
    assert_eq!(fb.last().unwrap()["outcome"], "blocked");
    assert!(fb.last().unwrap().get("exception").is_none());
}

#[tokio::test]
async fn allow_vendors_and_block_vendors_act_per_zone() {
    let up = upstream();
    let config = format!(
        "{}[lists.trackers]\nsource = \"builtin:trackers\"\n[lists.plain]\nsource = \"plain.txt\"\n\n\
         [zones.marketing]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"trackers\"]\nallow_vendors = [\"linkedin\"]\n\
         [zones.lab]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"plain\"]\nblock_vendors = [\"meta\"]\n",
        head(up.addr())
    );
    let pg = pg::start(&config, &[("plain.txt", "plain.example.test\n")]).await;
    // marketing: the whole catalogue but LinkedIn.
    assert!(resolves(&pg, 2, "px.ads.linkedin.com").await);
    assert!(blocked(&pg, 2, "connect.facebook.net").await);
    // lab: a plain list plus Meta's catalogue hosts, nothing else of the catalogue.
    assert!(blocked(&pg, 3, "connect.facebook.net").await);
    assert!(blocked(&pg, 3, "plain.example.test").await);
    assert!(resolves(&pg, 3, "px.ads.linkedin.com").await);
    let m = scrape(&pg).await;
    let t = metrics::TRACKER_ATTEMPTS_TOTAL;
    let attempt = |z, v, c| {
        [
            ("zone", z),
            ("vendor", v),
            ("category", c),
            ("mode", "enforce"),
        ]
    };
    assert_eq!(
        metric(&m, t, &attempt("lab", "meta", "advertising")),
        Some(1.0)
    );
    assert_eq!(metric(&m, t, &attempt("lab", "other", "other")), Some(1.0));
    assert_eq!(
        metric(&m, t, &attempt("lab", "linkedin", "advertising")),
        None
    );
    assert_eq!(
        metric(&m, t, &attempt("marketing", "linkedin", "advertising")).unwrap_or(0.0),
        0.0
    );
    // An allowed vendor is no exception: nothing in the exception series.
    assert_eq!(
        metric(
            &m,
            metrics::EXCEPTION_HITS_TOTAL,
            &[("zone", "marketing"), ("vendor", "linkedin")]
        ),
        None
    );
}
