//! Synthetic tracker-like names for the matcher benchmark and the memory probe (shared by
//! `benches/matcher.rs` and `examples/matcher_mem.rs` through `#[path]`): a tiny deterministic
//! xorshift64 generator, no dependencies.

#![allow(dead_code)]

/// Tiny xorshift64 PRNG: deterministic, no dependencies.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn label(&mut self, out: &mut String, min: u64, max: u64) {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = min + self.below(max - min + 1);
        for _ in 0..len {
            out.push(char::from(
                ALPHABET[self.below(ALPHABET.len() as u64) as usize],
            ));
        }
    }

    /// A tracker-like name: 0-2 short subdomain labels, a registrable label, a public suffix.
    /// 2-5 labels, about 20 bytes on average.
    pub fn name(&mut self, out: &mut String) {
        const SUFFIXES: &[&str] = &[
            "com", "com", "com", "net", "net", "org", "io", "de", "co.uk", "info", "xyz", "fr",
        ];
        out.clear();
        for _ in 0..self.below(3) {
            self.label(out, 2, 8);
            out.push('.');
        }
        self.label(out, 6, 14);
        out.push('.');
        out.push_str(SUFFIXES[self.below(SUFFIXES.len() as u64) as usize]);
    }
}
