//! Client pseudonyms: a keyed hash of the address ([`Pseudonymizer`], SipHash-2-4 under a
//! 128-bit key kept in `query_log.key_file` or derived from `query_log.key`), or the masked
//! network ([`masked`]). Used by the query log's writer and by the recorder's top clients, so a
//! client address never leaves the process unless `client = "full"` is configured.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::config::{ClientMode, QueryLogConfig};

/// Keyed pseudonyms of client addresses: SipHash-2-4 (a PRF designed for keyed hashing of short
/// inputs) under a 128-bit key. Without the key a pseudonym cannot be linked back to an address,
/// even by hashing the whole IPv4 space.
#[derive(Clone, PartialEq, Eq)]
pub struct Pseudonymizer {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

/// SipHash-2-4 of `data` under the key (`k0`, `k1`): the `siphasher` crate, which gives the
/// output std's (deprecated) `SipHasher` gave, so pseudonyms and derived keys stay as they were.
fn siphash(k0: u64, k1: u64, data: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
    h.write(data);
    h.finish()
}

impl Pseudonymizer {
    /// A key that lives as long as the process (no query log configured).
    pub fn random() -> Self {
        Self {
            k0: rand::random(),
            k1: rand::random(),
        }
    }

    /// A key derived from a configured secret.
    pub fn from_secret(s: &str) -> Self {
        Self {
            k0: siphash(0x7069_7865_6c67_7561, 0x7264_2d6b_6579_2d30, s.as_bytes()),
            k1: siphash(0x7069_7865_6c67_7561, 0x7264_2d6b_6579_2d31, s.as_bytes()),
        }
    }

    /// The key of a query-log config: `key` if given, else the key file, created with a random
    /// key (mode 0600) when it does not exist. A key file that exists but does not hold a key is
    /// an error, never silently replaced (that would change every pseudonym).
    pub fn for_config(cfg: &QueryLogConfig) -> io::Result<Self> {
        if let Some(k) = &cfg.key {
            return Ok(Self::from_secret(&k.0));
        }
        load_or_create_key(&cfg.key_file)
    }

    /// The pseudonym of an address: `c-` and 16 hex digits. IPv4-mapped IPv6 addresses are
    /// hashed as IPv4, so a dual-stack listener does not give one client two names.
    pub fn pseudonym(&self, ip: IpAddr) -> String {
        let mut s = String::with_capacity(18);
        write_pseudonym(self.hash(ip), &mut s);
        s
    }

    /// The keyed hash a pseudonym spells out ([`write_pseudonym`] turns it into the text): the
    /// recorder's top clients compare these and format only the clients they keep.
    pub fn hash(&self, ip: IpAddr) -> u64 {
        match ip.to_canonical() {
            IpAddr::V4(a) => siphash(self.k0, self.k1, &a.octets()),
            IpAddr::V6(a) => siphash(self.k0, self.k1, &a.octets()),
        }
    }

    /// A client as written under `mode`.
    pub fn client(&self, ip: IpAddr, mode: ClientMode) -> Option<String> {
        match mode {
            ClientMode::Hash => Some(self.pseudonym(ip)),
            ClientMode::Masked => Some(masked(ip)),
            ClientMode::Full => Some(ip.to_canonical().to_string()),
            ClientMode::None => None,
        }
    }
}

/// Appends the pseudonym of the keyed hash `h` ([`Pseudonymizer::hash`]) to `out`.
pub fn write_pseudonym(h: u64, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "c-{h:016x}");
}

/// The network of an address: /24 for IPv4, /56 for IPv6 (a typical customer prefix).
pub fn masked(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let m = u128::from(a) & (u128::MAX << 72);
            format!("{}/56", std::net::Ipv6Addr::from(m))
        }
    }
}

