//! PROXY protocol v2 on the listeners (HAProxy's specification; dnsdist `useProxyProtocol`,
//! HAProxy `send-proxy-v2`): the real client behind a load balancer.
//!
//! From a peer in `server.proxy_protocol` the header is required: before every UDP datagram, and
//! once at the start of every TCP connection. Its source address is then the client for zone,
//! rate limit, query log and the per-client TCP cap; the answer goes back to the peer, without a
//! header (what dnsdist and HAProxy expect). The LOCAL command (dnsdist's health checks) and the
//! AF_UNSPEC family carry no client: the peer's own address stands in, so a health check is
//! answered as the proxy's own query would be (REFUSED when the proxy is in no zone, which
//! dnsdist's default check counts as up).
//!
//! Everything else is dropped and counted in `pixelguard_proxy_dropped_total{reason}`: a datagram
//! or connection from a trusted peer without a header (`missing`), a header from any other peer
//! (`untrusted`: it is never parsed as DNS), a header that breaks the specification (`malformed`:
//! truncated, bad version, command, family or lengths, TLVs past its end), and version 1 text or
//! UNIX socket addresses (`unsupported`). No input panics: the header is read by the `ppp` crate
//! (borrowing, no allocation; chosen over `proxy-header` for that and for its TLV iterator that
//! reports a TLV past the end as an error), and every length is checked before it is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use ppp::v2::{Addresses, Command, Header, ParseError};
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::metrics::Metrics;

/// The 12 bytes every version 2 header starts with.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// What a version 1 (text) header starts with.
const V1_SIGNATURE: &[u8; 6] = b"PROXY ";
/// Signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;
/// The longest header taken over TCP (addresses plus TLVs): dnsdist's and HAProxy's headers are
/// well under it; a longer one is `malformed` rather than a buffer a peer can make us allocate.
const MAX_HEADER: usize = 4096;

/// Why a datagram or connection was dropped: the `reason` label (see
/// [`crate::metrics::PROXY_DROP_REASONS`], in the same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// A PROXY header from a peer not in `server.proxy_protocol`.
    Untrusted,
    /// No PROXY header from a peer in `server.proxy_protocol`.
    Missing,
    /// A header that breaks the specification.
    Malformed,
    /// Version 1 text, or UNIX socket addresses.
    Unsupported,
}

impl Drop {
    const ALL: [Self; 4] = [
        Self::Untrusted,
        Self::Missing,
        Self::Malformed,
        Self::Unsupported,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        crate::metrics::PROXY_DROP_REASONS[self as usize]
    }
}

/// The trusted proxies and the drop counters, shared by every listener.
#[derive(Clone)]
pub struct Proxies(Arc<Inner>);

struct Inner {
    trusted: Vec<IpNet>,
    dropped: [IntCounter; 4],
}

impl Proxies {
    /// Peers in `trusted` must send a header; counting into `metrics`.
    pub fn new(trusted: &[IpNet], metrics: &Metrics) -> Self {
        let c = |d: Drop| metrics.proxy_dropped.with_label_values(&[d.as_str()]);
        Self(Arc::new(Inner {
            trusted: trusted.to_vec(),
            dropped: Drop::ALL.map(c),
        }))
    }

    /// Whether `ip` is a trusted proxy (must send a header).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Counts a drop.
    pub fn dropped(&self, why: Drop) {
        self.0.dropped[why as usize].inc();
        tracing::debug!(reason = why.as_str(), "dropped for its PROXY header");
    }

