//! Integration-test support: real DNS servers and a real DNS client, all on loopback.
//!
//! * [`auth::AuthServer`]: an in-process authoritative server (hickory-server `Server`
//!   with our own zone handler) on `127.0.0.1:<random>`, UDP and TCP on the same port,
//!   recording every question it receives.
//! * [`scripted::ScriptedUpstream`]: raw tokio UDP + TCP sockets driven by a closure that
//!   decides each reply (normal message, garbage, empty datagram, silence, delay, ...).
//! * [`client`]: a minimal real DNS client (UDP or TCP, from any 127/8 source address).
//!
//! Network rule: everything here binds and sends ONLY to 127.0.0.0/8 or `::1`; the
//! constructors assert it.
//!
//! Each integration-test binary does `mod support;` and uses a subset, hence the
//! `dead_code` / `unused_imports` allowances.
#![allow(dead_code, unused_imports)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod auth;
pub mod client;
pub mod dashboard;
pub mod nsd;
pub mod pg;
pub mod pki;
pub mod scripted;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub use auth::{AuthServer, SeenQuery, TEST_ZONE, TEST_ZONE_ORIGIN};
pub use client::{
    ClientError, QueryOpts, answer_ips, ede, query, query_raw, soa_in_authority, ttls,
};
pub use scripted::{Reply, ScriptedQuery, ScriptedUpstream};

/// Transport a query arrived on (or is sent over).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP datagram.
    Udp,
    /// TCP with the RFC 1035 2-byte length prefix.
    Tcp,
}

/// `127.0.0.n`, a loopback address (on Linux all of 127/8 is local without setup).
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// Panics unless `ip` is a loopback address: the test network rule.
pub fn assert_loopback(ip: IpAddr) {
    assert!(
        ip.is_loopback(),
        "test support only talks to loopback addresses, got {ip}"
    );
}

/// Binds a UDP socket and a TCP listener on the same (random) port of `ip`.
///
/// Returns non-blocking std sockets, ready for `tokio::net::*::from_std`. Retries a bounded
/// number of times when the TCP side of the port is already taken.
pub fn bind_udp_tcp(ip: IpAddr) -> (std::net::UdpSocket, std::net::TcpListener) {
    assert_loopback(ip);
    const ATTEMPTS: usize = 64;
    let mut last_err = None;
    for _ in 0..ATTEMPTS {
        let udp = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind udp");
        let addr = udp.local_addr().expect("udp local addr");
        match std::net::TcpListener::bind(addr) {
            Ok(tcp) => {
                udp.set_nonblocking(true).expect("udp nonblocking");
                tcp.set_nonblocking(true).expect("tcp nonblocking");
                return (udp, tcp);
            }
            Err(e) => last_err = Some(e),
        }
    }
    panic!("could not bind UDP+TCP on one port of {ip} after {ATTEMPTS} attempts: {last_err:?}");
}

/// Polls an asynchronous `cond` (a query, a scrape) every 20 ms until it holds; fails the test
/// with `what` when `timeout` passes first.
pub async fn poll_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    // Bounded by the deadline.
    while !cond().await {
        assert!(Instant::now() < deadline, "{what} (waited {timeout:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns its last value.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    // Bounded by the deadline.
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}
