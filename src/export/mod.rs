//! Export of policy events to a security team's tools: dnstap over Frame Streams (`dnstap`,
//! `framestream`) and RFC 5424 syslog over UDP, TCP or TLS (`syslog`), each written by its own
//! thread behind a bounded queue (`sink`).
//!
//! Fed from the recorder's one fan-out (`record`): the recorder builds one query-log [`Entry`]
//! per recorded answer and hands it to the query log and, wrapped in a [`QueryEvent`], to the
//! sinks that want it ([`Export::wants`]); list failures and reloads arrive as [`Notice`]s. The
//! request path only calls `try_send`: a slow, stalled or absent collector makes the sink drop
//! (counted in `pixelguard_export_dropped_total{sink}`), never delays an answer, and the writer
//! reconnects with exponential back-off.
//!
//! Privacy as in the query log: a client is written under its zone's (or the sink's) client
//! mode with the query log's pseudonym key, which the event carries ([`QueryEvent::key`]), so
//! the sinks, the query log and every replica sharing the key agree on a client's pseudonym.

pub mod dnstap;
pub mod framestream;
mod sink;
pub mod syslog;
mod wire;

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{ClientMode, DnstapConfig, RecordMode, SyslogConfig};
use crate::metrics::Metrics;
use crate::outcome::Bypass;
use crate::querylog::{Entry, Pseudonymizer};
use sink::Sink;

/// One recorded answer as the sinks see it.
#[derive(Debug)]
pub struct QueryEvent {
    /// The query log's entry (client not yet pseudonymised).
    pub entry: Entry,
    /// A block rule matched (blocked or would-block).
    pub policy_hit: bool,
    /// An allow rule beat a block rule.
    pub exception: bool,
    /// A bypass attempt (canary, DoH endpoint name).
    pub bypass: Option<Bypass>,
    /// The zone's `query_log_client`, which overrides the sink's `client`.
    pub client_override: Option<ClientMode>,
    /// The pseudonym key at the time of the answer.
    pub key: Arc<Pseudonymizer>,
}

/// An event that is no answer (syslog only).
#[derive(Debug, Clone)]
pub enum Notice {
    /// A list failed to load or refresh; its last good content stays in use.
    ListUpdateFailed {
        /// When.
        ts: SystemTime,
        /// The list's name.
        list: String,
        /// read | parse | empty | a download failure reason.
        reason: String,
    },
    /// A reload ran.
    Reload {
        /// When.
        ts: SystemTime,
        /// Whether the new config is in use.
        ok: bool,
    },
}

/// What a sink thread is handed.
#[derive(Debug)]
pub enum Item {
    /// A recorded answer.
    Query(Arc<QueryEvent>),
    /// Anything else.
    Notice(Arc<Notice>),
}

/// Which sinks want an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// The dnstap sink.
    pub dnstap: bool,
    /// The syslog sink.
    pub syslog: bool,
}

impl Wants {
    /// Any sink.
    pub fn any(self) -> bool {
        self.dnstap || self.syslog
    }
}

/// The running sinks (started once; their config takes effect on restart).
#[derive(Debug)]
pub struct Export {
    dnstap: Option<(Sink, DnstapConfig)>,
    syslog: Option<Sink>,
}

impl Export {
    /// Starts a writer thread per configured sink; `None` when neither is configured.
    pub fn start(
        dnstap: Option<DnstapConfig>,
        syslog: Option<SyslogConfig>,
        metrics: &Metrics,
    ) -> io::Result<Option<Arc<Export>>> {
        if dnstap.is_none() && syslog.is_none() {
            return Ok(None);
        }
        let dnstap = match dnstap {
            Some(c) => Some((sink::start_dnstap(c.clone(), metrics)?, c)),
            None => None,
        };
        let syslog = match syslog {
            Some(c) => Some(sink::start_syslog(c, metrics)?),
            None => None,
        };
        Ok(Some(Arc::new(Export { dnstap, syslog })))
    }

    /// Which sinks want an answer: dnstap by its `record` mode (or the zone's `query_log`
    /// override), syslog for policy events (unless the zone's override is `none`).
    /// `bypass` is asked only when syslog could want the event.
    pub fn wants(
        &self,
        policy_hit: bool,
        exception: bool,
        over_record: Option<RecordMode>,
        bypass: impl FnOnce() -> bool,
    ) -> Wants {
        let dnstap =
            self.dnstap
                .as_ref()
                .is_some_and(|(_, c)| match over_record.unwrap_or(c.record) {
                    RecordMode::All => true,
                    RecordMode::Policy => policy_hit,
                    RecordMode::None => false,
                });
        let syslog = self.syslog.is_some()
            && over_record != Some(RecordMode::None)
            && (policy_hit || exception || bypass());
        Wants { dnstap, syslog }
    }

    /// Hands an answer to the sinks in `to` without waiting (dropped and counted when full).
    pub fn send(&self, ev: QueryEvent, to: Wants) {
        let ev = Arc::new(ev);
        if to.dnstap
            && let Some((s, _)) = &self.dnstap
        {
            s.try_send(Item::Query(ev.clone()));
        }
        if to.syslog
            && let Some(s) = &self.syslog
        {
            s.try_send(Item::Query(ev));
        }
    }

    /// Hands a notice to the syslog sink (if any) without waiting.
    pub fn notice(&self, n: Notice) {
        if let Some(s) = &self.syslog {
            s.try_send(Item::Notice(Arc::new(n)));
        }
    }

