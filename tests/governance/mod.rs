//! Shared parts of the governance tests (`exceptions`, `watch`, `trials`): an upstream that
//! answers for tracker and server-side names, the query helpers, `/metrics` scraping and the
//! query log's lines.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::pg::{self, Pg};
use crate::support::{AuthServer, QueryOpts, answer_ips, query};

/// A root zone answering for the names the tests ask (catalogue hosts and plain test names),
/// every A record 192.0.2.7.
pub const NAMES: &[&str] = &[
    "px.ads.linkedin.com",
    "connect.facebook.net",
    "graph.facebook.com",
    "business-api.tiktok.com",
    "www.google-analytics.com",
    "ads.example.test",
    "trial.example.test",
    "both.example.test",
    "plain.example.test",
    "mine.example.test",
];

/// The answer every name gets.
pub const ANSWER: &str = "192.0.2.7";

/// Starts the upstream.
pub fn upstream() -> AuthServer {
    let mut z = String::from(
        "$ORIGIN .\n$TTL 300\n@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ IN NS ns.test.\n",
    );
    for n in NAMES {
        z.push_str(&format!("{n}. IN A {ANSWER}\n"));
    }
    AuthServer::start(".", &z)
}

/// `[server]`, `[upstream]`, `[admin]` and a policy-only query log (`queries.jsonl`).
pub fn head(up: SocketAddr) -> String {
    format!(
        "{}[query_log]\npath = \"queries.jsonl\"\nkey_file = \"q.key\"\nrecord = \"policy\"\n\n",
        pg::base(&[up])
    )
}

/// Asks `name` (A) from 127.0.0.`n`: the rcode and the addresses.
pub async fn ask(pg: &Pg, n: u8, name: &str) -> (ResponseCode, Vec<IpAddr>) {
    let src: IpAddr = format!("127.0.0.{n}")
        .parse()
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let m = query(pg.addr, name, RecordType::A, &QueryOpts::from_source(src))
        .await
        .unwrap_or_else(|e| panic!("{name} from 127.0.0.{n}: {e}"));
    (m.metadata.response_code, answer_ips(&m))
}

/// True when the name resolved to the upstream's answer.
pub async fn resolves(pg: &Pg, n: u8, name: &str) -> bool {
    let (rc, ips) = ask(pg, n, name).await;
    rc == ResponseCode::NoError && ips == [ANSWER.parse::<IpAddr>().unwrap_or(IpAddr::from([0; 4]))]
}

/// True when the name got the zone's block response (NXDOMAIN).
pub async fn blocked(pg: &Pg, n: u8, name: &str) -> bool {
    ask(pg, n, name).await.0 == ResponseCode::NXDomain
}

/// The `/metrics` text.
pub async fn scrape(pg: &Pg) -> String {
    let addr = pg
        .app
        .admin_addr
        .unwrap_or_else(|| panic!("no admin server"));
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let r = c
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    r.text().await.unwrap_or_else(|e| panic!("{e}"))
}

/// The value of series `name{labels}` (labels in any order; all of the series' labels given),
/// `None` when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    text.lines().find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, r)) => (n, r.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            return None;
        }
        let mut got: Vec<String> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split(',').map(str::to_owned).collect()
        };
        got.sort();
        (got == want).then(|| value.parse().ok()).flatten()
    })
}

/// The query log's lines, after a flush.
pub async fn log_lines(pg: &Pg) -> Vec<Value> {
    assert!(
        pg.app.flush_query_log(Duration::from_secs(5)).await,
        "query log flush"
    );
    std::fs::read_to_string(pg.path("queries.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The lines for `qname`.
pub fn lines_for<'a>(lines: &'a [Value], qname: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["qname"] == qname).collect()
}
