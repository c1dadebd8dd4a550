//! The recorder's label-formatting paths, off the hot path: events of a zone whose handles are
//! not installed yet (start-up, a snapshot just replaced) or of a series no handle covers, and
//! the exception state gauges, recomputed from the installed snapshot's exception ends whenever a
//! snapshot is installed and at every scrape (so they stay true as time passes).

use super::{Event, Recorder, unix_now};
use crate::metrics::OTHER;
use crate::outcome::{Bypass, Outcome, Verdict};

/// The `mode` label of an event's tracker attempt: `watch` for a watched name, else the zone's
/// mode.
pub(super) fn mode_label(ev: &Event<'_>) -> &'static str {
    if ev.outcome == Outcome::Watched {
        crate::metrics::MODE_WATCH
    } else {
        ev.mode.as_str()
    }
}

impl Recorder {
    pub(super) fn attempt_slow(&self, zone: &str, v: &Verdict, mode: &str) {
        self.metrics
            .tracker_attempts
            .with_label_values(&[
                zone,
                v.vendor.as_deref().unwrap_or(OTHER),
                v.category.unwrap_or(OTHER),
                mode,
            ])
            .inc();
    }

    pub(super) fn exception_slow(&self, zone: &str, v: &Verdict) {
        self.metrics
            .exception_hits
            .with_label_values(&[zone, v.vendor.as_deref().unwrap_or(OTHER)])
            .inc();
    }

    /// Sets the `pixelguard_exceptions{state}` gauges for the clock now (called when a snapshot
    /// is installed and at every scrape, so they stay true as time passes).
    pub fn refresh_exceptions(&self) {
        let now = unix_now();
        let mut counts = [0i64; 3];
        for &until in &self.handles.load().exception_ends {
            let i = match crate::config::state_at(until, now) {
                crate::config::ExceptionState::Active => 0,
                crate::config::ExceptionState::Expiring => 1,
                crate::config::ExceptionState::Expired => 2,
            };
            counts[i] += 1;
        }
        for (state, n) in crate::metrics::EXCEPTION_STATES.iter().zip(counts) {
            self.metrics.exceptions.with_label_values(&[state]).set(n);
        }
    }

    pub(super) fn record_slow(&self, zone: &str, ev: &Event<'_>) {
        let m = &self.metrics;
        m.queries
            .with_label_values(&[zone, ev.outcome.as_str()])
            .inc();
        if let Some(v) = ev.verdict.filter(|v| v.exception.is_some()) {
            self.exception_slow(zone, v);
        }
        if let Some(v) = ev.verdict.filter(|v| !v.allowed) {
            self.attempt_slow(zone, v, mode_label(ev));
            if ev.outcome == Outcome::Blocked {
                m.blocked.with_label_values(&[zone, &v.list_name]).inc();
            }
            if ev.outcome == Outcome::WouldBlock {
                m.would_block.with_label_values(&[zone, &v.list_name]).inc();
            }
        }
        if let Some(k) = ev.bypass {
            m.bypass.with_label_values(&[zone, k.as_str()]).inc();
        }
        if self.doh.matches(ev.qname) {
            m.bypass
                .with_label_values(&[zone, Bypass::DohHost.as_str()])
                .inc();
        }
    }
}
