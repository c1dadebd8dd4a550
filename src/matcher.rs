//! Compact domain-suffix matcher: maps a set of canonical domain names to a `u32` payload each and
//! answers, for a query name, which of its suffixes are in the set, most specific first.
//!
//! This module owns the in-memory representation of one block/allow list ([`Matcher`]), the way it
//! is loaded ([`MatcherBuilder`]), and the per-query preparation shared by every list
//! ([`QueryName`]). It does not validate or canonicalise names; callers hand it canonical bytes
//! (ASCII lower case, no trailing dot), but every entry point accepts arbitrary bytes without
//! panicking and simply compares bytes as given.
//!
//! # Representation
//! * One byte arena holds every stored name once, as a record `[len: u8][payload: u32 LE][name]`.
//!   There is no per-name allocation.
//! * An open-addressing (linear probing) table of `u32` slots points into the arena. A slot holds
//!   the record's arena offset in its low `off_bits` bits and, in the remaining high bits, a tag
//!   taken from the low bits of the name's 32-bit hash, so most non-matching probes never touch
//!   the arena. The home slot is `(hash * capacity) >> 32`, so capacity need not be a power of two.
//!
//! # Invariants
//! * Every name in the arena is distinct, at most [`MAX_NAME_LEN`] bytes, and valid UTF-8 (it
//!   came from a `&str`); the arena is at most `u32::MAX` bytes, so offsets fit in a `u32` and no
//!   occupied slot can equal the empty sentinel `u32::MAX`.
//! * The table has more slots than entries (load factor at most [`LOAD_PERCENT`] %), so every probe
//!   sequence reaches an empty slot and terminates.
//! * All matchers in a process hash with the same keys (drawn once per process from the standard
//!   library's random source, which keeps crafted lists from forcing long probe chains), so a
//!   [`QueryName`] computes each suffix hash once and probes any number of matchers with it.
//! * The hash of a name is computed label by label from the right, so the hashes of all suffixes
//!   of a query come out of a single right-to-left pass.
//!
//! # Suffixes
//! The suffixes of a non-empty name start at byte 0 and after every `.`; for `a.b.example.com`
//! they are `a.b.example.com`, `b.example.com`, `example.com`, `com`. Empty labels are taken as
//! given (`a..b` has suffixes `a..b`, `.b`, `b`). The empty name has no suffixes. A query longer
//! than [`MAX_NAME_LEN`] bytes or with more than [`MAX_LABELS`] labels matches nothing.

use std::fmt;
use std::hash::BuildHasher;
use std::ops::ControlFlow;
use std::sync::OnceLock;

/// Longest name, in bytes, that a [`Matcher`] stores or a [`QueryName`] holds.
pub const MAX_NAME_LEN: usize = 255;

/// Most labels (suffixes) a [`QueryName`] holds; a query with more matches nothing.
pub const MAX_LABELS: usize = 128;

/// Maximum load factor of a built [`Matcher`]'s table, in percent.
pub const LOAD_PERCENT: usize = 70;

/// Bytes of a record header: the name length (`u8`) and the payload (`u32`, little endian).
const HEADER: usize = 5;
/// Empty slot of a built table.
const EMPTY: u32 = u32::MAX;
/// Empty slot of a builder table.
const EMPTY_WIDE: u64 = u64::MAX;

// ---------------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------------

