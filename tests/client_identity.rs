//! The real client behind a proxy, end to end on loopback: PROXY protocol v2 headers from a
//! trusted peer (127.0.0.1) naming the kiosk (127.0.0.2) and staff (127.0.0.3) clients over UDP
//! and TCP; headers from an untrusted peer, missing headers and a table of malformed ones, dropped
//! and counted while the server goes on answering; the per-client TCP cap on the named client.
//! EDNS Client Subnet is in tests/client_subnet.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/identity.rs"]
mod common;
mod support;

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Message, ResponseCode};
use ppp::v2::{Builder, Command, Protocol, Type, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use common::*;
use support::{loopback, pg};

#[tokio::test]
async fn a_trusted_proxys_header_names_the_client_over_udp_and_tcp() {
    for path in ["fast", "hickory"] {
        let (_up, pg) = start(path).await;
        let proxy = udp_from(&pg, loopback(1)).await;
        let kiosk = header(loopback(2), Protocol::Datagram);
        let staff = header(loopback(3), Protocol::Datagram);
        for _ in 0..2 {
            // Twice: the second answer of staff comes from the cache.
            let m = udp_ask(&proxy, &kiosk, TRACKER, None).await;
            assert!(blocked(&m), "{path}: kiosk via the proxy is blocked: {m:?}");
            let m = udp_ask(&proxy, &staff, TRACKER, None).await;
            assert!(resolved(&m), "{path}: staff via the proxy resolves: {m:?}");
        }
        // TCP: the header once, at the start of the connection.
        let kiosk = header(loopback(2), Protocol::Stream);
        let staff = header(loopback(3), Protocol::Stream);
        let m = tcp_ask(&pg, loopback(1), &kiosk, TRACKER, None)
            .await
            .unwrap();
        assert!(blocked(&m), "{path}: kiosk over TCP: {m:?}");
        let m = tcp_ask(&pg, loopback(1), &staff, TRACKER, None)
            .await
            .unwrap();
        assert!(resolved(&m), "{path}: staff over TCP: {m:?}");
        // LOCAL (health checks): the proxy itself, which is in no zone: REFUSED, not dropped.
        let m = udp_ask(&proxy, &local_header(), TRACKER, None).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        let m = tcp_ask(&pg, loopback(1), &local_header(), TRACKER, None)
            .await
            .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        // The query log sees the real clients, never the proxy.
        assert!(pg.app.flush_query_log(IO_CAP).await);
        let lines = log_lines(&pg);
        let seen: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l["zone"].as_str().unwrap(), l["client"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                ("kiosk", "127.0.0.2"),
                ("staff", "127.0.0.3"),
                ("kiosk", "127.0.0.2"),
                ("staff", "127.0.0.3"),
                ("kiosk", "127.0.0.2"),
                ("staff", "127.0.0.3"),
            ],
            "{path}"
        );
        for r in ["untrusted", "missing", "malformed", "unsupported"] {
            assert_eq!(dropped(&pg, r).await, 0, "{path}: nothing dropped ({r})");
        }
    }
}

#[tokio::test]
async fn headers_from_untrusted_peers_and_trusted_peers_without_one_are_dropped() {
    let (_up, pg) = start("fast").await;
    // 127.0.0.4 is a staff client, not a proxy: its header naming the kiosk is dropped.
    let other = udp_from(&pg, loopback(4)).await;
    let (_, q) = query(TRACKER, None);
    let kiosk = header(loopback(2), Protocol::Datagram);
    other.send(&[&kiosk[..], &q].concat()).await.unwrap();
    wait_dropped(&pg, "untrusted", 1).await;
    // The next plain query on the same socket gets the first reply: none came for the header.
    let m = udp_ask(&other, &[], TRACKER, None).await;
    assert!(resolved(&m), "127.0.0.4 is still served as staff");
    let kiosk = header(loopback(2), Protocol::Stream);
    assert!(
        tcp_ask(&pg, loopback(4), &kiosk, TRACKER, None)
            .await
            .is_none()
    );
    wait_dropped(&pg, "untrusted", 2).await;
    assert!(
        tcp_ask(&pg, loopback(4), &[], TRACKER, None)
            .await
            .is_some()
    );
    // A version 1 text header from an untrusted peer is not DNS either.
    let v1 = b"PROXY TCP4 127.0.0.2 127.0.0.1 4000 53\r\n";
    assert!(tcp_ask(&pg, loopback(4), v1, TRACKER, None).await.is_none());
    wait_dropped(&pg, "untrusted", 3).await;

    // The trusted proxy without a header: dropped.
    let proxy = udp_from(&pg, loopback(1)).await;
    proxy.send(&q).await.unwrap();
    wait_dropped(&pg, "missing", 1).await;
    assert!(
        tcp_ask(&pg, loopback(1), &[], TRACKER, None)
            .await
            .is_none()
    );
    wait_dropped(&pg, "missing", 2).await;
    let m = udp_ask(
        &proxy,
        &header(loopback(3), Protocol::Datagram),
        TRACKER,
        None,
    )
    .await;
    assert!(
        resolved(&m),
        "the proxy's next datagram, with its header, is served"
    );
}

