//! The bounded top-k of the admin API: per zone, the most blocked names and the clients with the
//! most policy hits, over the last hour and the last day. Space-saving summaries in time buckets,
//! so memory is fixed whatever the traffic; clients arrive already pseudonymised (or masked) by
//! the recorder, never as addresses.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Keys kept per bucket (memory bound: zones × 36 buckets × 2 summaries × this).
pub const TOP_CAPACITY: usize = 64;

/// Metwally et al.'s space-saving summary: at most `cap` keys; a new key replaces the least
/// counted one and inherits its count as the error bound. Every key with a true count above
/// total / cap is guaranteed to be present.
///
/// Keys are found by a 64-bit fingerprint (one integer compare per kept key, instead of a string
/// compare); the key's text is written only when the key enters the summary, into the buffer of
/// the key it replaces. Two keys with one fingerprint would be counted as one: among 64 kept
/// keys that is a chance of about 2^-58 per update.
///
/// Laid out as columns (fingerprints, counts, errors, texts) so that the search for a key and for
/// the least counted one each walk one contiguous array of integers.
#[derive(Debug, Clone, Default)]
struct SpaceSaving {
    fps: Vec<u64>,
    counts: Vec<u64>,
    errs: Vec<u64>,
    keys: Vec<String>,
}

impl SpaceSaving {
    fn add(&mut self, key: &Key<'_>) {
        let fp = key.fp();
        if let Some(i) = self.fps.iter().position(|&f| f == fp) {
            self.counts[i] += 1;
            return;
        }
        if self.fps.len() < TOP_CAPACITY {
            let mut text = String::new();
            key.write(&mut text);
            self.fps.push(fp);
            self.counts.push(1);
            self.errs.push(0);
            self.keys.push(text);
            return;
        }
        let Some((i, &floor)) = self.counts.iter().enumerate().min_by_key(|&(_, c)| *c) else {
            return;
        };
        self.fps[i] = fp;
        self.counts[i] = floor + 1;
        self.errs[i] = floor;
        self.keys[i].clear();
        key.write(&mut self.keys[i]);
    }

    /// (key, count, error) of every kept key.
    fn items(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.keys
            .iter()
            .zip(&self.counts)
            .zip(&self.errs)
            .map(|((k, &c), &e)| (k.as_str(), c, e))
    }
}

/// A key of the top-k: a name or client label as text, or a client pseudonym as its keyed hash
/// (formatted only when kept).
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// Text (a query name, a masked network, an address under `client = "full"`).
    Text(&'a str, u64),
    /// A pseudonym's keyed hash ([`crate::querylog::Pseudonymizer::hash`]).
    Pseudonym(u64),
}

impl<'a> Key<'a> {
    /// Text, with its fingerprint.
    pub fn text(s: &'a str) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        Key::Text(
            s,
            BuildHasherDefault::<DefaultHasher>::default().hash_one(s),
        )
    }

    fn fp(&self) -> u64 {
        match *self {
            Key::Text(_, fp) => fp,
            // Kept apart from text fingerprints of the same value by a fixed odd multiplier.
            Key::Pseudonym(h) => h.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }

    fn write(&self, out: &mut String) {
        match *self {
            Key::Text(s, _) => out.push_str(s),
            Key::Pseudonym(h) => crate::querylog::write_pseudonym(h, out),
        }
    }
}

/// Buckets of `slot_secs` seconds covering `slots × slot_secs`.
#[derive(Debug, Clone)]
struct Window {
    slot_secs: u64,
    buckets: Vec<(u64, SpaceSaving)>,
}

impl Window {
    fn new(slot_secs: u64, slots: usize) -> Self {
        Self {
            slot_secs,
            buckets: vec![(u64::MAX, SpaceSaving::default()); slots],
        }
    }

    fn add(&mut self, now: u64, key: &Key<'_>) {
        let epoch = now / self.slot_secs;
        let n = self.buckets.len() as u64;
        let b = &mut self.buckets[(epoch % n) as usize];
        if b.0 != epoch {
            *b = (epoch, SpaceSaving::default());
        }
        b.1.add(key);
    }