/// Per-process hash keys.
struct Keys {
    k0: u64,
    k1: u64,
    k2: u64,
    seed: u64,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let s = std::hash::RandomState::new();
        Keys {
            k0: s.hash_one(0x243f_6a88_85a3_08d3_u64),
            k1: s.hash_one(0x1319_8a2e_0370_7344_u64),
            k2: s.hash_one(0xa409_3822_299f_31d0_u64),
            seed: s.hash_one(0x082e_fa98_ec4e_6c89_u64),
        }
    })
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn read8(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn read4(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Folds one label into the running hash state `h` (labels are fed right to left).
#[inline(always)]
fn label_step(h: u64, label: &[u8], k: &Keys) -> u64 {
    let n = label.len();
    let mut acc = h;
    let (a, b) = if n <= 16 {
        if n >= 8 {
            (read8(label, 0), read8(label, n - 8))
        } else if n >= 4 {
            (read4(label, 0), read4(label, n - 4))
        } else if n > 0 {
            let v = (u64::from(label[0]) << 16)
                | (u64::from(label[n / 2]) << 8)
                | u64::from(label[n - 1]);
            (v, 0)
        } else {
            (0, 0)
        }
    } else {
        let mut i = 0;
        while n - i > 16 {
            acc = fold_mul(read8(label, i) ^ k.k0 ^ acc, read8(label, i + 8) ^ k.k2);
            i += 16;
        }
        (read8(label, n - 16), read8(label, n - 8))
    };
    fold_mul(acc ^ a ^ k.k0, b ^ k.k1 ^ ((n as u64) << 56))
}

/// The 32 bits of a hash state used by the tables.
#[inline(always)]
fn finish(h: u64) -> u32 {
    (h >> 32) as u32
}

/// Hash of a whole name: its labels folded from the right.
fn name_hash(name: &[u8]) -> u32 {
    let k = keys();
    let mut h = k.seed;
    for label in name.rsplit(|&c| c == b'.') {
        h = label_step(h, label, k);
    }
    finish(h)
}

/// Maps a 32-bit hash onto `0..cap` (Lemire's multiply-shift reduction).
#[inline(always)]
fn home(h: u32, cap: usize) -> usize {
    ((u64::from(h) * cap as u64) >> 32) as usize
}

/// Reads the record at `off`: its name and payload. `None` only if the arena is inconsistent.
#[inline(always)]
fn record_at(arena: &[u8], off: usize) -> Option<(&[u8], u32)> {
    let hdr = arena.get(off..off + HEADER)?;
    let len = usize::from(hdr[0]);
    let payload = u32::from_le_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
    let name = arena.get(off + HEADER..off + HEADER + len)?;
    Some((name, payload))
}

// ---------------------------------------------------------------------------------------------
// QueryName
// ---------------------------------------------------------------------------------------------

/// A query name prepared once per DNS query and probed against several matchers (one per list),
/// so the per-suffix hashes are computed once, not once per list. Lives on the stack: no heap
/// allocation.
#[derive(Clone)]
pub struct QueryName {
    buf: [u8; MAX_NAME_LEN],
    len: u8,
    /// Number of suffixes; 0 for the empty name and for inputs that do not fit.
    count: u8,
    /// `starts[i]` / `hashes[i]`: start and hash of the i-th suffix, least specific first.
    starts: [u8; MAX_LABELS],
    hashes: [u32; MAX_LABELS],
}

impl QueryName {
    /// From canonical-ish bytes (the caller lower-cases and strips the trailing dot). Never
    /// panics: bytes are taken as given; an input longer than [`MAX_NAME_LEN`] bytes or with
    /// more than [`MAX_LABELS`] labels yields a query that matches nothing (and whose
    /// [`as_str`](Self::as_str) is empty).
    #[inline]
    pub fn new(name: &[u8]) -> QueryName {
        let mut q = QueryName {
            buf: [0; MAX_NAME_LEN],
            len: 0,
            count: 0,
            starts: [0; MAX_LABELS],
            hashes: [0; MAX_LABELS],
        };
        // Filling in place (one return value on every path) lets the compiler build the
        // ~900-byte value directly in the caller's slot instead of copying it.
        if !q.fill(name) {
            q.count = 0;
        }
        q
    }

    /// Records every suffix of `name`; false if it does not fit.
    fn fill(&mut self, name: &[u8]) -> bool {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return false;
        }
        let k = keys();
        let mut h = k.seed;
        let mut end = name.len();
        let mut count = 0usize;
        loop {
            let start = match name[..end].iter().rposition(|&c| c == b'.') {
                Some(dot) => dot + 1,
                None => 0,
            };
            if count == MAX_LABELS {
                return false;
            }
            h = label_step(h, &name[start..end], k);
            // start < name.len() <= 255 and count < 128: both fit in their types.
            self.starts[count] = start as u8;
            self.hashes[count] = finish(h);
            count += 1;
            if start == 0 {
                break;
            }
            end = start - 1;
        }
        self.buf[..name.len()].copy_from_slice(name);
        self.len = name.len() as u8;
        self.count = count as u8;
        true
    }

    /// The name as text; empty if it is not UTF-8 or did not fit.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The name's bytes as given; empty if it did not fit.
    pub fn as_bytes(&self) -> &[u8] {
        if self.count == 0 {
            &[]
        } else {
            &self.buf[..usize::from(self.len)]
        }
    }

    /// Number of labels, i.e. of suffixes walked by [`Matcher::find`]; 0 for the empty name and
    /// for inputs that did not fit.
    pub fn label_count(&self) -> usize {
        usize::from(self.count)
    }
}

impl fmt::Debug for QueryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryName")
            .field("name", &String::from_utf8_lossy(self.as_bytes()))
            .field("labels", &self.count)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Matcher
// ---------------------------------------------------------------------------------------------

/// One suffix of a query found in a [`Matcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The payload stored with the matched name.
    pub payload: u32,
    /// Index of the matched suffix's first byte in the query name.
    pub start: usize,
    /// True when the matched suffix is the whole query name (exact match).
    pub exact: bool,
}