    /// A datagram from `peer`: the DNS message in it and the client it is from, or `None`
    /// (dropped, counted). Costs a slice compare for a datagram from an untrusted peer.
    pub fn datagram<'b>(&self, buf: &'b [u8], peer: SocketAddr) -> Option<(&'b [u8], SocketAddr)> {
        if self.0.trusted.is_empty() || !self.trusts(peer.ip()) {
            if starts_like_a_header(buf) {
                self.dropped(Drop::Untrusted);
                return None;
            }
            return Some((buf, peer));
        }
        match parse(buf, peer) {
            Ok((n, client)) => Some((&buf[n..], client)),
            Err(why) => {
                self.dropped(why);
                None
            }
        }
    }

    /// Reads the header at the start of a TCP connection from a trusted `peer`: the client, or
    /// `None` (dropped and counted; a connection closed or idle before its first byte is not
    /// counted, as load balancers' plain TCP checks do that).
    pub async fn tcp_header<R: AsyncRead + Unpin>(
        &self,
        rd: &mut R,
        peer: SocketAddr,
        idle: Duration,
    ) -> Option<SocketAddr> {
        let mut buf = vec![0u8; V2_FIXED];
        let mut got = 0;
        while got < V2_FIXED {
            match tokio::time::timeout(idle, rd.read(&mut buf[got..])).await {
                Ok(Ok(n)) if n > 0 => got += n,
                _ => {
                    if got > 0 {
                        self.dropped(Drop::Malformed);
                    }
                    return None;
                }
            }
            // Decide as early as the bytes allow: a DNS length prefix is not a signature.
            if let Err(why) = signature(&buf[..got]) {
                self.dropped(why);
                return None;
            }
        }
        let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if V2_FIXED + len > MAX_HEADER {
            self.dropped(Drop::Malformed);
            return None;
        }
        buf.resize(V2_FIXED + len, 0);
        match tokio::time::timeout(idle, rd.read_exact(&mut buf[V2_FIXED..])).await {
            Ok(Ok(_)) => {}
            _ => {
                self.dropped(Drop::Malformed);
                return None;
            }
        }
        match parse(&buf, peer) {
            Ok((_, client)) => Some(client),
            Err(why) => {
                self.dropped(why);
                None
            }
        }
    }

    /// The first message of a TCP connection from an untrusted peer, whose two-byte length
    /// prefix `len` was read: a PROXY header is dropped and counted (`None`) instead of read as
    /// a 3338-byte message; anything else is read whole.
    pub async fn first_message<R: AsyncRead + Unpin>(
        &self,
        rd: &mut R,
        len: [u8; 2],
        idle: Duration,
    ) -> Option<Vec<u8>> {
        let n = usize::from(u16::from_be_bytes(len));
        let mut buf = vec![0u8; n];
        let probe = if len == V2_SIGNATURE[..2] {
            V2_SIGNATURE.len() - 2
        } else if len == V1_SIGNATURE[..2] {
            V1_SIGNATURE.len() - 2
        } else {
            0
        }
        .min(n);
        tokio::time::timeout(idle, rd.read_exact(&mut buf[..probe]))
            .await
            .ok()?
            .ok()?;
        let mut head = [0u8; 12];
        head[..2].copy_from_slice(&len);
        head[2..2 + probe].copy_from_slice(&buf[..probe]);
        if probe > 0 && starts_like_a_header(&head[..2 + probe]) {
            self.dropped(Drop::Untrusted);
            return None;
        }
        tokio::time::timeout(idle, rd.read_exact(&mut buf[probe..]))
            .await
            .ok()?
            .ok()?;
        Some(buf)
    }
}

/// Whether `buf` starts with a PROXY signature (v2 binary or v1 text).
fn starts_like_a_header(buf: &[u8]) -> bool {
    buf.starts_with(V2_SIGNATURE) || buf.starts_with(V1_SIGNATURE)
}

/// Checks the bytes read so far against the version 2 signature.
fn signature(buf: &[u8]) -> Result<(), Drop> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return Ok(());
    }
    let m = buf.len().min(V1_SIGNATURE.len());
    if buf[..m] == V1_SIGNATURE[..m] {
        // Possibly version 1: decided once six bytes are in.
        return if m == V1_SIGNATURE.len() {
            Err(Drop::Unsupported)
        } else {
            Ok(())
        };
    }
    Err(Drop::Missing)
}

