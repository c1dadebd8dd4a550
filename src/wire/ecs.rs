//! EDNS Client Subnet (RFC 7871, option code 8) in a request: [`Ecs`], read from the OPT
//! record's options by both decoders (the fast parser hands it the OPT rdata it already found;
//! the full decoder finds the OPT record with [`opt_rdata`]), and the echo every answer to such
//! a request carries ([`Ecs::write_echo`], scope prefix 0: the answer is good for every client,
//! RFC 7871 §7.2.1).
//!
//! Strict as RFC 7871 §6 and §7.1.1 ask of a server: an unknown family, a source prefix longer
//! than the family's address, a non-zero scope prefix in a query, an address of the wrong length
//! or with bits set past the source prefix, or a second ECS option make the request FORMERR
//! ([`BadEcs`]). Other options are skipped; a broken option framing ends the walk (hickory's own
//! decoder ignores such options too).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{OPT, be16};

/// EDNS option code of Client Subnet.
pub const ECS_CODE: u16 = 8;

/// The Client Subnet of a request: family, source prefix and the address bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ecs {
    /// 1 = IPv4, 2 = IPv6.
    family: u16,
    /// SOURCE PREFIX-LENGTH.
    source: u8,
    /// The address, zero past the source prefix.
    addr: [u8; 16],
}

/// A Client Subnet option that breaks RFC 7871: the request is answered FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEcs;

impl Ecs {
    /// The network's address (the client as far as the forwarder disclosed it).
    pub fn ip(&self) -> IpAddr {
        if self.family == 1 {
            IpAddr::V4(Ipv4Addr::new(
                self.addr[0],
                self.addr[1],
                self.addr[2],
                self.addr[3],
            ))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.addr))
        }
    }

    /// SOURCE PREFIX-LENGTH.
    pub fn source_prefix(&self) -> u8 {
        self.source
    }

    fn addr_len(&self) -> usize {
        usize::from(self.source).div_ceil(8)
    }

    /// Writes the option as an answer echoes it: the request's family, source prefix and
    /// address, scope prefix 0.
    pub fn write_echo(&self, out: &mut Vec<u8>) {
        let n = self.addr_len();
        out.extend_from_slice(&ECS_CODE.to_be_bytes());
        out.extend_from_slice(&(4 + n as u16).to_be_bytes());
        out.extend_from_slice(&self.family.to_be_bytes());
        out.push(self.source);
        out.push(0);
        out.extend_from_slice(&self.addr[..n]);
    }

    /// Reads one option's data.
    fn parse(data: &[u8]) -> Result<Self, BadEcs> {
        let family = be16(data, 0).ok_or(BadEcs)?;
        let source = *data.get(2).ok_or(BadEcs)?;
        let scope = *data.get(3).ok_or(BadEcs)?;
        let max = match family {
            1 => 32,
            2 => 128,
            _ => return Err(BadEcs),
        };
        if source > max || scope != 0 {
            return Err(BadEcs);
        }
        let mut e = Self {
            family,
            source,
            addr: [0; 16],
        };
        let bytes = &data[4..];
        if bytes.len() != e.addr_len() {
            return Err(BadEcs);
        }
        // Bits past the source prefix must be zero (RFC 7871 §6).
        if let Some(&last) = bytes.last()
            && source % 8 != 0
            && last & (0xff >> (source % 8)) != 0
        {
            return Err(BadEcs);
        }
        e.addr[..bytes.len()].copy_from_slice(bytes);
        Ok(e)
    }
}

/// The Client Subnet among an OPT record's options (its rdata), if any.
pub fn from_options(mut rdata: &[u8]) -> Result<Option<Ecs>, BadEcs> {
    let mut found = None;
    while rdata.len() >= 4 {
        let code = be16(rdata, 0).unwrap_or(0);
        let len = usize::from(be16(rdata, 2).unwrap_or(0));
        let Some(data) = rdata.get(4..4 + len) else {
            break;
        };
        if code == ECS_CODE {
            if found.is_some() {
                return Err(BadEcs);
            }
            found = Some(Ecs::parse(data)?);
        }
        rdata = &rdata[4 + len..];
    }
    Ok(found)
}