/// An immutable set of names with a `u32` payload each, answering suffix queries. Built by
/// [`MatcherBuilder`]; callers share it behind an `Arc`.
#[derive(Clone)]
pub struct Matcher {
    /// Records `[len: u8][payload: u32 LE][name]`, back to back.
    arena: Box<[u8]>,
    /// Slots `tag << off_bits | offset`, or [`EMPTY`]. Empty iff the matcher is empty.
    table: Box<[u32]>,
    len: usize,
    /// Number of low slot bits holding the arena offset (enough for `arena.len()`).
    off_bits: u32,
    /// Mask of the slot bits holding the tag (`!((1 << off_bits) - 1)`).
    tag_mask: u32,
}

impl Matcher {
    /// A matcher holding no names.
    pub fn empty() -> Matcher {
        Matcher {
            arena: Box::default(),
            table: Box::default(),
            len: 0,
            off_bits: 0,
            tag_mask: 0,
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the matcher holds no names.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Exact lookup of one canonical name.
    pub fn get(&self, name: &str) -> Option<u32> {
        let name = name.as_bytes();
        if self.table.is_empty() || name.len() > MAX_NAME_LEN {
            return None;
        }
        self.probe(name_hash(name), name)
    }

    /// Walks the query's suffixes from most to least specific; for each suffix present in the
    /// set it calls `f(hit)`. If `f` returns `ControlFlow::Break(x)`, stops and returns
    /// `Some(x)`. Returns `None` when the walk ends.
    pub fn find<T>(&self, q: &QueryName, mut f: impl FnMut(Hit) -> ControlFlow<T>) -> Option<T> {
        if self.table.is_empty() {
            return None;
        }
        let name = &q.buf[..usize::from(q.len)];
        let count = usize::from(q.count);
        for (&start, &h) in q.starts[..count].iter().zip(&q.hashes[..count]).rev() {
            let start = usize::from(start);
            if let Some(payload) = self.probe(h, &name[start..]) {
                let hit = Hit {
                    payload,
                    start,
                    exact: start == 0,
                };
                if let ControlFlow::Break(x) = f(hit) {
                    return Some(x);
                }
            }
        }
        None
    }

    /// Heap bytes used (arena + tables), for metrics and the benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.arena.len() + std::mem::size_of_val(&*self.table)
    }

    /// Iterates every (name, payload) pair (order unspecified). Used rarely (tests, explain).
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            let (name, payload) = record_at(&self.arena, off)?;
            off += HEADER + name.len();
            Some((std::str::from_utf8(name).unwrap_or(""), payload))
        })
    }

    /// Looks up `name` whose hash is `h`. Requires a non-empty table.
    #[inline]
    fn probe(&self, h: u32, name: &[u8]) -> Option<u32> {
        let cap = self.table.len();
        let want = h.checked_shl(self.off_bits).unwrap_or(0);
        let mut i = home(h, cap);
        loop {
            let s = *self.table.get(i)?;
            if s == EMPTY {
                return None;
            }
            if s & self.tag_mask == want
                && let Some((stored, payload)) =
                    record_at(&self.arena, (s & !self.tag_mask) as usize)
                && stored == name
            {
                return Some(payload);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher::empty()
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("len", &self.len)
            .field("heap_bytes", &self.heap_bytes())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------------------

/// Collects names and payloads, merging duplicates, then [`build`](Self::build)s a [`Matcher`].
///
/// The builder writes each name once into the arena that the matcher keeps; its own table
/// (`u64` slots: hash and offset, power-of-two capacity, load at most 3/4) is freed by `build`
/// before the matcher's table is allocated, so at most one of the two tables exists at a time.
#[derive(Clone, Default)]
pub struct MatcherBuilder {
    arena: Vec<u8>,
    /// Slots `hash << 32 | offset`, or [`EMPTY_WIDE`]; length 0 or a power of two.
    slots: Vec<u64>,
    len: usize,
}

impl MatcherBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `n` names of typical length without growing.
    pub fn with_capacity(n: usize) -> Self {
        let mut b = Self::new();
        if n > 0 {
            let cap = (n.saturating_mul(4) / 3 + 1).next_power_of_two().max(16);
            b.slots = vec![EMPTY_WIDE; cap];
            // Reserved but untouched arena pages cost address space, not memory.
            b.arena.reserve(n.saturating_mul(32));
        }
        b
    }

    /// Inserts `name` (canonical form, not re-validated). If the name is already present, its
    /// payload becomes `merge(old, new)`. Returns true if the name was new.
    ///
    /// A name longer than [`MAX_NAME_LEN`] bytes (which no query could match) is not stored,
    /// and neither is any name once the arena would pass 4 GiB; both return false.
    pub fn insert(
        &mut self,
        name: &str,
        payload: u32,
        merge: impl FnOnce(u32, u32) -> u32,
    ) -> bool {
        let bytes = name.as_bytes();
        if bytes.len() > MAX_NAME_LEN {
            return false;
        }
        let h = name_hash(bytes);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = home(h, self.slots.len());
        loop {
            let s = self.slots[i];
            if s == EMPTY_WIDE {
                break;
            }
            if (s >> 32) as u32 == h {
                let off = (s as u32) as usize;
                if let Some((stored, old)) = record_at(&self.arena, off)
                    && stored == bytes
                {
                    let merged = merge(old, payload).to_le_bytes();
                    self.arena[off + 1..off + HEADER].copy_from_slice(&merged);
                    return false;
                }
            }
            i = (i + 1) & mask;
        }
        let off = self.arena.len();
        if off + HEADER + bytes.len() > u32::MAX as usize {
            return false;
        }
        // Fits: checked just above. Never u32::MAX, since a record follows it.
        let off32 = off as u32;
        self.arena.push(bytes.len() as u8);
        self.arena.extend_from_slice(&payload.to_le_bytes());
        self.arena.extend_from_slice(bytes);
        self.slots[i] = (u64::from(h) << 32) | u64::from(off32);
        self.len += 1;
        true
    }

    /// Number of distinct names inserted so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no name has been inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Freezes the set into a [`Matcher`].
    pub fn build(self) -> Matcher {
        let MatcherBuilder { arena, slots, len } = self;
        if len == 0 {
            return Matcher::empty();
        }
        let arena = arena.into_boxed_slice();
        let arena_len = u32::try_from(arena.len()).unwrap_or(u32::MAX);
        let off_bits = u32::BITS - arena_len.leading_zeros();
        let tag_mask = u32::MAX.checked_shl(off_bits).unwrap_or(0);
        // Free the builder table before allocating the final one (lower peak memory); the
        // hashes are recomputed in one sequential pass over the arena instead.
        drop(slots);
        let cap = table_capacity(len);
        let mut table = vec![EMPTY; cap].into_boxed_slice();
        let mut off = 0;
        while let Some((name, _)) = record_at(&arena, off) {
            let h = name_hash(name);
            // off < arena.len() <= u32::MAX.
            let slot = h.checked_shl(off_bits).unwrap_or(0) | off as u32;
            let mut i = home(h, cap);
            while table[i] != EMPTY {
                i += 1;
                if i == cap {
                    i = 0;
                }
            }
            table[i] = slot;
            off += HEADER + name.len();
        }
        Matcher {
            arena,
            table,
            len,
            off_bits,
            tag_mask,
        }
    }

    /// Doubles the builder table (or allocates the first one).
    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_WIDE; cap]);
        let mask = cap - 1;
        for s in old.into_iter().filter(|&s| s != EMPTY_WIDE) {
            let mut i = home((s >> 32) as u32, cap);
            while self.slots[i] != EMPTY_WIDE {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

impl fmt::Debug for MatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatcherBuilder")
            .field("len", &self.len)
            .field("arena_bytes", &self.arena.len())
            .finish_non_exhaustive()
    }
}

/// Table size for `n` entries: load at most [`LOAD_PERCENT`] %, and always at least one empty slot.
fn table_capacity(n: usize) -> usize {
    n.saturating_mul(100) / LOAD_PERCENT + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn build(names: &[(&str, u32)]) -> Matcher {
        let mut b = MatcherBuilder::new();
        for &(n, p) in names {
            b.insert(n, p, |_, new| new);
        }
        b.build()
    }

    fn hits(m: &Matcher, q: &str) -> Vec<Hit> {
        let mut out = Vec::new();
        let r: Option<()> = m.find(&QueryName::new(q.as_bytes()), |h| {
            out.push(h);
            ControlFlow::Continue(())
        });
        assert_eq!(r, None);
        out
    }

    fn hit(payload: u32, start: usize) -> Hit {
        Hit {
            payload,
            start,
            exact: start == 0,
        }
    }

    #[test]
    fn exact_and_parent() {
        let m = build(&[("example.com", 1), ("tracker.net", 2)]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("example.com"), Some(1));
        assert_eq!(m.get("tracker.net"), Some(2));
        assert_eq!(m.get("com"), None);
        assert_eq!(m.get("www.example.com"), None);
        assert_eq!(hits(&m, "example.com"), vec![hit(1, 0)]);
        assert_eq!(hits(&m, "a.b.example.com"), vec![hit(1, 4)]);
        assert!(hits(&m, "xexample.com").is_empty());
        assert!(hits(&m, "example.co").is_empty());
        assert!(hits(&m, "com").is_empty());
    }

    #[test]
    fn most_specific_first_and_exact_flag() {
        let m = build(&[
            ("com", 4),
            ("example.com", 3),
            ("b.example.com", 2),
            ("a.b.example.com", 1),
        ]);
        assert_eq!(
            hits(&m, "a.b.example.com"),
            vec![hit(1, 0), hit(2, 2), hit(3, 4), hit(4, 12)]
        );
        let h = hits(&m, "x.a.b.example.com");
        assert_eq!(h.len(), 4);
        assert!(h.iter().all(|h| !h.exact));
        assert_eq!(h[0], hit(1, 2));
        assert_eq!(hits(&m, "example.com")[0], hit(3, 0));
        assert!(hits(&m, "example.com")[0].exact);
    }

    #[test]
    fn find_stops_on_break() {
        let m = build(&[("com", 4), ("example.com", 3), ("a.example.com", 1)]);
        let q = QueryName::new(b"a.example.com");
        let mut seen = 0;
        let r = m.find(&q, |h| {
            seen += 1;
            if h.payload == 3 {
                ControlFlow::Break(h.start)
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(r, Some(2));
        assert_eq!(seen, 2);
        assert_eq!(m.find(&q, |h| ControlFlow::Break(h.payload)), Some(1));
    }

    #[test]
    fn merge_on_duplicate() {
        let mut b = MatcherBuilder::with_capacity(4);
        assert!(b.is_empty());
        assert!(b.insert("ads.example.com", 0b01, |a, b| a | b));
        assert!(!b.insert("ads.example.com", 0b10, |a, b| a | b));
        assert!(b.insert("example.com", 0b100, |a, b| a | b));
        assert!(!b.insert("ads.example.com", 0b1000, |a, b| a | b));
        assert_eq!(b.len(), 2);
        let m = b.build();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("ads.example.com"), Some(0b1011));
        assert_eq!(m.get("example.com"), Some(0b100));
        let mut all: Vec<_> = m.iter().collect();
        all.sort();
        assert_eq!(
            all,
            vec![("ads.example.com", 0b1011), ("example.com", 0b100)]
        );
    }

    #[test]
    fn empty_matcher() {
        for m in [
            Matcher::empty(),
            MatcherBuilder::new().build(),
            Matcher::default(),
        ] {
            assert!(m.is_empty());
            assert_eq!(m.len(), 0);
            assert_eq!(m.get("com"), None);
            assert_eq!(m.get(""), None);
            assert!(hits(&m, "a.b.com").is_empty());
            assert_eq!(m.iter().count(), 0);
            assert_eq!(m.heap_bytes(), 0);
        }
    }

    #[test]
    fn single_label_names() {
        let m = build(&[("com", 7), ("localhost", 8)]);
        assert_eq!(hits(&m, "com"), vec![hit(7, 0)]);
        assert_eq!(hits(&m, "localhost"), vec![hit(8, 0)]);
        assert_eq!(hits(&m, "x.localhost"), vec![hit(8, 2)]);
        assert!(hits(&m, "co").is_empty());
        let q = QueryName::new(b"com");
        assert_eq!(q.label_count(), 1);
        assert_eq!(q.as_str(), "com");
    }

    #[test]
    fn odd_bytes_never_panic() {
        let m = build(&[("com", 1), ("", 2), ("b", 3), (".b", 4)]);
        // Empty labels are taken as given.
        assert_eq!(hits(&m, "a..b"), vec![hit(4, 2), hit(3, 3)]);
        // A trailing dot yields the empty suffix.
        assert_eq!(hits(&m, "com."), vec![hit(2, 4)]);
        // The empty query has no suffixes, but "" is still stored.
        assert!(hits(&m, "").is_empty());
        assert_eq!(m.get(""), Some(2));
        assert_eq!(QueryName::new(b"").label_count(), 0);
        // Upper case is not folded.
        assert!(hits(&m, "EXAMPLE.COM").is_empty());
        assert_eq!(hits(&m, "EXAMPLE.com"), vec![hit(1, 8)]);
        // Non-UTF-8 bytes: as_str is empty, matching still works on bytes.
        let q = QueryName::new(b"\xff\xfe.com");
        assert_eq!(q.as_str(), "");
        assert_eq!(q.as_bytes(), b"\xff\xfe.com");
        assert_eq!(m.find(&q, ControlFlow::Break), Some(hit(1, 3)));
        for input in [
            &b"."[..],
            b"..",
            b"...com",
            b"\0",
            b"\0.com",
            b"a.\xc3",
            b"\xc3.\xa9",
        ] {
            let q = QueryName::new(input);
            let _ = hits(&m, &String::from_utf8_lossy(input));
            let _ = m.find(&q, ControlFlow::Break);
            let _ = q.as_str();
        }
        let q = QueryName::new(b"..");
        assert_eq!(q.label_count(), 3);
        assert_eq!(hits(&m, ".."), vec![hit(2, 2)]);
    }

    #[test]
    fn over_long_names() {
        let l255 = format!("{}.com", "a".repeat(251));
        let l256 = format!("{}.com", "a".repeat(252));
        let mut b = MatcherBuilder::new();
        assert!(b.insert("com", 1, |_, n| n));
        assert!(b.insert(&l255, 2, |_, n| n));
        assert!(!b.insert(&l256, 3, |_, n| n));
        let m = b.build();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&l255), Some(2));
        assert_eq!(m.get(&l256), None);
        assert_eq!(hits(&m, &l255), vec![hit(2, 0), hit(1, 252)]);
        // Over 255 bytes: no match at all, not even the parent.
        let q = QueryName::new(l256.as_bytes());
        assert_eq!(q.label_count(), 0);
        assert_eq!(q.as_str(), "");
        assert!(hits(&m, &l256).is_empty());
        let huge = vec![b'.'; 100_000];
        assert!(m.find(&QueryName::new(&huge), ControlFlow::Break).is_none());
        // 128 labels fit, 129 do not.
        let l128 = vec!["a"; 128].join(".");
        assert_eq!(l128.len(), 255);
        assert_eq!(QueryName::new(l128.as_bytes()).label_count(), 128);
        let ma = build(&[("a", 5)]);
        assert_eq!(hits(&ma, &l128).len(), 1);
        assert_eq!(hits(&ma, &l128).last(), Some(&hit(5, 254)));
        let l129 = ".".repeat(128) + "com";
        assert_eq!(QueryName::new(l129.as_bytes()).label_count(), 0);
        assert!(hits(&ma, &l129).is_empty());
    }

    #[test]
    fn many_names() {
        let names: Vec<String> = (0..20_000)
            .map(|i| format!("n{i}.x{}.com", i % 97))
            .collect();
        let mut b = MatcherBuilder::new();
        for (i, n) in names.iter().enumerate() {
            assert!(b.insert(n, i as u32, |_, n| n));
        }
        assert!(b.insert("x5.com", 99_999, |_, n| n));
        let m = b.build();
        assert_eq!(m.len(), names.len() + 1);
        assert_eq!(m.iter().count(), m.len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(m.get(n), Some(i as u32));
            assert_eq!(m.get(&format!("{n}x")), None);
            let q = format!("www.{n}");
            let h = hits(&m, &q);
            assert_eq!(h[0], hit(i as u32, 4));
            assert_eq!(h.len(), if i % 97 == 5 { 2 } else { 1 });
        }
        assert!(m.heap_bytes() >= m.len() * (HEADER + 10));
    }

    #[test]
    fn slot_encoding_without_tag_bits() {
        // With a 4 GiB arena all 32 slot bits hold the offset and no tag is kept.
        assert_eq!(0u32.checked_shl(32).unwrap_or(0), 0);
        assert_eq!(u32::MAX.checked_shl(32).unwrap_or(0), 0);
        let mut m = build(&[("a.com", 1), ("b.com", 2)]);
        m.off_bits = 32;
        m.tag_mask = 0;
        m.table = m
            .table
            .iter()
            .map(|&s| {
                if s == EMPTY {
                    EMPTY
                } else {
                    s & ((1 << 4) - 1)
                }
            })
            .collect();
        // The arena is 20 bytes, so the low 4 bits of each slot are exactly its offset.
        assert_eq!(m.get("a.com"), Some(1));
        assert_eq!(m.get("b.com"), Some(2));
        assert_eq!(m.get("c.com"), None);
    }

    // ----- property tests against a naive reference -----

    fn reference_hits(set: &HashMap<String, u32>, q: &[u8]) -> Vec<Hit> {
        if q.is_empty() || q.len() > MAX_NAME_LEN {
            return Vec::new();
        }
        let mut starts = vec![0];
        starts.extend(
            q.iter()
                .enumerate()
                .filter(|(_, c)| **c == b'.')
                .map(|(i, _)| i + 1),
        );
        if starts.len() > MAX_LABELS {
            return Vec::new();
        }
        starts
            .into_iter()
            .filter_map(|s| {
                let suffix = std::str::from_utf8(&q[s..]).ok()?;
                set.get(suffix).map(|&p| hit(p, s))
            })
            .collect()
    }

    fn name_strategy(max_labels: usize) -> impl Strategy<Value = String> {
        let label = prop::sample::select(vec!["a", "b", "c", "ab", "ba", "abc", "x-y", ""]);
        prop::collection::vec(label, 1..=max_labels).prop_map(|l| l.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn agrees_with_reference(
            entries in prop::collection::vec((name_strategy(4), any::<u32>()), 0..60),
            queries in prop::collection::vec(name_strategy(6), 1..40),
        ) {
            let merge = |a: u32, b: u32| a.wrapping_mul(31).wrapping_add(b);
            let mut reference: HashMap<String, u32> = HashMap::new();
            let mut b = MatcherBuilder::new();
            for (name, p) in &entries {
                let was_new = b.insert(name, *p, merge);
                let expect_new = match reference.get_mut(name) {
                    Some(old) => { *old = merge(*old, *p); false }
                    None => { reference.insert(name.clone(), *p); true }
                };
                prop_assert_eq!(was_new, expect_new);
                prop_assert_eq!(b.len(), reference.len());
            }
            let m = b.build();
            prop_assert_eq!(m.len(), reference.len());
            prop_assert_eq!(m.is_empty(), reference.is_empty());
            let mut all: Vec<(String, u32)> = m.iter().map(|(n, p)| (n.to_owned(), p)).collect();
            all.sort();
            let mut expect: Vec<(String, u32)> = reference.clone().into_iter().collect();
            expect.sort();
            prop_assert_eq!(all, expect);
            for q in queries.iter().chain(entries.iter().map(|(n, _)| n)) {
                prop_assert_eq!(m.get(q), reference.get(q.as_str()).copied());
                let got = hits(&m, q);
                prop_assert_eq!(got, reference_hits(&reference, q.as_bytes()));
                let qn = QueryName::new(q.as_bytes());
                prop_assert_eq!(qn.as_str(), if q.is_empty() { "" } else { q.as_str() });
                prop_assert_eq!(qn.label_count(), if q.is_empty() { 0 } else { q.split('.').count() });
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            entries in prop::collection::vec((name_strategy(3), any::<u32>()), 0..20),
            query in prop::collection::vec(
                prop::sample::select(vec![b'a', b'b', b'.', b'A', 0xff, 0xc3, 0xa9, 0]), 0..300),
        ) {
            let mut reference: HashMap<String, u32> = HashMap::new();
            let mut b = MatcherBuilder::new();
            for (name, p) in &entries {
                b.insert(name, *p, |_, n| n);
                reference.insert(name.clone(), *p);
            }
            let m = b.build();
            let mut got = Vec::new();
            let r: Option<()> = m.find(&QueryName::new(&query), |h| { got.push(h); ControlFlow::Continue(()) });
            prop_assert_eq!(r, None);
            prop_assert_eq!(got, reference_hits(&reference, &query));
        }
    }
}