    /// The `k` most counted keys of the buckets still inside the window: (key, count, error).
    fn top(&self, now: u64, k: usize) -> Vec<(String, u64, u64)> {
        let epoch = now / self.slot_secs;
        let n = self.buckets.len() as u64;
        let mut sum: HashMap<&str, (u64, u64)> = HashMap::new();
        for (e, ss) in &self.buckets {
            if *e == u64::MAX || *e > epoch || epoch - *e >= n {
                continue;
            }
            for (key, count, err) in ss.items() {
                let s = sum.entry(key).or_default();
                s.0 += count;
                s.1 += err;
            }
        }
        let mut v: Vec<(String, u64, u64)> = sum
            .into_iter()
            .map(|(k, (c, e))| (k.to_owned(), c, e))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
}

/// The two windows of a [`ZoneTop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last hour (12 buckets of 5 minutes).
    Hour,
    /// The last day (24 buckets of 1 hour).
    Day,
}

/// Top blocked names and top clients (by policy hits) of one zone, over the last hour (12 × 5
/// minutes) and the last day (24 × 1 hour).
#[derive(Debug, Clone)]
pub struct ZoneTop {
    names_hour: Window,
    names_day: Window,
    clients_hour: Window,
    clients_day: Window,
}

impl Default for ZoneTop {
    fn default() -> Self {
        Self {
            names_hour: Window::new(300, 12),
            names_day: Window::new(3600, 24),
            clients_hour: Window::new(300, 12),
            clients_day: Window::new(3600, 24),
        }
    }
}

impl ZoneTop {
    /// Counts one policy hit at `now` (Unix seconds) for `name` and, unless the zone records
    /// no clients, `client` (a pseudonym or masked network).
    pub(super) fn add(&mut self, now: u64, name: &str, client: Option<Key<'_>>) {
        let name = Key::text(name);
        self.names_hour.add(now, &name);
        self.names_day.add(now, &name);
        if let Some(c) = client {
            self.clients_hour.add(now, &c);
            self.clients_day.add(now, &c);
        }
    }

    /// The `k` most blocked names of `span` at `now`: (name, count, error bound).
    pub fn names(&self, span: Span, now: u64, k: usize) -> Vec<(String, u64, u64)> {
        match span {
            Span::Hour => self.names_hour.top(now, k),
            Span::Day => self.names_day.top(now, k),
        }
    }

    /// The `k` clients with the most policy hits in `span` at `now`: (client, count, error bound).
    pub fn clients(&self, span: Span, now: u64, k: usize) -> Vec<(String, u64, u64)> {
        match span {
            Span::Hour => self.clients_hour.top(now, k),
            Span::Day => self.clients_day.top(now, k),
        }
    }
}

/// Seconds since the Unix epoch (0 before it): the top-k's clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_saving_keeps_heavy_hitters() {
        let mut ss = SpaceSaving::default();
        for i in 0..10_000u32 {
            ss.add(&Key::text(&format!("rare-{i}")));
            if i % 4 == 0 {
                ss.add(&Key::text("heavy.example"));
            }
        }
        assert!(ss.items().count() <= TOP_CAPACITY);
        let h = ss.items().find(|x| x.0 == "heavy.example").unwrap();
        assert!(h.1 >= 2_500 && h.1 - h.2 <= 2_500, "{h:?}");
    }

    #[test]
    fn a_kept_pseudonym_reads_as_the_query_log_writes_it() {
        let key = crate::querylog::Pseudonymizer::from_secret("test");
        let ip: std::net::IpAddr = "10.20.3.7".parse().unwrap();
        let mut top = ZoneTop::default();
        let t0 = 1_700_000_000;
        for _ in 0..3 {
            top.add(t0, "pixel.example", Some(Key::Pseudonym(key.hash(ip))));
        }
        top.add(t0, "pixel.example", Some(Key::text("10.20.3.0/24")));
        let clients = top.clients(Span::Hour, t0, 10);
        assert_eq!(clients[0], (key.pseudonym(ip), 3, 0));
        assert_eq!(clients[1], ("10.20.3.0/24".into(), 1, 0));
        assert_eq!(
            top.names(Span::Day, t0, 10),
            vec![("pixel.example".into(), 4, 0)]
        );
    }

    #[test]
    fn windows_expire() {
        let mut w = Window::new(300, 12);
        let t0 = 1_700_000_000;
        w.add(t0, &Key::text("a"));
        w.add(t0, &Key::text("a"));
        w.add(t0 + 600, &Key::text("b"));
        let top = w.top(t0 + 600, 10);
        assert_eq!(top[0], ("a".into(), 2, 0));
        assert_eq!(top[1], ("b".into(), 1, 0));
        assert!(
            w.top(t0 + 3600, 10).iter().all(|x| x.0 != "a"),
            "older than an hour"
        );
        assert_eq!(w.top(t0 + 3600, 10).len(), 1);
        assert!(w.top(t0 + 7200, 10).is_empty());
    }
}
