//! Discovery of Designated Resolvers (DDR, RFC 9462; SVCB for DNS, RFC 9461): the SVCB records
//! that announce pixelguard's own encrypted listeners, answered to `_dns.resolver.arpa` and to
//! `_dns.<tls_name>` when `[server]` has a DoT or DoH listener. One record per distinct port:
//! DoT (priority 1, alpn `dot`), then DoH (alpn `h2`, `dohpath=/dns-query{?dns}`), each with the
//! target `tls_name` and its port. The rdata is encoded by hickory-proto's SVCB type.

use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::svcb::{Alpn, SVCB, SvcParamKey, SvcParamValue, Unknown};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::config::ServerConfig;

/// TTL of the DDR answers.
pub const DDR_TTL: u32 = 300;
/// The DoH URI template announced (RFC 9461 §5: `dohpath`, SvcParamKey 7).
pub const DOH_PATH_TEMPLATE: &str = "/dns-query{?dns}";
/// SvcParamKey of `dohpath` (RFC 9461), not named by hickory-proto.
const KEY_DOHPATH: u16 = 7;

/// The SVCB rdata (wire format, uncompressed target) of every encrypted endpoint; empty when
/// there is none.
pub fn endpoints(server: &ServerConfig) -> Vec<Vec<u8>> {
    let Some(tls) = &server.tls else {
        return Vec::new();
    };
    let Ok(target) = Name::from_ascii(format!("{}.", tls.name)) else {
        return Vec::new();
    };
    let ports = |addrs: &[std::net::SocketAddr]| {
        let mut p: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let dot = ports(&server.tls_listen);
    let doh = ports(&server.https_listen);
    let mut out = Vec::new();
    let mut priority = 1u16;
    for (port, doh) in dot
        .iter()
        .map(|&p| (p, false))
        .chain(doh.iter().map(|&p| (p, true)))
    {
        let alpn = if doh { "h2" } else { "dot" };
        let mut params = vec![
            (
                SvcParamKey::Alpn,
                SvcParamValue::Alpn(Alpn(vec![alpn.to_owned()])),
            ),
            (SvcParamKey::Port, SvcParamValue::Port(port)),
        ];
        if doh {
            params.push((
                SvcParamKey::Unknown(KEY_DOHPATH),
                SvcParamValue::Unknown(Unknown(DOH_PATH_TEMPLATE.as_bytes().to_vec())),
            ));
        }
        let rr = SVCB::new(priority, target.clone(), params);
        let mut bytes = Vec::new();
        let mut enc = BinEncoder::new(&mut bytes);
        if rr.emit(&mut enc).is_ok() {
            out.push(bytes);
            priority = priority.saturating_add(1);
        }
    }
    out
}

/// Whether `name` (lower case, no trailing dot) is `_dns.<tls_name>`: pixelguard's own DDR name.
pub fn is_own_name(server: &ServerConfig, name: &str) -> bool {
    server
        .tls
        .as_ref()
        .is_some_and(|t| name.strip_prefix("_dns.") == Some(t.name.as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hickory_proto::rr::RData;
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::rdata::SVCB as Svcb;
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};

    #[test]
    fn dohpath_is_key_7_and_records_decode() {
        let mut enc = Vec::new();
        let rr = SVCB::new(
            2,
            Name::from_ascii("dns.example.org.").unwrap(),
            vec![(
                SvcParamKey::Unknown(KEY_DOHPATH),
                SvcParamValue::Unknown(Unknown(DOH_PATH_TEMPLATE.as_bytes().to_vec())),
            )],
        );
        rr.emit(&mut BinEncoder::new(&mut enc)).unwrap();
        // priority 2, the name uncompressed, key 7, length, the template.
        assert_eq!(&enc[..2], &[0, 2]);
        let name_len = "dns.example.org.".len() + 1;
        assert_eq!(&enc[2 + name_len..2 + name_len + 2], &[0, 7]);
        let mut d = BinDecoder::new(&enc);
        let back = RData::read(&mut d, RecordType::SVCB, Restrict::new(enc.len() as u16)).unwrap();
        let RData::SVCB(s) = back else { panic!() };
        let _: &Svcb = &s;
        assert_eq!(s.svc_priority, 2);
    }
}