fn load_or_create_key(path: &Path) -> io::Result<Pseudonymizer> {
    let parse = |text: &str| -> Option<Pseudonymizer> {
        let t = text.trim();
        if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let k0 = u64::from_str_radix(&t[..16], 16).ok()?;
        let k1 = u64::from_str_radix(&t[16..], 16).ok()?;
        Some(Pseudonymizer { k0, k1 })
    };
    match File::open(path) {
        Ok(f) => {
            let mut s = String::new();
            f.take(256).read_to_string(&mut s)?;
            parse(&s).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: not a query-log key (expected 32 hex digits); delete it to generate a new key (every pseudonym changes)",
                        path.display()
                    ),
                )
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let k: [u64; 2] = [rand::random(), rand::random()];
            let text = format!("{:016x}{:016x}\n", k[0], k[1]);
            // create_new: two processes racing both end up with the key written first.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    tracing::info!(key_file = %path.display(), "query log: generated a new pseudonym key");
                    Ok(Pseudonymizer { k0: k[0], k1: k[1] })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(path),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::querylog::test_config as cfg;

    #[test]
    fn pseudonyms_are_keyed_and_stable() {
        let a = Pseudonymizer::from_secret("0123456789abcdef");
        let b = Pseudonymizer::from_secret("0123456789abcdeF");
        let ip: IpAddr = "10.20.3.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.20.3.7".parse().unwrap();
        assert_eq!(a.pseudonym(ip), a.pseudonym(ip));
        assert_eq!(a.pseudonym(ip), a.pseudonym(mapped));
        assert_ne!(a.pseudonym(ip), b.pseudonym(ip));
        assert_eq!(a.pseudonym(ip).len(), 18);
        assert!(!a.pseudonym(ip).contains("10.20"));
        assert_eq!(masked(ip), "10.20.3.0/24");
        assert_eq!(
            masked("2001:db8:aa:bbcc:1::9".parse().unwrap()),
            "2001:db8:aa:bb00::/56"
        );
        assert_eq!(
            a.client(mapped, ClientMode::Full).as_deref(),
            Some("10.20.3.7")
        );
        assert_eq!(a.client(ip, ClientMode::None), None);
    }

    /// The SipHash-2-4 reference vector (Aumasson & Bernstein, appendix A): key 00..0f, message
    /// 00..0e.
    #[test]
    fn siphash_is_siphash_2_4() {
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(
            siphash(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908, &msg),
            0xa129_ca61_49be_45e5
        );
    }

    /// Known answers: a fixed key and address give a fixed pseudonym, release after release
    /// (operators correlate query logs across upgrades; a change here renames every client).
    /// The values were computed with the SipHash-2-4 implementation pixelguard shipped first
    /// (std's `SipHasher`).
    #[test]
    fn pseudonyms_are_known_answers() {
        let p = Pseudonymizer::from_secret("0123456789abcdef");
        assert_eq!(
            (p.k0, p.k1),
            (0xff09_a508_998f_372a, 0xcfd1_465e_4fb1_2237),
            "key derived from query_log.key"
        );
        assert_eq!(
            p.pseudonym("10.20.3.7".parse().unwrap()),
            "c-2bd19a23f1c95c66"
        );
        assert_eq!(
            p.pseudonym("::ffff:10.20.3.7".parse().unwrap()),
            "c-2bd19a23f1c95c66"
        );
        assert_eq!(
            p.pseudonym("2001:db8::53".parse().unwrap()),
            "c-c3ea444a20f2c709"
        );
        // A key file's 32 hex digits are k0 then k1.
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        std::fs::write(&c.key_file, "00112233445566778899aabbccddeeff\n").unwrap();
        let p = Pseudonymizer::for_config(&c).unwrap();
        assert_eq!(
            p.pseudonym("10.20.3.7".parse().unwrap()),
            "c-e60cd6b3677bc439"
        );
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let k1 = Pseudonymizer::for_config(&c).unwrap();
        let k2 = Pseudonymizer::for_config(&c).unwrap();
        assert_eq!(k1, k2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&c.key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file is private: {mode:o}");
        std::fs::write(&c.key_file, "garbage").unwrap();
        assert!(
            Pseudonymizer::for_config(&c).is_err(),
            "never silently replaced"
        );
    }
}