    /// Stops the writers: what is queued is written while the collector takes it, at most
    /// `within`; dnstap ends with STOP / FINISH.
    pub async fn shutdown(&self, within: Duration) {
        let sinks = self.dnstap.iter().map(|(s, _)| s).chain(self.syslog.iter());
        let waits: Vec<_> = sinks.map(|s| s.stop()).collect();
        let _ = tokio::time::timeout(within, futures_util::future::join_all(waits)).await;
    }
}

/// The start-up lines of the export: where each sink sends, what and how clients appear.
pub fn summary(
    dnstap: Option<&crate::config::DnstapConfig>,
    syslog: Option<&crate::config::SyslogConfig>,
) -> Vec<String> {
    use crate::config::{DnstapTarget, SyslogTransport};
    let mut out = Vec::new();
    if let Some(d) = dnstap {
        let to = match &d.target {
            DnstapTarget::Unix(p) => format!("unix:{}", p.display()),
            DnstapTarget::Tcp(a) => format!("tcp:{a}"),
        };
        out.push(format!(
            "dnstap    {to} record={} client={} forwarder={} (zones may override)",
            d.record.as_str(),
            d.client.as_str(),
            d.forwarder
        ));
    }
    if let Some(s) = syslog {
        let t = match &s.transport {
            SyslogTransport::Udp => "udp".to_owned(),
            SyslogTransport::Tcp => "tcp".to_owned(),
            SyslogTransport::Tls(n) => format!("tls#{n}"),
        };
        out.push(format!(
            "syslog    {t}:{} facility={} client={} (zones may override)",
            s.server,
            s.facility,
            s.client.as_str()
        ));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;

    /// An event of a client 10.1.2.3 in zone `office` for `px.tracker.example`, matched by the
    /// rule `tracker.example` of list `trackers` (vendor acme, advertising).
    pub(crate) fn event(outcome: Outcome) -> QueryEvent {
        QueryEvent {
            entry: Entry {
                ts: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                zone: Some("office".into()),
                client: "10.1.2.3".parse().unwrap(),
                client_mode: ClientMode::Hash,
                qname: "px.tracker.example".into(),
                qtype: RecordType::A,
                outcome,
                rcode: ResponseCode::NXDomain,
                list: Some("trackers".into()),
                rule: Some("tracker.example".into()),
                vendor: Some("acme".into()),
                category: Some("advertising"),
                cloaked_via: None,
                exception: None,
                upstream: Some("127.0.0.53:53".parse().unwrap()),
                duration: Duration::from_millis(3),
            },
            policy_hit: true,
            exception: false,
            bypass: None,
            client_override: None,
            key: Arc::new(Pseudonymizer::from_secret("0123456789abcdef")),
        }
    }

    #[test]
    fn dnstap_frames_decode_with_policy_extra_and_no_address_under_hash() {
        use prost::Message as _;
        let cfg = DnstapConfig {
            target: crate::config::DnstapTarget::Tcp("127.0.0.1:1".parse().unwrap()),
            record: RecordMode::Policy,
            client: ClientMode::Hash,
            forwarder: true,
            identity: "dns1".into(),
            buffer: 8,
        };
        let frames = dnstap::encode(&event(Outcome::Blocked), &cfg);
        let msgs: Vec<dnstap::Dnstap> = frames
            .iter()
            .map(|f| dnstap::Dnstap::decode(&f[..]).unwrap())
            .collect();
        let types: Vec<i32> = msgs
            .iter()
            .map(|d| d.message.as_ref().unwrap().r#type)
            .collect();
        use dnstap::MessageKind as K;
        assert_eq!(
            types,
            [
                K::ClientQuery,
                K::ForwarderQuery,
                K::ForwarderResponse,
                K::ClientResponse
            ]
            .map(|k| k as i32)
        );
        let d = &msgs[3];
        assert_eq!(d.identity.as_deref(), Some(&b"dns1"[..]));
        let m = d.message.as_ref().unwrap();
        assert_eq!(m.query_address, None, "hash writes no address");
        let resp =
            hickory_proto::op::Message::from_vec(m.response_message.as_ref().unwrap()).unwrap();
        assert_eq!(resp.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(resp.queries[0].name().to_ascii(), "px.tracker.example.");
        let p = m.policy.as_ref().unwrap();
        assert_eq!(p.value.as_deref(), Some(&b"tracker.example"[..]));
        assert_eq!(p.action, Some(dnstap::PolicyAction::Nxdomain as i32));
        let x: serde_json::Value = serde_json::from_slice(d.extra.as_ref().unwrap()).unwrap();
        assert_eq!(x["zone"], "office");
        assert_eq!(x["outcome"], "blocked");
        assert_eq!(x["list"], "trackers");
        assert_eq!(x["rule"], "tracker.example");
        assert_eq!(x["vendor"], "acme");
        assert_eq!(x["category"], "advertising");
        let key = Pseudonymizer::from_secret("0123456789abcdef");
        assert_eq!(x["client"], key.pseudonym("10.1.2.3".parse().unwrap()));
        for f in &frames {
            assert!(
                !f.windows(4).any(|w| w == [10, 1, 2, 3]),
                "no client address bytes"
            );
        }
        let mut masked = event(Outcome::WouldBlock);
        masked.client_override = Some(ClientMode::Masked);
        let f = dnstap::encode(&masked, &cfg);
        let d = dnstap::Dnstap::decode(&f[0][..]).unwrap();
        assert_eq!(d.message.unwrap().query_address, Some(vec![10, 1, 2, 0]));
    }
}
