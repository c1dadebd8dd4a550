//! The answer cache: raw upstream answers keyed by (name, type, class, DO, CD), never a policy
//! decision (policy differs per zone and is applied on every read).
//!
//! TTLs count down from insertion and are decremented on read; negative answers are cached per
//! RFC 2308 (min of the SOA's TTL and its MINIMUM); TC=1 answers are never cached; SERVFAIL for at
//! most a few seconds. Sharded LRUs bound the entry count (`max_entries`; 0 disables the cache)
//! and the bytes the entries take (`max_size`), each shard a sixteenth of each bound.
//!
//! An entry holds the answer once, in the wire form it is served in ([`WireAnswer`]: the message,
//! its TTL offsets and alias targets in compact boxes). What an entry costs is charged by
//! [`CachedAnswer::charge`]: its heap bytes plus [`ENTRY_OVERHEAD`] for the key, the LRU node,
//! the hash slot and the allocator's headers; `tests/cache_memory.rs` checks with a counting
//! allocator that the charge is not below what the entries really allocate.

use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;

use hickory_proto::rr::RecordType;

use crate::config::CacheConfig;
use crate::wire::{WireAnswer, build_wire};

const SHARDS: usize = 16;

/// What an entry costs beyond its answer's and key's bytes: the entry itself in its `Arc`, the
/// LRU node (key and value pointers, list links), the hash slot (with the table's growth slack)
/// and a header per allocation (four: node, key, entry, answer bytes).
pub const ENTRY_OVERHEAD: usize = std::mem::size_of::<CachedAnswer>() + 16 + 40 + 40 + 4 * 16;

/// Cache key: lower-case name without trailing dot, type, class, DO, CD, packed into bytes so
/// that a lookup can borrow a key built on the stack (no allocation per query).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(Box<[u8]>);

/// Longest packed key: 5 bytes of type/class/flags + 255 of name.
pub const KEY_MAX: usize = 260;

impl CacheKey {
    /// Packs a key.
    pub fn new(
        name: &str,
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Self {
        let mut buf = [0u8; KEY_MAX];
        let n = pack_key(&mut buf, name, qtype, qclass, dnssec_ok, checking_disabled);
        Self(buf[..n].into())
    }

    /// The packed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The DO bit of the key.
    pub fn dnssec_ok(&self) -> bool {
        self.0.get(4).is_some_and(|f| f & 1 != 0)
    }

    /// The query type of the key.
    pub fn qtype(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }
}

impl std::borrow::Borrow<[u8]> for CacheKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// Packs a key into `buf`, returning its length (names longer than 255 bytes are cut; such
/// names do not exist in DNS).
pub fn pack_key(
    buf: &mut [u8; KEY_MAX],
    name: &str,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
) -> usize {
    buf[0..2].copy_from_slice(&qtype.to_be_bytes());
    buf[2..4].copy_from_slice(&qclass.to_be_bytes());
    buf[4] = u8::from(dnssec_ok) | (u8::from(checking_disabled) << 1);
    let n = name.len().min(KEY_MAX - 5);
    buf[5..5 + n].copy_from_slice(&name.as_bytes()[..n]);
    5 + n
}

/// An upstream answer as it is kept (fresh answers take the same form before they are served,
/// so a cached and an uncached answer leave as the same bytes).
#[derive(Debug)]
pub struct CachedAnswer {
    /// The answer in wire form, for askers with the key's DO bit and query type.
    pub wire: WireAnswer,
    /// When it was received.
    pub stored: Instant,
    /// How long it stays fresh, in seconds (0: not cacheable).
    pub ttl: u32,
}

impl CachedAnswer {
    /// The form of a fresh upstream answer for askers with this DO bit and query type, and how
    /// long it may be cached under `cfg` (0 = not at all); `None` when it cannot be re-encoded.
    pub fn new(
        message: &Message,
        dnssec_ok: bool,
        qtype: RecordType,
        now: Instant,
        cfg: &CacheConfig,
    ) -> Option<Arc<Self>> {
        Some(Arc::new(Self {
            wire: build_wire(message, dnssec_ok, qtype)?,
            stored: now,
            ttl: cache_ttl(message, cfg).unwrap_or(0),
        }))
    }

    /// The bytes this entry is charged under `key` against `cache.max_size`.
    pub fn charge(&self, key: &CacheKey) -> usize {
        self.charge_for(key.0.len())
    }

    fn charge_for(&self, key_len: usize) -> usize {
        ENTRY_OVERHEAD + key_len + self.wire.heap_bytes()
    }

    /// Whole seconds since it was stored.
    pub fn age(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(u32::MAX)
    }
}

/// One shard: its LRU and the bytes its entries are charged.
struct Shard {
    lru: lru::LruCache<CacheKey, Arc<CachedAnswer>>,
    bytes: usize,
}

/// The cache of one process (it survives snapshot reloads).
pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    /// Entries per shard.
    max_entries: usize,
    /// Bytes per shard.
    max_bytes: usize,
    hasher: foldhash::fast::FixedState,
    /// TTL bounds, read on every hit: an ArcSwap so the read path takes no lock.
    cfg: arc_swap::ArcSwap<CacheConfig>,
    enabled: bool,
}

