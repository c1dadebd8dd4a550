//! Shutdown of the UDP receive threads: a cache miss waiting on its upstream when the server is
//! told to stop is still answered (the thread that received it lets it finish within the grace
//! period), and the listener stops answering afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use support::pg::{self, base};
use support::scripted::{self, Reply};
use support::{QueryOpts, ScriptedUpstream, answer_ips, query};

#[tokio::test]
async fn a_miss_in_flight_at_shutdown_is_still_answered() {
    let answer: IpAddr = "192.0.2.44".parse().unwrap();
    // The upstream holds every answer for a second: long enough to stop the server meanwhile.
    let up = ScriptedUpstream::start(move |q| {
        let m = q.message.as_ref().expect("a DNS query");
        Reply::Delay(
            Duration::from_secs(1),
            Box::new(Reply::Message(scripted::answer_for(m, answer, 300))),
        )
    });
    // One try may take 3 s, so the held answer arrives within it.
    let config = base(&[up.addr()])
        .replace("timeout = \"400ms\"", "timeout = \"3s\"")
        .replace("deadline = \"1500ms\"", "deadline = \"4s\"");
    assert!(config.contains("timeout = \"3s\""), "{config}");
    let config = format!("{config}[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\n");
    let pg = pg::start(&config, &[]).await;
    let addr = pg.addr;
    let asked = tokio::spawn(async move {
        query(
            addr,
            "slow.example.test.",
            RecordType::A,
            &QueryOpts::default(),
        )
        .await
    });
    assert!(
        up.wait_for_count(1, Duration::from_secs(10)).await,
        "the miss reached the upstream"
    );
    // Stop while the upstream still holds the answer.
    pg.app.shutdown().await;
    let m = asked
        .await
        .unwrap()
        .expect("the in-flight query is answered");
    assert_eq!(answer_ips(&m), vec![answer], "{m:?}");

    // Stopped: nothing answers on the address any more.
    let opts = QueryOpts {
        timeout: Duration::from_millis(500),
        ..QueryOpts::default()
    };
    assert!(
        query(addr, "after.example.test.", RecordType::A, &opts)
            .await
            .is_err(),
        "the stopped server still answered"
    );
}
