//! Hostile input through a real server: thousands of random and mutated packets over UDP and TCP
//! (bounded in count), after which every receive thread must still answer. A panic in the fast
//! path would kill a UDP thread and show up as unanswered queries here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use support::pg::{self, base};
use support::{AuthServer, QueryOpts, answer_ips, query};
use tokio::io::AsyncWriteExt;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn valid(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(1, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut e = hickory_proto::op::Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_packets_never_stop_the_server() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[lists.t]\nsource = \"builtin:trackers\"\n[zones.lo]\nnetworks = [\"127.0.0.0/8\"]\nblock = [\"t\"]\nrate_limit = {{ qps = 0 }}\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    // Warm the cache so that mutated packets reach the fast path's cache-hit encoder too.
    for n in [
        "www.example.test.",
        "chain1.example.test.",
        "connect.facebook.net.",
    ] {
        let _ = query(pg.addr, n, RecordType::A, &QueryOpts::default()).await;
    }
    let seeds = [
        valid("www.example.test.", RecordType::A),
        valid("chain1.example.test.", RecordType::A),
        valid("connect.facebook.net.", RecordType::HTTPS),
        valid("use-application-dns.net.", RecordType::A),
    ];
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..4000 {
        let mut p = seeds[i % seeds.len()].clone();
        match xorshift(&mut x) % 5 {
            0 => {
                let n = (xorshift(&mut x) % 600) as usize;
                p = (0..n).map(|_| xorshift(&mut x) as u8).collect();
            }
            1 => {
                let cut = (xorshift(&mut x) as usize) % (p.len() + 1);
                p.truncate(cut);
            }
            2 => {
                for _ in 0..1 + xorshift(&mut x) % 4 {
                    let at = (xorshift(&mut x) as usize) % p.len();
                    p[at] = xorshift(&mut x) as u8;
                }
            }
            3 => p.extend((0..xorshift(&mut x) % 40).map(|_| xorshift(&mut x) as u8)),
            _ => {
                // Header fields: counts, flags, opcode.
                let at = 2 + (xorshift(&mut x) as usize) % 10;
                p[at] = xorshift(&mut x) as u8;
            }
        }
        let _ = sock.send_to(&p, pg.addr);
    }
    // Crafted malformations: QDCOUNT 0 and 2, a compression loop, a huge label, a label running
    // past the end, counts that promise records that are not there, a lone header.
    let mut crafted: Vec<Vec<u8>> = Vec::new();
    let hdr = |qd: u16, an: u16, ar: u16| {
        let mut h = vec![0xab, 0xcd, 0x01, 0x00];
        h.extend_from_slice(&qd.to_be_bytes());
        h.extend_from_slice(&an.to_be_bytes());
        h.extend_from_slice(&0u16.to_be_bytes());
        h.extend_from_slice(&ar.to_be_bytes());
        h
    };
    crafted.push(hdr(0, 0, 0));
    let mut two = seeds[0].clone();
    two[5] = 2;
    crafted.push(two);
    let mut lp = hdr(1, 0, 0);
    lp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // name pointing at itself
    crafted.push(lp);
    let mut huge = hdr(1, 0, 0);
    huge.push(63);
    huge.extend(std::iter::repeat_n(b'a', 63));
    for _ in 0..5 {
        huge.push(63);
        huge.extend(std::iter::repeat_n(b'b', 63));
    }
    huge.extend_from_slice(&[0, 0, 1, 0, 1]); // a name over 255 bytes
    crafted.push(huge);
    let mut past = hdr(1, 0, 0);
    past.extend_from_slice(&[40, b'a', b'b']);
    crafted.push(past);
    let mut promise = seeds[0].clone();
    promise[7] = 5; // ANCOUNT 5, no answers follow
    crafted.push(promise);
    crafted.push(vec![0xab, 0xcd]);
    for p in &crafted {
        let _ = sock.send_to(p, pg.addr);
        if let Ok(mut t) = tokio::net::TcpStream::connect(pg.addr).await {
            let mut framed = (p.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(p);
            let _ = t.write_all(&framed).await;
        }
    }
    // Half-open TCP connections: a length prefix promising more than is ever sent.
    let mut half_open = Vec::new();
    for _ in 0..20 {
        if let Ok(mut t) = tokio::net::TcpStream::connect(pg.addr).await {
            let _ = t.write_all(&[0x01, 0x00, 0xab]).await;
            half_open.push(t);
        }
    }
    // The same over TCP, including bad length prefixes.
    for _ in 0..100 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(pg.addr).await {
            let n = (xorshift(&mut x) % 300) as usize;
            let junk: Vec<u8> = (0..n).map(|_| xorshift(&mut x) as u8).collect();
            let _ = s.write_all(&junk).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every receive thread still answers: many queries from fresh source ports spread over the
    // SO_REUSEPORT sockets.
    for i in 0..40 {
        let o = QueryOpts {
            timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let m = query(pg.addr, "www.example.test.", RecordType::A, &o)
            .await
            .unwrap_or_else(|e| panic!("query {i} unanswered: {e:?}"));
        assert_eq!(
            answer_ips(&m),
            vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
        );
    }
    let m = query(
        pg.addr,
        "www.example.test.",
        RecordType::A,
        &QueryOpts::tcp(),
    )
    .await
    .unwrap();
    assert_eq!(answer_ips(&m).len(), 1);
}