/// Skips a (possibly compressed) name at `i`; the offset after it.
fn skip_name(raw: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *raw.get(i)?;
        match len {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => return Some(i + 2),
            l if l < 64 => i += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// The rdata of the first OPT record of a message's additional section, for the full path
/// (any message shape: several questions, compressed names, records before the OPT).
pub fn opt_rdata(raw: &[u8]) -> Option<&[u8]> {
    let qd = be16(raw, 4)?;
    let rest = u32::from(be16(raw, 6)?) + u32::from(be16(raw, 8)?);
    let ar = u32::from(be16(raw, 10)?);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(raw, i)? + 4;
    }
    for n in 0..rest + ar {
        i = skip_name(raw, i)?;
        let rtype = be16(raw, i)?;
        let rdlen = usize::from(be16(raw, i + 8)?);
        let rdata = raw.get(i + 10..i + 10 + rdlen)?;
        if n >= rest && rtype == OPT {
            return Some(rdata);
        }
        i += 10 + rdlen;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(code: u16, data: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_and_echoes_with_scope_zero() {
        let o = opt(8, &[0, 1, 24, 0, 10, 1, 2]);
        let e = from_options(&o).unwrap().unwrap();
        assert_eq!(e.ip(), "10.1.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(e.source_prefix(), 24);
        let mut out = Vec::new();
        e.write_echo(&mut out);
        assert_eq!(out, o);
        let v6 = opt(8, &[0, 2, 56, 0, 0xfd, 0, 0, 0, 0, 0, 1]);
        let e = from_options(&v6).unwrap().unwrap();
        assert_eq!(e.ip(), "fd00:0:0:100::".parse::<IpAddr>().unwrap());
        // Source 0 (a client asking for no ECS): no address bytes.
        assert!(from_options(&opt(8, &[0, 1, 0, 0])).unwrap().is_some());
        // Other options around it are skipped.
        let mut mixed = opt(10, &[1, 2, 3, 4, 5, 6, 7, 8]);
        mixed.extend(opt(8, &[0, 1, 32, 0, 127, 0, 0, 2]));
        assert_eq!(
            from_options(&mixed).unwrap().unwrap().ip(),
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(from_options(&opt(10, &[1; 8])), Ok(None));
    }

    #[test]
    fn malformed_options_are_formerr() {
        for (what, data) in [
            ("family 3", vec![0, 3, 8, 0, 10]),
            ("v4 prefix 33", vec![0, 1, 33, 0, 1, 2, 3, 4, 5]),
            ("v6 prefix 129", [vec![0, 2, 129, 0], vec![0; 17]].concat()),
            ("scope in a query", vec![0, 1, 24, 24, 10, 1, 2]),
            ("address too long", vec![0, 1, 24, 0, 10, 1, 2, 3]),
            ("address too short", vec![0, 1, 24, 0, 10, 1]),
            ("bits past the prefix", vec![0, 1, 23, 0, 10, 1, 3]),
            ("no prefix bytes", vec![0, 1]),
            ("empty", vec![]),
        ] {
            assert_eq!(from_options(&opt(8, &data)), Err(BadEcs), "{what}");
        }
        let mut two = opt(8, &[0, 1, 8, 0, 10]);
        two.extend(opt(8, &[0, 1, 8, 0, 11]));
        assert_eq!(from_options(&two), Err(BadEcs), "two ECS options");
    }

    #[test]
    fn finds_the_opt_record_in_any_shape() {
        use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
        use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
        use hickory_proto::rr::{Name, RecordType};
        let mut m = Message::new(1, MessageType::Query, OpCode::Query);
        let name = Name::from_ascii("a.example.").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.add_query(Query::query(name, RecordType::AAAA));
        let mut e = Edns::new();
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            [10, 0, 0, 7].into(),
            32,
            0,
        )));
        m.set_edns(e);
        let raw = m.to_vec().unwrap();
        let ecs = from_options(opt_rdata(&raw).unwrap()).unwrap().unwrap();
        assert_eq!(ecs.ip(), "10.0.0.7".parse::<IpAddr>().unwrap());
        // Truncated messages never panic.
        for n in 0..raw.len() {
            let _ = opt_rdata(&raw[..n]).map(from_options);
        }
    }
}
