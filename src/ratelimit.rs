//! Per-client rate limiting: a token bucket per client address (IPv6 grouped by /56, since one
//! household or host usually holds a whole /64 or more), refilled at the zone's `qps` up to its
//! `burst`. Memory stays bounded under a spoofed-source flood: each shard is an LRU of at most
//! `max_clients / SHARDS` buckets, and the least recently seen client is forgotten first (which
//! only ever errs toward letting a query through).

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Instant;

const SHARDS: usize = 16;

/// Default cap on tracked clients.
pub const DEFAULT_MAX_CLIENTS: usize = 100_000;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f32,
    last: Instant,
}

/// The per-client buckets of the process (they survive reloads; limits come from the zone).
pub struct RateLimiter {
    shards: Vec<Mutex<lru::LruCache<u128, Bucket>>>,
    hasher: foldhash::fast::FixedState,
}

/// The bucket key: an IPv4 address, or the /56 prefix of an IPv6 one (IPv4-mapped as IPv4).
pub fn client_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(a) >> 72) << 72 | 1,
        },
    }
}

impl RateLimiter {
    /// A limiter tracking at most `max_clients` clients.
    pub fn new(max_clients: usize) -> Self {
        let per =
            NonZeroUsize::new(max_clients.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(lru::LruCache::new(per)))
                .collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x7261_7465),
        }
    }

    /// Takes one token for `ip`; false when the client is over its limit. `qps = 0` = no limit.
    pub fn allow(&self, ip: IpAddr, qps: f32, burst: f32, now: Instant) -> bool {
        if qps <= 0.0 {
            return true;
        }
        let key = client_key(ip);
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut s = match shard.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let burst = burst.max(1.0);
        let b = s.get_or_insert_mut(key, || Bucket {
            tokens: burst,
            last: now,
        });
        let dt = now.saturating_duration_since(b.last).as_secs_f32();
        b.tokens = (b.tokens + dt * qps).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a query from `ip` would be admitted now, without taking a token (explain).
    pub fn peek(&self, ip: IpAddr, qps: f32, burst: f32, now: Instant) -> bool {
        if qps <= 0.0 {
            return true;
        }
        let key = client_key(ip);
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let s = match shard.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        s.peek(&key).is_none_or(|b| {
            let dt = now.saturating_duration_since(b.last).as_secs_f32();
            (b.tokens + dt * qps).min(burst.max(1.0)) >= 1.0
        })
    }

    /// Clients currently tracked.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_and_limits() {
        let r = RateLimiter::new(100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t = Instant::now();
        let allowed = (0..50).filter(|_| r.allow(ip, 10.0, 20.0, t)).count();
        assert_eq!(allowed, 20, "the burst, then nothing");
        assert!(!r.allow(ip, 10.0, 20.0, t));
        assert!(
            r.allow(ip, 10.0, 20.0, t + Duration::from_millis(150)),
            "refilled at qps"
        );
        assert!(
            r.allow("10.0.0.2".parse().unwrap(), 10.0, 20.0, t),
            "per client"
        );
        assert!(r.allow(ip, 0.0, 0.0, t), "qps 0 = unlimited");
    }

    #[test]
    fn ipv6_groups_by_56_and_memory_is_bounded() {
        assert_eq!(
            client_key("2001:db8:0:ab00::1".parse().unwrap()),
            client_key("2001:db8:0:abff:ffff::9".parse().unwrap())
        );
        assert_ne!(
            client_key("2001:db8:0:ab00::1".parse().unwrap()),
            client_key("2001:db8:0:ac00::1".parse().unwrap())
        );
        assert_eq!(
            client_key("::ffff:10.0.0.1".parse().unwrap()),
            client_key("10.0.0.1".parse().unwrap())
        );
        let r = RateLimiter::new(1_000);
        let t = Instant::now();
        for i in 0..20_000u32 {
            r.allow(IpAddr::from(i.to_be_bytes()), 1.0, 1.0, t);
        }
        assert!(r.tracked() <= 1_008, "bounded: {}", r.tracked());
    }
}
