//! Vendor attribution for subscribed lists (issue 17): a plain domains list that blocks a name is
//! attributed to the vendor that a loaded catalogue-like list (the catalogue, Disconnect's
//! services.json, Tracker Radar) knows as its owner, and the answer's EDE (the same verdict the
//! metrics, the query log and explain use) names it. Real pixelguard on loopback, real DNS client,
//! real-format samples from tests/data/owners.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::time::Duration;
use support::pg::{self, base};

use support::{AuthServer, QueryOpts, ede, poll_until, query};

const DISCONNECT: &str = include_str!("data/owners/disconnect-services-sample.json");
const TR_DOMAIN: &str = include_str!("data/owners/tracker-radar/mouseflow.com.json");
const TR_ENTITY: &str = include_str!("data/owners/tracker-radar/comScore, Inc.json");

/// A plain list, as EasyPrivacy converted to domains would be: no vendors of its own.
const PLAIN: &str =
    "sb.scorecardresearch.com\ninsight.adsrvr.org\ncdn.mouseflow.com\nplain-only.example.test\n";

fn from2() -> QueryOpts {
    QueryOpts::from_source("127.0.0.2".parse().unwrap())
}

fn config(upstream: std::net::SocketAddr, owner_lists: &str) -> String {
    format!(
        "{}[lists.plain]\nsource = \"plain.txt\"\n{owner_lists}\n[zones.nx]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"plain\"]\n",
        base(&[upstream])
    )
}

async fn ede_of(pg: &pg::Pg, name: &str) -> Vec<(u16, String)> {
    let m = query(pg.addr, name, RecordType::A, &from2()).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
    ede(&m)
}

fn one(text: &str) -> Vec<(u16, String)> {
    vec![(15, text.to_owned())]
}

#[tokio::test]
async fn a_plain_list_is_attributed_from_loaded_owner_lists() {
    let auth = AuthServer::start_test_zone();
    let radar = format!("[{TR_DOMAIN},{TR_ENTITY}]");
    // The owner lists are loaded but used by no zone: they only name owners. Formats are
    // guessed from the content (JSON of each shape).
    let owners = "[lists.trackers]\nsource = \"builtin:trackers\"\n[lists.disconnect]\nsource = \"services.json\"\n[lists.radar]\nsource = \"radar.json\"\n";
    let pg = pg::start(
        &config(auth.addr(), owners),
        &[
            ("plain.txt", PLAIN),
            ("services.json", DISCONNECT),
            ("radar.json", &radar),
        ],
    )
    .await;

    // The catalogue knows comscore (and is consulted before Disconnect, whose id would be the
    // same here); the catalogue's id wins over Disconnect's "the_trade_desk" for adsrvr.org.
    assert_eq!(
        ede_of(&pg, "sb.scorecardresearch.com.").await,
        one("pixelguard: plain (comscore/analytics)")
    );
    assert_eq!(
        ede_of(&pg, "insight.adsrvr.org.").await,
        one("pixelguard: plain (thetradedesk/advertising)")
    );
    // Only Tracker Radar (a domain file without categories) and the catalogue know Mouseflow;
    // the catalogue's more specific cdn.mouseflow.com entry names the category.
    assert_eq!(
        ede_of(&pg, "cdn.mouseflow.com.").await,
        one("pixelguard: plain (mouseflow/session_replay)")
    );
    // Nobody knows this one's owner.
    assert_eq!(
        ede_of(&pg, "plain-only.example.test.").await,
        one("pixelguard: plain")
    );
    // Owner lists used by no zone block nothing: Disconnect's adsrvr.org apex is not in "plain".
    let m = query(pg.addr, "adsrvr.org.", RecordType::A, &from2())
        .await
        .unwrap();
    assert!(ede(&m).is_empty(), "{:?}", ede(&m));
}

#[tokio::test]
async fn disconnect_alone_names_owners_the_catalogue_does_not_load() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(
        &config(
            auth.addr(),
            "[lists.disconnect]\nsource = \"services.json\"\nformat = \"disconnect\"\n",
        ),
        &[("plain.txt", PLAIN), ("services.json", DISCONNECT)],
    )
    .await;
    assert_eq!(
        ede_of(&pg, "insight.adsrvr.org.").await,
        one("pixelguard: plain (the_trade_desk/advertising)")
    );
    assert_eq!(
        ede_of(&pg, "sb.scorecardresearch.com.").await,
        one("pixelguard: plain (comscore/analytics)")
    );
    assert_eq!(
        ede_of(&pg, "cdn.mouseflow.com.").await,
        one("pixelguard: plain")
    );

    // The metrics carry the same vendor (the label no catalogue has: Disconnect's company).
    let url = format!(
        "http://{}/metrics",
        pg.app.admin_addr.expect("admin server bound")
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap();
    poll_until(Duration::from_secs(5), "the attempt is counted", || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let text = http.get(&url).send().await.unwrap().text().await.unwrap();
            text.lines().any(|l| {
                l.starts_with("pixelguard_tracker_attempts_total{")
                    && l.contains("vendor=\"the_trade_desk\"")
                    && l.contains("category=\"advertising\"")
                    && l.contains("zone=\"nx\"")
                    && l.ends_with(" 1")
            })
        }
    })
    .await;
}

#[tokio::test]
async fn without_owner_lists_a_plain_list_names_no_vendor() {
    let auth = AuthServer::start_test_zone();
    let pg = pg::start(&config(auth.addr(), ""), &[("plain.txt", PLAIN)]).await;
    assert_eq!(
        ede_of(&pg, "sb.scorecardresearch.com.").await,
        one("pixelguard: plain")
    );
}