#[tokio::test]
async fn malformed_headers_are_dropped_and_counted_and_the_server_keeps_answering() {
    let (_up, pg) = start("fast").await;
    let good = header(loopback(2), Protocol::Datagram);
    let with_tlv = Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Datagram,
        (
            SocketAddr::new(loopback(2), 1),
            "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
        ),
    )
    .write_tlv(Type::NoOp, &[0; 3])
    .unwrap()
    .build()
    .unwrap();
    let patch = |mut h: Vec<u8>, at: usize, v: u8| {
        h[at] = v;
        h
    };
    let tlv_at = with_tlv.len() - 6;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated signature", good[..7].to_vec()),
        ("truncated fixed part", good[..14].to_vec()),
        (
            "version 1 in a binary header",
            patch(good.clone(), 12, 0x11),
        ),
        ("version 3", patch(good.clone(), 12, 0x31)),
        ("command 2", patch(good.clone(), 12, 0x22)),
        ("family 5", patch(good.clone(), 13, 0x52)),
        ("transport 3", patch(good.clone(), 13, 0x13)),
        ("length under the addresses", patch(good.clone(), 15, 4)),
        ("length past the end", patch(good.clone(), 15, 200)),
        (
            "TLV past the end",
            patch(with_tlv.clone(), tlv_at + 2, 0x40),
        ),
    ];
    let proxy = udp_from(&pg, loopback(1)).await;
    for (i, (what, bad)) in cases.iter().enumerate() {
        // UDP: the bad header with no query after it (a short datagram is all header).
        proxy.send(bad).await.unwrap();
        wait_dropped(&pg, "malformed", 2 * i as u64 + 1).await;
        let m = udp_ask(&proxy, &good, TRACKER, None).await;
        assert!(blocked(&m), "{what}: the next good datagram is answered");
        // TCP: the connection is closed, nothing written.
        assert!(
            tcp_closed_after(&pg, loopback(1), bad).await,
            "{what}: TCP connection closed"
        );
        wait_dropped(&pg, "malformed", 2 * i as u64 + 2).await;
    }
    // A UNIX-socket header is valid but carries no usable client.
    let unix = Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        ppp::v2::Unix::new([1; 108], [2; 108]),
    )
    .build()
    .unwrap();
    assert!(
        tcp_ask(&pg, loopback(1), &unix, TRACKER, None)
            .await
            .is_none()
    );
    wait_dropped(&pg, "unsupported", 1).await;
    let m = tcp_ask(
        &pg,
        loopback(1),
        &header(loopback(3), Protocol::Stream),
        TRACKER,
        None,
    )
    .await
    .unwrap();
    assert!(resolved(&m), "still answering over TCP");
}

/// A TCP connection from the trusted proxy that sent `header` and one query; kept open.
async fn proxied_connection(
    pg: &pg::Pg,
    client: IpAddr,
) -> (tokio::net::TcpStream, Option<Message>) {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(loopback(1), 0)).unwrap();
    let mut stream = s.connect(pg.addr).await.unwrap();
    let (_, q) = query(TRACKER, None);
    let mut out = header(client, Protocol::Stream);
    out.extend_from_slice(&(q.len() as u16).to_be_bytes());
    out.extend_from_slice(&q);
    let _ = stream.write_all(&out).await;
    let mut len = [0u8; 2];
    let reply = match tokio::time::timeout(IO_CAP, stream.read_exact(&mut len)).await {
        Ok(Ok(_)) => {
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await.unwrap();
            Some(Message::from_vec(&buf).unwrap())
        }
        Ok(Err(_)) => None,
        Err(_) => panic!("neither a reply nor a close within {IO_CAP:?}"),
    };
    (stream, reply)
}

#[tokio::test]
async fn the_per_client_tcp_cap_applies_to_the_client_a_header_names_not_the_proxy() {
    let up = upstream();
    let cfg = config(up.addr(), "fast").replace(
        "udp_path = \"fast\"",
        "udp_path = \"fast\"\ntcp_max_connections_per_client = 1",
    );
    let pg = pg::start(&cfg, &[("b.txt", "tracker.example.test\n")]).await;
    // Two open connections from the one proxy, for two clients: both served.
    let (_a, r) = proxied_connection(&pg, loopback(2)).await;
    assert!(r.is_some_and(|m| blocked(&m)), "kiosk's connection");
    let (_b, r) = proxied_connection(&pg, loopback(3)).await;
    assert!(
        r.is_some_and(|m| resolved(&m)),
        "staff's connection, same proxy"
    );
    // A second open connection for the kiosk client: over its cap, closed.
    let (_c, r) = proxied_connection(&pg, loopback(2)).await;
    assert!(
        r.is_none(),
        "the kiosk client's second connection is closed"
    );
}
