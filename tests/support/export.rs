//! What the export tests share (tests/export.rs: dnstap; tests/export_syslog.rs: syslog and the
//! pseudonym across instances): the config with two zones and a block list, a query from a
//! loopback source, a metric read from /metrics, a free loopback port. Included by `#[path]`, so
//! only the export test binaries compile it (tests/export_debian.rs takes `ask` only).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::support::{QueryOpts, loopback, pg, query};

pub const KEY: &str = "export-test-key-000001";

pub fn from(n: u8) -> QueryOpts {
    QueryOpts::from_source(loopback(n))
}

pub async fn ask(pg: &pg::Pg, n: u8, name: &str) -> ResponseCode {
    query(pg.addr, name, RecordType::A, &from(n))
        .await
        .unwrap_or_else(|e| panic!("{name} from 127.0.0.{n}: {e}"))
        .metadata
        .response_code
}

/// A metric sample from the admin server's /metrics (0 when absent).
pub async fn metric(pg: &pg::Pg, series: &str) -> f64 {
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
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

pub fn config(upstream: SocketAddr, sections: &str) -> String {
    format!(
        "{}[query_log]\npath = \"queries.jsonl\"\nkey = \"{KEY}\"\n\n{sections}\n\
         [lists.b]\nsource = \"b.txt\"\n[lists.allow]\nsource = \"allow.txt\"\n\
         [zones.office]\nnetworks = [\"127.0.0.2/32\"]\nblock = [\"b\"]\nallow = [\"allow\"]\n\
         [zones.lab]\nnetworks = [\"127.0.0.3/32\"]\nblock = [\"b\"]\nmode = \"log\"\nquery_log = \"all\"\nquery_log_client = \"masked\"\n",
        pg::base(&[upstream])
    )
}

pub const LISTS: &[(&str, &str)] = &[
    ("b.txt", "ads.example.test\nmx.example.test\n"),
    ("allow.txt", "mx.example.test\n"),
];

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
