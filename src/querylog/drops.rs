//! Drops of a bounded hand-off queue (the query log's, each export sink's): every drop counted in
//! its Prometheus counter, and a warning due at most once per [`DROP_WARN_INTERVAL`], carrying
//! how many were dropped since the last one. The request path calls [`Drops::record`] and never
//! waits: a contended lock means another thread is deciding about the warning right now.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntCounter;

/// At most one "dropped" warning per queue per this interval.
pub const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The drop count of one queue.
pub struct Drops {
    counter: IntCounter,
    since_warn: AtomicU64,
    last_warn: Mutex<Option<Instant>>,
}

/// A warning that is due: how many were dropped since the last one, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueWarning {
    /// Since the last warning.
    pub dropped: u64,
    /// Since start (the counter's value).
    pub total: u64,
}

impl Drops {
    /// Counts into `counter`.
    pub fn new(counter: IntCounter) -> Self {
        Self {
            counter,
            since_warn: AtomicU64::new(0),
            last_warn: Mutex::new(None),
        }
    }

    /// Counts one drop; `Some` when the caller should warn now.
    pub fn record(&self) -> Option<DueWarning> {
        self.counter.inc();
        self.since_warn.fetch_add(1, Ordering::Relaxed);
        let Ok(mut last) = self.last_warn.try_lock() else {
            return None;
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < DROP_WARN_INTERVAL) {
            return None;
        }
        *last = Some(now);
        Some(DueWarning {
            dropped: self.since_warn.swap(0, Ordering::Relaxed),
            total: self.counter.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_is_counted_and_one_warning_per_interval_is_due() {
        let c = IntCounter::new("t_dropped_total", "test").unwrap();
        let d = Drops::new(c.clone());
        assert_eq!(
            d.record(),
            Some(DueWarning {
                dropped: 1,
                total: 1
            })
        );
        for _ in 0..5 {
            assert_eq!(d.record(), None, "a second warning within the interval");
        }
        assert_eq!(c.get(), 6);
        assert_eq!(d.since_warn.load(Ordering::Relaxed), 5);
    }
}