impl Cache {
    /// A cache bounded by `cfg.max_entries` and `cfg.max_size` (0: no size bound).
    pub fn new(cfg: &CacheConfig) -> Self {
        // Unbounded LRUs with the bounds enforced on insert: no table is allocated up front for a
        // bound that may be far above what is ever kept.
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        lru: lru::LruCache::unbounded(),
                        bytes: 0,
                    })
                })
                .collect(),
            max_entries: cfg.max_entries.div_ceil(SHARDS).max(1),
            max_bytes: match cfg.max_size {
                0 => usize::MAX,
                n => (n / SHARDS).max(1),
            },
            hasher: foldhash::fast::FixedState::with_seed(0x7069_7865_6c67_7561),
            cfg: arc_swap::ArcSwap::from_pointee(cfg.clone()),
            enabled: cfg.max_entries > 0,
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h as usize) % SHARDS]
    }

    /// The current TTL cap (for serving).
    pub fn max_ttl(&self) -> u32 {
        secs(self.cfg.load().max_ttl)
    }

    /// Applies new TTL bounds from a reloaded config (the size stays as started).
    pub fn reconfigure(&self, cfg: &CacheConfig) {
        self.cfg.store(std::sync::Arc::new(cfg.clone()));
    }

    /// A fresh entry, or `None` (an expired one is dropped).
    pub fn get(&self, key: &[u8], now: Instant) -> Option<Arc<CachedAnswer>> {
        if !self.enabled {
            return None;
        }
        let mut shard = match self.shard(key).lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let entry = shard.lru.get(key)?.clone();
        if entry.age(now) >= entry.ttl {
            // Expired: kept for serve-stale while within the window, dropped after.
            if u64::from(entry.age(now)) >= u64::from(entry.ttl) + self.stale_window()
                && let Some(old) = shard.lru.pop(key)
            {
                shard.bytes = shard.bytes.saturating_sub(old.charge_for(key.len()));
            }
            return None;
        }
        Some(entry)
    }

    fn stale_window(&self) -> u64 {
        self.cfg.load().serve_stale.as_secs()
    }

    /// An expired entry still within the serve-stale window (RFC 8767), for when every upstream
    /// failed. SERVFAIL entries are never served stale.
    pub fn get_stale(&self, key: &[u8], now: Instant) -> Option<Arc<CachedAnswer>> {
        if !self.enabled {
            return None;
        }
        let window = self.stale_window();
        let mut shard = match self.shard(key).lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let entry = shard.lru.get(key)?.clone();
        let age = u64::from(entry.age(now));
        (age < u64::from(entry.ttl) + window && entry.wire.rcode != ResponseCode::ServFail)
            .then_some(entry)
    }

    /// The current bounds (to build an entry with [`CachedAnswer::new`]).
    pub fn config(&self) -> Arc<CacheConfig> {
        self.cfg.load_full()
    }

    /// Stores an answer built by [`CachedAnswer::new`] if it may be cached; returns whether it
    /// was.
    pub fn put(&self, key: CacheKey, entry: Arc<CachedAnswer>) -> bool {
        if !self.enabled || entry.ttl == 0 {
            return false;
        }
        let mut shard = match self.shard(key.as_bytes()).lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let charge = entry.charge(&key);
        if charge > self.max_bytes {
            return false;
        }
        if let Some((old_key, old)) = shard.lru.push(key, entry) {
            // The same key replaced, or (unbounded LRU) nothing else.
            shard.bytes = shard.bytes.saturating_sub(old.charge(&old_key));
        }
        shard.bytes += charge;
        while shard.lru.len() > self.max_entries || shard.bytes > self.max_bytes {
            let Some((k, v)) = shard.lru.pop_lru() else {
                break;
            };
            shard.bytes = shard.bytes.saturating_sub(v.charge(&k));
        }
        true
    }

    /// Bytes the entries are charged (for tests and the size bound).
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.bytes).unwrap_or(0))
            .sum()
    }

    /// Builds the entry for a fresh upstream answer and stores it if it may be cached.
    pub fn insert(&self, key: CacheKey, message: &Message, now: Instant) -> bool {
        let qtype = RecordType::from(key.qtype());
        match CachedAnswer::new(message, key.dnssec_ok(), qtype, now, &self.config()) {
            Some(e) => self.put(key, e),
            None => false,
        }
    }

    /// Number of entries (for the metrics gauge).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.lru.len()).unwrap_or(0))
            .sum()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// How long an answer may be cached, or `None` if it must not be.
