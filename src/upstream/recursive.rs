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
//! DNSSEC (`[upstream] dnssec = "validate"`, the default): hickory's validating recursor with
//! the IANA root trust anchor built in (`trust_anchor` replaces it with a file of DNSKEY
//! records). A validated (secure) answer or negative proof gets AD, which the respond rules pass
//! on to clients that set DO or AD; an insecure one (an unsigned delegation) resolves without
//! AD; a bogus one becomes SERVFAIL with EDE 6 (DNSSEC Bogus) and the reason, unless the client
//! set CD (then the data without AD). `dnssec = "off"`: security-unaware, AD never set. The
//! recursor keeps its own name-server and response caches; ours sits in front. QNAME minimisation: hickory's recursor
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

use hickory_proto::dnssec::{Proof, TrustAnchors};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Record};
use hickory_resolver::config::ConnectionConfig;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsExchange;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::recursor::{
    DnssecConfig, DnssecPolicy, QNameMinimization, Recursor, RecursorError, RecursorOptions,
};
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
    dnssec: (bool, Option<std::path::PathBuf>),
}

/// EDE info code "DNSSEC Bogus" (RFC 8914).
const EDE_DNSSEC_BOGUS: u16 = 6;
/// EDE option code.
const EDE_OPTION: u16 = 15;

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
    s.push_str(match (cfg.dnssec, &cfg.trust_anchor) {
        (false, _) => ", DNSSEC off",
        (true, None) => ", DNSSEC validated (IANA root anchor)",
        (true, Some(_)) => ", DNSSEC validated (trust_anchor)",
    });
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
        let policy = if cfg.dnssec {
            let mut d = DnssecConfig::default();
            if let Some(path) = &cfg.trust_anchor {
                let anchors = TrustAnchors::from_file(path).map_err(|e| {
                    RecursorSetupError::Build(format!("trust_anchor {}: {e}", path.display()))
                })?;
                d.trust_anchor = Some(Arc::new(anchors));
            }
            DnssecPolicy::ValidateWithStaticKey(d)
        } else {
            DnssecPolicy::SecurityUnaware
        };
        let recursor = Recursor::new(&cfg.roots, policy, None, opts, provider)
            .map_err(|e| RecursorSetupError::Build(e.to_string()))?;
        Ok(Self {
            recursor,
            roots: cfg.roots.clone(),
            qname_minimization: cfg.qname_minimization,
            ports: cfg.recursion_ports.clone(),
            dnssec: (cfg.dnssec, cfg.trust_anchor.clone()),
        })
    }

    /// True if this recursor was built for the recursive settings of `cfg`.
    pub(super) fn same_setup(&self, cfg: &UpstreamConfig) -> bool {
        self.roots == cfg.roots
            && self.qname_minimization == cfg.qname_minimization
            && self.ports == cfg.recursion_ports
            && self.dnssec == (cfg.dnssec, cfg.trust_anchor.clone())
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
                let proof = summary(m.answers.iter().map(|r| r.proof));
                if proof == Proof::Bogus && !q.checking_disabled {
                    return (Some(bogus(q, "a signature in the answer")), "servfail");
                }
                let mut out = reply(q, ResponseCode::NoError);
                out.metadata.authentic_data = proof == Proof::Secure;
                out.answers = m.answers;
                (Some(out), "ok")
            }
            Ok(Err(RecursorError::Net(NetError::Dns(DnsError::DnssecBogus)))) => {
                if q.checking_disabled {
                    return (None, "servfail");
                }
                (Some(bogus(q, "the chain of trust")), "servfail")
            }
            Ok(Err(RecursorError::Net(NetError::Dns(DnsError::Nsec {
                response, proof, ..
            })))) => {
                if proof == Proof::Bogus && !q.checking_disabled {
                    return (Some(bogus(q, "the proof of non-existence")), "servfail");
                }
                let nx = response.response_code == ResponseCode::NXDomain;
                let mut m = reply(
                    q,
                    if nx {
                        ResponseCode::NXDomain
                    } else {
                        ResponseCode::NoError
                    },
                );
                if let Some(soa) = response.soa() {
                    m.authorities.push(soa.to_owned().into_record_of_rdata());
                }
                m.metadata.authentic_data = proof == Proof::Secure;
                (Some(m), "ok")
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

/// The proof of a set of records: bogus if any is, secure if all are (and there is one),
/// else insecure.
fn summary(proofs: impl Iterator<Item = Proof>) -> Proof {
    let mut out = None;
    for p in proofs {
        out = Some(match (out, p) {
            (_, Proof::Bogus) | (Some(Proof::Bogus), _) => Proof::Bogus,
            (None | Some(Proof::Secure), Proof::Secure) => Proof::Secure,
            _ => Proof::Insecure,
        });
    }
    out.unwrap_or(Proof::Insecure)
}

/// SERVFAIL with EDE 6 (DNSSEC Bogus) and what failed to validate.
fn bogus(q: &Question, what: &str) -> Message {
    tracing::debug!(query = %q.query, "DNSSEC bogus: {what}");
    let mut m = reply(q, ResponseCode::ServFail);
    let mut data = EDE_DNSSEC_BOGUS.to_be_bytes().to_vec();
    data.extend_from_slice(
        format!(
            "pixelguard: DNSSEC validation failed for {} ({what})",
            q.query.name()
        )
        .as_bytes(),
    );
    let mut edns = Edns::new();
    edns.options_mut()
        .insert(EdnsOption::Unknown(EDE_OPTION, data));
    m.edns = Some(edns);
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
