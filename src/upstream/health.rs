//! Upstream health: a smoothed RTT and a count of consecutive failures per upstream, and the
//! order in which a query tries them. An upstream that failed three times in a row is skipped
//! for a back-off period (1 s, doubling per further failure, at most 32 s); when the period ends
//! the next query tries it again, which is the probe: a success clears it at once. If every
//! upstream is backed off, they are all tried anyway (in order) rather than failing unasked.
//! Health survives reloads for upstreams whose address and protocol did not change.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use crate::config::Strategy;

/// Consecutive failures before an upstream is backed off.
pub const FAILS_BEFORE_BACKOFF: u32 = 3;
/// Longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(32);

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn now_ms(now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX)
}

/// The health of one upstream.
#[derive(Debug, Default)]
pub struct Health {
    srtt_us: AtomicU32,
    fails: AtomicU32,
    down_until_ms: AtomicU64,
}

impl Health {
    /// A success with its round-trip time.
    pub fn ok(&self, rtt: Duration) {
        let rtt = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
        let old = self.srtt_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            rtt
        } else {
            old - old / 8 + rtt / 8
        };
        self.srtt_us.store(new.max(1), Ordering::Relaxed);
        self.fails.store(0, Ordering::Relaxed);
        self.down_until_ms.store(0, Ordering::Relaxed);
    }

    /// A failure (timeout, network error, SERVFAIL / REFUSED, malformed reply).
    pub fn failed(&self, now: Instant) {
        let n = self.fails.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= FAILS_BEFORE_BACKOFF {
            let exp = (n - FAILS_BEFORE_BACKOFF).min(5);
            let backoff = Duration::from_secs(1 << exp).min(MAX_BACKOFF);
            self.down_until_ms.store(
                now_ms(now.checked_add(backoff).unwrap_or(now)),
                Ordering::Relaxed,
            );
        }
    }

    /// Backed off at `now`.
    pub fn is_down(&self, now: Instant) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) > now_ms(now)
    }

    /// Smoothed RTT in microseconds (0 = never measured).
    pub fn srtt_us(&self) -> u32 {
        self.srtt_us.load(Ordering::Relaxed)
    }
}

/// The order in which a query tries `healths` (indices): healthy ones by strategy, then, only if
/// none is healthy, all of them in configured order.
pub fn order(healths: &[&Health], strategy: Strategy, now: Instant) -> Vec<usize> {
    let mut up: Vec<usize> = (0..healths.len())
        .filter(|&i| !healths[i].is_down(now))
        .collect();
    if up.is_empty() {
        return (0..healths.len()).collect();
    }
    if strategy == Strategy::Fastest {
        up.sort_by_key(|&i| healths[i].srtt_us());
    }
    up
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_three_failures_and_recovers_on_success() {
        let h = Health::default();
        let t = Instant::now();
        h.failed(t);
        h.failed(t);
        assert!(!h.is_down(t));
        h.failed(t);
        assert!(h.is_down(t));
        assert!(
            !h.is_down(t + Duration::from_millis(1100)),
            "probed again after 1 s"
        );
        h.failed(t);
        assert!(h.is_down(t + Duration::from_millis(1500)), "doubled");
        h.ok(Duration::from_millis(5));
        assert!(!h.is_down(t));
    }

    #[test]
    fn order_by_strategy() {
        let (a, b, c) = (Health::default(), Health::default(), Health::default());
        a.ok(Duration::from_millis(30));
        b.ok(Duration::from_millis(3));
        let t = Instant::now();
        for _ in 0..3 {
            c.failed(t);
        }
        let hs = [&a, &b, &c];
        assert_eq!(order(&hs, Strategy::Ordered, t), vec![0, 1]);
        assert_eq!(order(&hs, Strategy::Fastest, t), vec![1, 0]);
        for _ in 0..3 {
            a.failed(t);
            b.failed(t);
        }
        assert_eq!(
            order(&hs, Strategy::Ordered, t),
            vec![0, 1, 2],
            "all down: try all"
        );
    }
}
