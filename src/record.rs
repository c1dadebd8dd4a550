//! Recording what happened to each query: one [`Event`] per answer, built from the closed
//! [`Outcome`] and the verdict. Recording never blocks the answer and never exposes a client
//! address: policy hits are logged with a keyed pseudonym of the client (the key is random per
//! process), and counters carry only closed label sets.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::outcome::{Outcome, Verdict};

/// One answered (or dropped) query.
#[derive(Debug)]
pub struct Event<'a> {
    /// The client's zone name, `None` when it is in no zone.
    pub zone: Option<&'a str>,
    /// The client's address (pseudonymised before it goes anywhere).
    pub client: IpAddr,
    /// The query name, lower case (logged only for policy hits).
    pub qname: &'a str,
    /// The query type.
    pub qtype: RecordType,
    /// What happened.
    pub outcome: Outcome,
    /// Why, when a rule matched.
    pub verdict: Option<&'a Verdict>,
    /// The enforcement mode label, for policy hits.
    pub mode: &'static str,
    /// The canary kind, for local answers.
    pub bypass: Option<&'static str>,
    /// Time from receipt to reply.
    pub elapsed: Duration,
}

/// Process-wide counters (the Prometheus exporter reads these).
pub struct Recorder {
    key: u64,
    by_outcome: [AtomicU64; 8],
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder with a fresh pseudonym key.
    pub fn new() -> Self {
        Self {
            key: rand::random(),
            by_outcome: Default::default(),
        }
    }

    /// A stable-per-process pseudonym of a client address.
    pub fn pseudonym(&self, ip: IpAddr) -> String {
        use std::hash::BuildHasher;
        let h = foldhash::quality::FixedState::with_seed(self.key).hash_one(ip);
        format!("c-{:012x}", h & 0xffff_ffff_ffff)
    }

    /// Records an event.
    pub fn record(&self, ev: &Event<'_>) {
        let i = Outcome::ALL
            .iter()
            .position(|o| *o == ev.outcome)
            .unwrap_or(0);
        self.by_outcome[i].fetch_add(1, Ordering::Relaxed);
        if let Some(v) = ev.verdict
            && !v.allowed
        {
            tracing::info!(
                zone = ev.zone.unwrap_or("-"),
                client = %self.pseudonym(ev.client),
                qname = ev.qname,
                qtype = %ev.qtype,
                outcome = ev.outcome.as_str(),
                list = &*v.list_name,
                rule = v.rule.as_str(),
                vendor = v.vendor.as_deref().unwrap_or("other"),
                category = v.category.unwrap_or("other"),
                cloaked_via = v.cloaked_via.as_deref().unwrap_or("-"),
                mode = ev.mode,
                "policy hit"
            );
        } else {
            tracing::debug!(zone = ev.zone.unwrap_or("-"), qtype = %ev.qtype, outcome = ev.outcome.as_str(), "query");
        }
    }

    /// Count of events with an outcome.
    pub fn count(&self, o: Outcome) -> u64 {
        let i = Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0);
        self.by_outcome[i].load(Ordering::Relaxed)
    }
}
