//! Upstream tries: the observer the upstream set reports every try to (counted in
//! `pixelguard_upstream_queries_total` and `pixelguard_upstream_duration_seconds`), and the
//! reachability it feeds, which `/readyz` reads. The recorder only provides the observer; the
//! code that installs a snapshot attaches it to that snapshot's upstream set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter};

use crate::metrics::{Metrics, OTHER, UPSTREAM_RESULTS, upstream_label};
use crate::upstream::TryObserver;

const N_RESULTS: usize = UPSTREAM_RESULTS.len();

/// Upstream reachability, for `/readyz`.
#[derive(Debug, Default)]
pub struct UpstreamHealth {
    tried: AtomicU64,
    answered: AtomicU64,
    fails_since_answer: AtomicU64,
    /// Milliseconds since `base` of the last answer.
    last_answer_ms: AtomicU64,
    base: OnceLock<Instant>,
}

/// Consecutive failed tries (with no answer for [`FAILING_AFTER`]) that make pixelguard not ready.
pub const FAILING_TRIES: u64 = 5;
/// See [`FAILING_TRIES`].
pub const FAILING_AFTER: Duration = Duration::from_secs(30);

impl UpstreamHealth {
    fn base(&self) -> Instant {
        *self.base.get_or_init(Instant::now)
    }

    fn note(&self, answered: bool) {
        self.tried.fetch_add(1, Ordering::Relaxed);
        if answered {
            self.answered.fetch_add(1, Ordering::Relaxed);
            self.fails_since_answer.store(0, Ordering::Relaxed);
            let ms = u64::try_from(self.base().elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_answer_ms.store(ms, Ordering::Relaxed);
        } else {
            self.fails_since_answer.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `Ok` when no upstream was tried yet, or one has answered and the upstreams are not
    /// currently failing ([`FAILING_TRIES`] failed tries in a row and no answer for
    /// [`FAILING_AFTER`]); otherwise why not.
    pub fn ready(&self) -> Result<(), NotReady> {
        let tried = self.tried.load(Ordering::Relaxed);
        if tried == 0 {
            return Ok(());
        }
        if self.answered.load(Ordering::Relaxed) == 0 {
            return Err(NotReady::NoAnswerYet { tried });
        }
        let fails = self.fails_since_answer.load(Ordering::Relaxed);
        let since = self.base().elapsed().saturating_sub(Duration::from_millis(
            self.last_answer_ms.load(Ordering::Relaxed),
        ));
        if fails >= FAILING_TRIES && since > FAILING_AFTER {
            return Err(NotReady::UpstreamsFailing {
                fails,
                since_secs: since.as_secs(),
            });
        }
        Ok(())
    }
}

/// Why pixelguard is not ready to serve (`/readyz` shows the message as its `reason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The first snapshot is still being built.
    #[error("starting: the first snapshot (config and lists) is loading")]
    Starting,
    /// The DNS listeners are not serving (yet, or any more).
    #[error("DNS listeners are not serving")]
    NotServing,
    /// Upstreams were tried and none has ever answered.
    #[error("no upstream has answered yet ({tried} tries failed)")]
    NoAnswerYet {
        /// Tries so far.
        tried: u64,
    },
    /// The upstreams answered once but are failing now.
    #[error("upstreams failing: {fails} tries failed since the last answer {since_secs}s ago")]
    UpstreamsFailing {
        /// Failed tries since the last answer.
        fails: u64,
        /// Seconds since the last answer.
        since_secs: u64,
    },
}

/// Counts the tries of one upstream set (one group: `[upstream]` or a forward rule), with that
/// set's servers' series resolved up front.
pub(super) struct UpstreamObserver {
    group: Arc<str>,
    servers: Vec<(SocketAddr, [IntCounter; N_RESULTS], Histogram)>,
    metrics: Metrics,
    /// `None` for a forward rule: `/readyz` follows `[upstream]` only (a domain controller
    /// that is down does not stop the public names from resolving).
    health: Option<Arc<UpstreamHealth>>,
}

impl UpstreamObserver {
    /// An observer for `servers` of `group`, their series pre-registered at zero.
    pub(super) fn new(
        metrics: &Metrics,
        health: Option<Arc<UpstreamHealth>>,
        group: &str,
        servers: &[SocketAddr],
    ) -> Self {
        let servers = servers
            .iter()
            .map(|a| {
                let l = upstream_label(a);
                let counters = std::array::from_fn(|i| {
                    metrics.upstream_queries.with_label_values(&[
                        group,
                        l.as_str(),
                        UPSTREAM_RESULTS[i],
                    ])
                });
                (
                    *a,
                    counters,
                    metrics
                        .upstream_duration
                        .with_label_values(&[group, l.as_str()]),
                )
            })
            .collect();
        Self {
            group: Arc::from(group),
            servers,
            metrics: metrics.clone(),
            health,
        }
    }
}

impl TryObserver for UpstreamObserver {
    fn tried(&self, server: SocketAddr, result: &'static str, elapsed: Duration) {
        if let Some(h) = &self.health {
            h.note(result == "ok" || result == "servfail" || result == "refused");
        }
        let r = UPSTREAM_RESULTS.iter().position(|x| *x == result);
        match (self.servers.iter().find(|s| s.0 == server), r) {
            (Some((_, counters, hist)), Some(i)) => {
                counters[i].inc();
                hist.observe(elapsed.as_secs_f64());
            }
            // Not a configured server (e.g. an authoritative server in recursive mode): the
            // label set stays closed.
            _ => {
                self.metrics
                    .upstream_queries
                    .with_label_values(&[&self.group, OTHER, result])
                    .inc();
                self.metrics
                    .upstream_duration
                    .with_label_values(&[&self.group, OTHER])
                    .observe(elapsed.as_secs_f64());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_upstream_answers() {
        let h = UpstreamHealth::default();
        assert!(h.ready().is_ok(), "nothing tried yet");
        h.note(false);
        assert!(
            h.ready()
                .unwrap_err()
                .to_string()
                .contains("no upstream has answered")
        );
        h.note(true);
        for _ in 0..FAILING_TRIES {
            h.note(false);
        }
        assert!(h.ready().is_ok(), "an answer within {FAILING_AFTER:?}");
    }
}
