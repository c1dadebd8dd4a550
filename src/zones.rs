//! Client address → network zone, by longest matching CIDR prefix over all zones.
//!
//! Built once per snapshot; lookups are a handful of hash probes (one per distinct prefix length
//! in use, longest first), no allocation and no lock. A client in no zone gets `None`, and the
//! pipeline refuses it: pixelguard is never an open resolver.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Index of a zone in the snapshot's zone table.
pub type ZoneId = u16;

/// The compiled network → zone table.
#[derive(Debug, Default, Clone)]
pub struct ZoneTable {
    /// (prefix length, masked address → zone), longest prefix first.
    v4: Vec<(u8, HashMap<u32, ZoneId>)>,
    v6: Vec<(u8, HashMap<u128, ZoneId>)>,
}

impl ZoneTable {
    /// Builds the table from (network, zone) pairs. A network listed twice keeps its first zone
    /// (config validation rejects that case before it gets here).
    pub fn new(nets: impl IntoIterator<Item = (IpNet, ZoneId)>) -> Self {
        let mut v4: HashMap<u8, HashMap<u32, ZoneId>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, ZoneId>> = HashMap::new();
        for (net, zone) in nets {
            match net {
                IpNet::V4(n) => {
                    let len = n.prefix_len();
                    v4.entry(len)
                        .or_default()
                        .entry(mask4(u32::from(n.network()), len))
                        .or_insert(zone);
                }
                IpNet::V6(n) => {
                    let len = n.prefix_len();
                    v6.entry(len)
                        .or_default()
                        .entry(mask6(u128::from(n.network()), len))
                        .or_insert(zone);
                }
            }
        }
        let mut v4: Vec<_> = v4.into_iter().collect();
        v4.sort_by_key(|e| std::cmp::Reverse(e.0));
        let mut v6: Vec<_> = v6.into_iter().collect();
        v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        Self { v4, v6 }
    }

    /// The zone of a client address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as seen on a
    /// dual-stack socket) are looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Option<ZoneId> {
        match ip {
            IpAddr::V4(a) => self.lookup4(u32::from(a)),
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.lookup4(u32::from(v4));
                }
                let x = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask6(x, *len)).copied())
            }
        }
    }

    fn lookup4(&self, x: u32) -> Option<ZoneId> {
        self.v4
            .iter()
            .find_map(|(len, m)| m.get(&mask4(x, *len)).copied())
    }
}

fn mask4(x: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        x & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

fn mask6(x: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        x & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ZoneTable {
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        ZoneTable::new([
            (n("10.10.0.0/16"), 1),
            (n("10.10.50.0/24"), 2),
            (n("10.20.0.0/16"), 3),
            (n("fd00:10::/48"), 1),
            (n("0.0.0.0/0"), 9),
            (n("127.0.0.3/32"), 4),
        ])
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.lookup(ip("10.10.1.1")), Some(1));
        assert_eq!(t.lookup(ip("10.10.50.7")), Some(2));
        assert_eq!(t.lookup(ip("10.20.3.7")), Some(3));
        assert_eq!(t.lookup(ip("192.0.2.1")), Some(9));
        assert_eq!(t.lookup(ip("127.0.0.3")), Some(4));
        assert_eq!(t.lookup(ip("fd00:10::5")), Some(1));
        assert_eq!(t.lookup(ip("fd00:11::5")), None);
        assert_eq!(t.lookup(ip("::ffff:10.10.50.1")), Some(2));
    }

    #[test]
    fn empty_table_refuses_everyone() {
        let t = ZoneTable::new([]);
        assert_eq!(t.lookup("127.0.0.1".parse().unwrap()), None);
    }
}