/// Reads a version 2 header at the start of `buf` from `peer`: its length and the client.
pub fn parse(buf: &[u8], peer: SocketAddr) -> Result<(usize, SocketAddr), Drop> {
    if buf.starts_with(V1_SIGNATURE) {
        return Err(Drop::Unsupported);
    }
    let header = match Header::try_from(buf) {
        Ok(h) => h,
        Err(ParseError::Prefix) => {
            // A few bytes that are all a signature's start are a truncated header.
            return Err(
                if buf.len() < V2_SIGNATURE.len() && V2_SIGNATURE.starts_with(buf) {
                    Drop::Malformed
                } else {
                    Drop::Missing
                },
            );
        }
        Err(_) => return Err(Drop::Malformed),
    };
    if header.tlvs().any(|t| t.is_err()) {
        return Err(Drop::Malformed);
    }
    let client = match (header.command, header.addresses) {
        (Command::Local, _) | (Command::Proxy, Addresses::Unspecified) => peer,
        (Command::Proxy, Addresses::IPv4(a)) => {
            SocketAddr::new(IpAddr::V4(a.source_address), a.source_port)
        }
        (Command::Proxy, Addresses::IPv6(a)) => {
            SocketAddr::new(IpAddr::V6(a.source_address).to_canonical(), a.source_port)
        }
        (Command::Proxy, Addresses::Unix(_)) => return Err(Drop::Unsupported),
    };
    Ok((header.len(), client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Protocol, Type, Version};

    fn peer() -> SocketAddr {
        "127.0.0.1:5300".parse().unwrap()
    }

    fn header(src: &str) -> Vec<u8> {
        let src: SocketAddr = src.parse().unwrap();
        let dst: SocketAddr = if src.is_ipv4() {
            "127.0.0.1:53".parse().unwrap()
        } else {
            "[::1]:53".parse().unwrap()
        };
        Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Datagram,
            (src, dst),
        )
        .write_tlv(Type::NoOp, &[0; 3])
        .unwrap()
        .build()
        .unwrap()
    }

    #[test]
    fn reads_the_client_and_the_length() {
        let mut d = header("127.0.0.2:4000");
        let n = d.len();
        d.extend_from_slice(b"dns");
        assert_eq!(
            parse(&d, peer()),
            Ok((n, "127.0.0.2:4000".parse().unwrap()))
        );
        let d = header("[fd00::7]:4000");
        assert_eq!(
            parse(&d, peer()).unwrap().1.ip(),
            "fd00::7".parse::<IpAddr>().unwrap()
        );
        // An IPv4 client written as IPv4-mapped IPv6 is the IPv4 client.
        let d = header("[::ffff:127.0.0.3]:1");
        assert_eq!(
            parse(&d, peer()).unwrap().1.ip(),
            "127.0.0.3".parse::<IpAddr>().unwrap()
        );
        // LOCAL (health check): the peer itself.
        let local = Builder::with_addresses(
            Version::Two | Command::Local,
            Protocol::Unspecified,
            Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local, peer()), Ok((16, peer())));
    }

    #[test]
    fn malformed_headers_are_told_apart_and_never_panic() {
        let good = header("127.0.0.2:4000");
        let mut bad_version = good.clone();
        bad_version[12] = 0x11;
        let mut bad_command = good.clone();
        bad_command[12] = 0x2f;
        let mut bad_family = good.clone();
        bad_family[13] = 0x42;
        let mut long = good.clone();
        long[15] = long[15].wrapping_add(40); // length past the end
        let mut short = good.clone();
        short[14] = 0;
        short[15] = 4; // shorter than the IPv4 addresses
        let mut tlv = good.clone();
        let at = tlv.len() - 6; // the NoOp TLV: type, length (2), 3 bytes
        tlv[at + 2] = 0x40; // claims more bytes than there are
        for (what, bytes, want) in [
            ("truncated signature", good[..7].to_vec(), Drop::Malformed),
            ("truncated addresses", good[..20].to_vec(), Drop::Malformed),
            ("version 1", bad_version, Drop::Malformed),
            ("command 15", bad_command, Drop::Malformed),
            ("family 4", bad_family, Drop::Malformed),
            ("length past the end", long, Drop::Malformed),
            ("length under the addresses", short, Drop::Malformed),
            ("TLV past the end", tlv, Drop::Malformed),
            ("plain DNS", vec![0, 7, 1, 0, 0, 1], Drop::Missing),
            (
                "text v1",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
                Drop::Unsupported,
            ),
        ] {
            assert_eq!(parse(&bytes, peer()).map(|_| ()), Err(want), "{what}");
        }
        for n in 0..good.len() {
            let _ = parse(&good[..n], peer());
        }
    }

    #[test]
    fn the_signature_is_decided_as_bytes_arrive() {
        let good = header("127.0.0.2:4000");
        for n in 1..=16 {
            assert_eq!(signature(&good[..n]), Ok(()), "{n} bytes");
        }
        assert_eq!(signature(&[0, 30]), Err(Drop::Missing));
        assert_eq!(signature(b"PRO"), Ok(()));
        assert_eq!(signature(b"PROXY "), Err(Drop::Unsupported));
    }
}
