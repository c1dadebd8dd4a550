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
#[derive(Debug, Clone, Default)]
struct SpaceSaving {
    items: Vec<(Box<str>, u64, u64)>,
}

impl SpaceSaving {
    fn add(&mut self, key: &str) {
        if let Some(it) = self.items.iter_mut().find(|it| &*it.0 == key) {
            it.1 += 1;
            return;
        }
        if self.items.len() < TOP_CAPACITY {
            self.items.push((key.into(), 1, 0));
            return;
        }
        if let Some(min) = self.items.iter_mut().min_by_key(|it| it.1) {
            let floor = min.1;
            *min = (key.into(), floor + 1, floor);
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

    fn add(&mut self, now: u64, key: &str) {
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
            for (key, c, err) in &ss.items {
                let s = sum.entry(key).or_default();
                s.0 += c;
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
    pub(super) fn add(&mut self, now: u64, name: &str, client: Option<&str>) {
        self.names_hour.add(now, name);
        self.names_day.add(now, name);
        if let Some(c) = client {
            self.clients_hour.add(now, c);
            self.clients_day.add(now, c);
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
            ss.add(&format!("rare-{i}"));
            if i % 4 == 0 {
                ss.add("heavy.example");
            }
        }
        assert!(ss.items.len() <= TOP_CAPACITY);
        let h = ss.items.iter().find(|x| &*x.0 == "heavy.example").unwrap();
        assert!(h.1 >= 2_500 && h.1 - h.2 <= 2_500, "{h:?}");
    }

    #[test]
    fn windows_expire() {
        let mut w = Window::new(300, 12);
        let t0 = 1_700_000_000;
        w.add(t0, "a");
        w.add(t0, "a");
        w.add(t0 + 600, "b");
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
