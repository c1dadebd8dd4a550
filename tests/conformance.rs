//! Protocol conformance probes in the manner of ISC's EDNS compliance tool (`genreport`) and
//! RFC 8906, written as our own tests against a running pixelguard, over UDP and TCP:
//!
//! * every opcode 1–15: NOTIMP with QR, the opcode echoed, RD copied, and RA, AD, CD, AA, TC and
//!   Z clear (the same header rules for the FORMERR of an unparseable request);
//! * EDNS version 1: BADVERS, with an OPT of version 0 and no answer;
//! * an unknown EDNS option and an unknown EDNS flag: ignored, not echoed;
//! * the Z bit: cleared in the answer;
//! * DO and CD: passed on to the upstream, CD echoed, DO echoed in the OPT;
//! * EDNS over TCP: an OPT in the answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::pg::{self, base};
use support::{AuthServer, loopback, query_raw};

const RD: u16 = 0x0100;
const CD: u16 = 0x0010;
const AD: u16 = 0x0020;
const Z: u16 = 0x0040;

/// A query for `www.example.test A` with these header flags (opcode included) and an optional
/// OPT: (version, flags, options rdata).
fn raw_query(id: u16, flags: u16, opt: Option<(u8, u16, &[u8])>) -> Vec<u8> {
    raw_query_for("www.example.test", id, flags, opt)
}

/// [`raw_query`] for another name.
fn raw_query_for(name: &str, id: u16, flags: u16, opt: Option<(u8, u16, &[u8])>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&u16::from(opt.is_some()).to_be_bytes());
    for label in name.split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some((version, eflags, options)) = opt {
        b.push(0);
        b.extend_from_slice(&41u16.to_be_bytes());
        b.extend_from_slice(&1232u16.to_be_bytes());
        b.push(0);
        b.push(version);
        b.extend_from_slice(&eflags.to_be_bytes());
        b.extend_from_slice(&(options.len() as u16).to_be_bytes());
        b.extend_from_slice(options);
    }
    b
}

fn flags(r: &[u8]) -> u16 {
    u16::from_be_bytes([r[2], r[3]])
}

/// The OPT of a response: (ext rcode, version, flags, options rdata).
fn opt_of(r: &[u8]) -> Option<(u8, u8, u16, Vec<u8>)> {
    let opt = support::wire::records(r)
        .into_iter()
        .find(|x| x.rtype == 41)?;
    let at = opt.fixed;
    Some((
        r[at + 4],
        r[at + 5],
        u16::from_be_bytes([r[at + 6], r[at + 7]]),
        r[opt.rdata..opt.rdata + opt.rdlen].to_vec(),
    ))
}

#[tokio::test]
async fn probes_in_the_manner_of_genreport() {
    let auth = AuthServer::start_test_zone();
    let config = format!(
        "{}[zones.all]\nnetworks = [\"127.0.0.1/32\"]\n",
        base(&[auth.addr()])
    );
    let pg = pg::start(&config, &[]).await;
    let from = loopback(1);
    for tcp in [false, true] {
        let how = if tcp { "tcp" } else { "udp" };
        // Every opcode but QUERY: NOTIMP, a minimal header.
        for opcode in 1u16..=15 {
            let q = raw_query(0x4242, (opcode << 11) | RD | CD | AD | Z, None);
            let r = query_raw(pg.addr, &q, tcp, from)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("opcode {opcode} over {how}: no answer"));
            let f = flags(&r);
            assert_eq!(&r[..2], &[0x42, 0x42]);
            assert_eq!(f & 0x000f, 4, "opcode {opcode} {how}: NOTIMP");
            assert_ne!(f & 0x8000, 0, "QR");
            assert_eq!((f >> 11) & 0xf, opcode, "opcode echoed ({how})");
            assert_eq!(f & RD, RD, "RD copied");
            assert_eq!(
                f & 0x07f0 & !RD,
                0,
                "opcode {opcode} {how}: AA TC RA Z AD CD clear: {f:#06x}"
            );
        }
        // EDNS version 1: BADVERS (16 = ext rcode 1, low bits 0), OPT version 0, no answer.
        let r = query_raw(pg.addr, &raw_query(7, RD, Some((1, 0, &[]))), tcp, from)
            .await
            .unwrap()
            .unwrap();
        let (ext, version, _, _) = opt_of(&r).expect("an OPT");
        assert_eq!((ext, flags(&r) & 0xf), (1, 0), "BADVERS over {how}");
        assert_eq!(version, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 0, "no answer");
        // An unknown option (code 65001) and an unknown EDNS flag (0x4000): ignored, answered
        // normally, neither echoed.
        let unknown = [0xfd, 0xe9, 0, 2, 0xab, 0xcd];
        let r = query_raw(
            pg.addr,
            &raw_query(8, RD, Some((0, 0x4000, &unknown))),
            tcp,
            from,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(flags(&r) & 0xf, 0, "NOERROR ({how})");
        assert!(u16::from_be_bytes([r[6], r[7]]) >= 1, "answered ({how})");
        let (_, version, eflags, options) = opt_of(&r).expect("EDNS answered with EDNS");
        assert_eq!((version, eflags), (0, 0), "unknown flag not echoed ({how})");
        assert!(options.is_empty(), "unknown option not echoed ({how})");
        // Z set: cleared in the answer.
        let r = query_raw(pg.addr, &raw_query(9, RD | Z, None), tcp, from)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(flags(&r) & 0xf, 0);
        assert_eq!(flags(&r) & Z, 0, "Z cleared ({how})");
        // DO and CD: passed on, echoed.
        let name = if tcp { "mail" } else { "mx" };
        let q = raw_query_for(
            &format!("{name}.example.test"),
            10,
            RD | CD,
            Some((0, 0x8000, &[])),
        );
        let r = query_raw(pg.addr, &q, tcp, from).await.unwrap().unwrap();
        assert_eq!(flags(&r) & CD, CD, "CD echoed ({how})");
        let (_, _, eflags, _) = opt_of(&r).expect("OPT");
        assert_eq!(eflags & 0x8000, 0x8000, "DO echoed ({how})");
        let seen = auth.seen();
        let up = seen
            .iter()
            .rev()
            .find(|s| s.name.starts_with(name))
            .unwrap_or_else(|| panic!("{name} reached the upstream"));
        assert!(up.do_bit && up.cd, "DO and CD passed on ({how})");
    }
    // FORMERR for an unparseable request: the same minimal header.
    let mut junk = raw_query(0x1234, RD | CD, None);
    junk.truncate(20);
    for tcp in [false, true] {
        let r = query_raw(pg.addr, &junk, tcp, from).await.unwrap().unwrap();
        let f = flags(&r);
        assert_eq!(f & 0xf, 1, "FORMERR");
        assert_eq!(f & RD, RD);
        assert_eq!(f & 0x07f0 & !RD, 0, "AA TC RA Z AD CD clear: {f:#06x}");
    }
    pg.app.shutdown().await;
}