pub fn cache_ttl(m: &Message, cfg: &CacheConfig) -> Option<u32> {
    if m.metadata.truncation {
        return None;
    }
    let min_ttl = secs(cfg.min_ttl);
    let max_ttl = secs(cfg.max_ttl);
    let ttl = match m.metadata.response_code {
        ResponseCode::NoError if !m.answers.is_empty() => {
            let t = m.answers.iter().map(|r| r.ttl).min()?;
            t.clamp(min_ttl, max_ttl.max(min_ttl))
        }
        ResponseCode::NoError | ResponseCode::NXDomain => {
            // RFC 2308 §5: negative answers are cached for min(SOA TTL, SOA MINIMUM); without a
            // SOA they are not cached at all.
            let soa = m.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })?;
            soa.min(secs(cfg.negative_max_ttl))
        }
        ResponseCode::ServFail => secs(cfg.servfail_ttl),
        _ => return None,
    };
    (ttl > 0).then_some(ttl)
}

/// Cache bounds for tests: `max_entries`, TTLs 0..1 d, negative 1 h, SERVFAIL 5 s, stale 10 s.
#[cfg(test)]
pub(crate) fn test_config(max_entries: usize) -> CacheConfig {
    CacheConfig {
        max_entries,
        max_size: 0,
        min_ttl: Duration::ZERO,
        max_ttl: Duration::from_secs(86_400),
        negative_max_ttl: Duration::from_secs(3_600),
        servfail_ttl: Duration::from_secs(5),
        serve_stale: Duration::from_secs(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, Record};

    fn cfg() -> CacheConfig {
        test_config(4)
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        Record::from_rdata(
            name("example.test."),
            ttl,
            RData::SOA(SOA::new(
                name("ns.example.test."),
                name("h.example.test."),
                1,
                1,
                1,
                1,
                minimum,
            )),
        )
    }

    fn msg(rcode: ResponseCode) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.add_query(hickory_proto::op::Query::query(
            name("a.test."),
            hickory_proto::rr::RecordType::A,
        ));
        m
    }

    #[test]
    fn ttl_rules() {
        let c = cfg();
        let mut pos = msg(ResponseCode::NoError);
        pos.answers.push(Record::from_rdata(
            name("a.test."),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        pos.answers.push(Record::from_rdata(
            name("a.test."),
            60,
            RData::A(A::new(192, 0, 2, 2)),
        ));
        assert_eq!(cache_ttl(&pos, &c), Some(60));
        let mut nx = msg(ResponseCode::NXDomain);
        nx.authorities.push(soa(3600, 300));
        assert_eq!(cache_ttl(&nx, &c), Some(300));
        let mut nodata = msg(ResponseCode::NoError);
        nodata.authorities.push(soa(120, 300));
        assert_eq!(cache_ttl(&nodata, &c), Some(120));
        assert_eq!(
            cache_ttl(&msg(ResponseCode::NXDomain), &c),
            None,
            "no SOA, no negative caching"
        );
        assert_eq!(cache_ttl(&msg(ResponseCode::ServFail), &c), Some(5));
        assert_eq!(cache_ttl(&msg(ResponseCode::Refused), &c), None);
        let mut tc = pos.clone();
        tc.metadata.truncation = true;
        assert_eq!(cache_ttl(&tc, &c), None);
    }

    #[test]
    fn expired_entries_are_kept_for_serve_stale_within_the_window() {
        let cache = Cache::new(&cfg());
        let now = Instant::now();
        let mut pos = msg(ResponseCode::NoError);
        pos.answers.push(Record::from_rdata(
            name("a.test."),
            2,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let key = CacheKey::new("s.test", 1, 1, false, false);
        cache.insert(key.clone(), &pos, now);
        assert!(
            cache
                .get(key.as_bytes(), now + Duration::from_secs(3))
                .is_none(),
            "expired"
        );
        assert!(
            cache
                .get_stale(key.as_bytes(), now + Duration::from_secs(3))
                .is_some(),
            "stale within 10 s"
        );
        assert!(
            cache
                .get_stale(key.as_bytes(), now + Duration::from_secs(13))
                .is_none(),
            "past the window"
        );
    }

    #[test]
    fn bounded_and_expiring() {
        let cache = Cache::new(&cfg());
        let now = Instant::now();
        let mut pos = msg(ResponseCode::NoError);
        pos.answers.push(Record::from_rdata(
            name("a.test."),
            2,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        for i in 0..200 {
            let key = CacheKey::new(&format!("n{i}.test"), 1, 1, false, false);
            assert!(cache.insert(key, &pos, now));
        }
        assert!(cache.len() <= SHARDS, "bounded: {}", cache.len());
        let key = CacheKey::new("x.test", 1, 1, false, false);
        cache.insert(key.clone(), &pos, now);
        let hit = cache
            .get(key.as_bytes(), now + Duration::from_secs(1))
            .unwrap();
        // One second later the answer has one second left (the encoder's aging of the same
        // entry is tested in `respond`).
        assert_eq!(hit.ttl - hit.age(now + Duration::from_secs(1)), 1);
        assert_eq!(hit.wire.ttls().next().map(|t| t.1), Some(2));
        assert!(
            cache
                .get(key.as_bytes(), now + Duration::from_secs(2))
                .is_none()
        );
        let off = Cache::new(&CacheConfig {
            max_entries: 0,
            ..cfg()
        });
        assert!(!off.insert(key.clone(), &pos, now));
        assert!(off.get(key.as_bytes(), now).is_none());
    }
}
