//! Recursive mode: hickory's recursor (`hickory_resolver::recursor`) resolving from the root
//! hints, its answer put into a response message of our own so that the pipeline's cache,
//! uncloaking and respond stages treat it like a forwarded answer:
//!
//! * a positive answer keeps the recursor's answer section (CNAME chains included) and drops
//!   the last server's authority and additional sections;
//! * a negative answer becomes NXDOMAIN or NODATA (NOERROR, no answer) with the zone's SOA in the
//!   authority section, so the cache applies RFC 2308 negative TTLs;
//! * anything else (no server answered, loops, limits, the deadline) is a failure: the client
//!   gets SERVFAIL.
//!
//! The recursor is security-unaware (no DNSSEC validation, AD never set) and keeps its own
//! name-server and response caches; ours sits in front. QNAME minimisation: hickory's recursor
//! always looks for zone cuts label by label (an NS query per label, RFC 9156); `[upstream]
//! qname_minimization = true` (the default) makes an NXDOMAIN on a parent end the resolution
//! (RFC 8020, "strict"), `false` carries on below it ("relaxed", for broken servers).
//!
//! Tests and labs: `[upstream] recursion_ports = ["127.0.0.10:5390", ...]` sends the queries for
//! a name server address to that port instead of 53 (the recursor knows addresses only, port 53
//! implied) and allows that address although it is loopback / private (by default the recursor
//! never queries 127/8, RFC 1918, CGNAT and similar ranges).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Record};
use hickory_resolver::config::ConnectionConfig;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsExchange;
use hickory_resolver::recursor::{QNameMinimization, Recursor, RecursorError, RecursorOptions};
use hickory_resolver::{ConnectionProvider, PoolContext};
use ipnet::IpNet;

use super::{Question, UPSTREAM_EDNS_PAYLOAD};
use crate::config::UpstreamConfig;

/// The recursor of one upstream set.
pub(super) struct Recursive {
    recursor: Recursor<PortMap>,
    roots: Vec<IpAddr>,
    qname_minimization: bool,
    ports: Vec<SocketAddr>,
}

/// The start-up line of recursive mode.
pub(super) fn describe(cfg: &UpstreamConfig) -> String {
    let hints = match &cfg.root_hints {
        Some(p) => p.display().to_string(),
        None => "built-in IANA hints".to_owned(),
    };
    let mut s = format!(
        "recursive from {} root server addresses ({hints}), qname minimisation {}",
        cfg.roots.len(),
        if cfg.qname_minimization {
            "strict"
        } else {
            "relaxed"
        }
    );
    if !cfg.recursion_ports.is_empty() {
        let p: Vec<String> = cfg.recursion_ports.iter().map(|a| a.to_string()).collect();
        s.push_str(&format!(", port overrides (tests) {}", p.join(" ")));
    }
    s
}

/// Why the recursor could not be built (every cache miss is then answered SERVFAIL).
#[derive(Debug, thiserror::Error)]
pub enum RecursorSetupError {
    /// `root_hints` gave no address.
    #[error("no root server address")]
    NoRoots,
    /// hickory's recursor refused the options.
    #[error("{0}")]
    Build(String),
}

impl Recursive {
    /// A recursor for the `[upstream]` settings.
    pub(super) fn new(cfg: &UpstreamConfig) -> Result<Self, RecursorSetupError> {
        if cfg.roots.is_empty() {
            return Err(RecursorSetupError::NoRoots);
        }
        let opts = RecursorOptions {
            qname_minimization: if cfg.qname_minimization {
                QNameMinimization::Strict
            } else {
                QNameMinimization::Relaxed
            },
            edns_payload_len: UPSTREAM_EDNS_PAYLOAD,
            allow_server: cfg
                .recursion_ports
                .iter()
                .map(|a| IpNet::from(a.ip()))
                .collect(),
            ..RecursorOptions::default()
        };
        let provider = PortMap {
            provider: TokioRuntimeProvider::new(),
            ports: Arc::new(
                cfg.recursion_ports
                    .iter()
                    .map(|a| (a.ip(), a.port()))
                    .collect(),
            ),
        };
        let recursor = Recursor::with_options(&cfg.roots, opts, provider)
            .map_err(|e| RecursorSetupError::Build(e.to_string()))?;
        Ok(Self {
            recursor,
            roots: cfg.roots.clone(),
            qname_minimization: cfg.qname_minimization,
            ports: cfg.recursion_ports.clone(),
        })
    }

    /// True if this recursor was built for the recursive settings of `cfg`.
    pub(super) fn same_setup(&self, cfg: &UpstreamConfig) -> bool {
        self.roots == cfg.roots
            && self.qname_minimization == cfg.qname_minimization
            && self.ports == cfg.recursion_ports
    }

    /// Resolves within `deadline`: the answer (`None`: SERVFAIL) and the try's metric label.
    pub(super) async fn resolve(
        &self,
        q: &Question,
        deadline: Duration,
    ) -> (Option<Message>, &'static str) {
        if q.query.query_class() != DNSClass::IN {
            return (Some(reply(q, ResponseCode::Refused)), "refused");
        }
        let mut name = q.query.name().to_lowercase();
        name.set_fqdn(true);
        let query = Query::query(name, q.query.query_type());
        let work = self.recursor.resolve(query, Instant::now(), q.dnssec_ok);
        match tokio::time::timeout(deadline, work).await {
            Err(_) => {
                tracing::debug!(query = %q.query, "recursion: deadline passed");
                (None, "timeout")
            }
            Ok(Ok(m)) => {
                let mut out = reply(q, ResponseCode::NoError);
                out.answers = m.answers;
                (Some(out), "ok")
            }
            Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => {
                (Some(negative(q, e)), "ok")
            }
            Ok(Err(e)) => {
                tracing::debug!(query = %q.query, "recursion failed: {e}");
                (
                    None,
                    if e.is_timeout() {
                        "timeout"
                    } else {
                        "servfail"
                    },
                )
            }
        }
    }
}

/// A response skeleton for `q`: RD and RA set, `rcode`, the client's question.
fn reply(q: &Question, rcode: ResponseCode) -> Message {
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.add_query(q.query.clone());
    m
}

/// NXDOMAIN or NODATA with the SOA the recursor got (when it got one).
fn negative(q: &Question, e: RecursorError) -> Message {
    let rcode = if e.is_nx_domain() {
        ResponseCode::NXDomain
    } else {
        ResponseCode::NoError
    };
    let mut m = reply(q, rcode);
    if let Some(soa) = e.into_soa() {
        let soa: Record = (*soa).into_record_of_rdata();
        m.authorities.push(soa);
    }
    m
}

/// The recursor's connection provider: hickory's tokio provider, with the port of listed server
/// addresses changed from 53 (`recursion_ports`).
#[derive(Clone)]
struct PortMap {
    provider: TokioRuntimeProvider,
    ports: Arc<HashMap<IpAddr, u16>>,
}

type ConnFuture =
    Pin<Box<dyn Future<Output = Result<DnsExchange<TokioRuntimeProvider>, NetError>> + Send>>;

impl ConnectionProvider for PortMap {
    type Conn = DnsExchange<TokioRuntimeProvider>;
    type FutureConn = ConnFuture;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        match self.ports.get(&ip) {
            Some(&port) => {
                let mut c = config.clone();
                c.port = port;
                self.provider.new_connection(ip, &c, cx)
            }
            None => self.provider.new_connection(ip, config, cx),
        }
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        &self.provider
    }
}
