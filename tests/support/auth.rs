//! `AuthServer`: an in-process authoritative DNS server on loopback that records every
//! question it receives.
//!
//! Built from hickory-server's `Server` (UDP + TCP listeners, framing, TC truncation) and
//! hickory-proto's zone-file `Parser`, with our own small `RequestHandler` instead of
//! `Catalog` + `InMemoryZoneHandler`. Reasons: without a `dnssec-*` feature the Catalog
//! neither echoes DO nor can serve RRSIGs (the zone parser rejects RRSIG lines and the
//! in-memory store drops RRSIGs), it never sets AD, and `InMemoryZoneHandler::new` changes
//! its signature when hickory's `__dnssec` feature is on. Our handler needs no hickory
//! feature at all.
//!
//! Behaviour (authoritative, AA=1, RA=0):
//! * in-zone CNAME chains are chased (bounded); out-of-zone targets end the chain;
//! * NXDOMAIN for missing names (NOERROR/NODATA for empty non-terminals), NODATA for other
//!   types; both carry the zone SOA **as stored** in the authority section (TTL 3600,
//!   MINIMUM 300 in [`TEST_ZONE`]: the negative TTL min(3600, 300) is the receiver's job);
//! * names outside the zone: REFUSED; opcode other than QUERY: NOTIMP; not exactly one
//!   question: FORMERR; EDNS version > 0: BADVERS;
//! * with EDNS the reply carries an OPT (payload = max(client, 512), DO echoed); the UDP reply
//!   is truncated (TC=1) to that payload, or to 512 bytes without EDNS;
//! * **AD=1** on positive answers for "secure" names (`www.<origin>` and
//!   `signed.<origin>`) when the query had AD=1 or DO=1;
//! * **RRSIG**: every RRset owned by `signed.<origin>` gets a synthetic RRSIG (valid RRSIG
//!   wire format, algorithm 13, bogus signature; served as an opaque record) that is added to
//!   the answer only when DO=1. A query for type RRSIG returns them regardless of DO.
//! * no additional-section processing (no glue, no MX address records).

use std::collections::{HashMap, HashSet};
use std::iter;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::{Proto, bind_udp_tcp, loopback};

/// Origin of [`TEST_ZONE`].
pub const TEST_ZONE_ORIGIN: &str = "example.test.";

/// The default test zone (`example.test.`), master-file format.
///
/// | name | data |
/// |---|---|
/// | `@` | SOA (TTL 3600, MINIMUM 300), NS `ns1`, TXT |
/// | `www` | A 192.0.2.1 (TTL 300), AAAA 2001:db8::1; AD-capable |
/// | `alias` | CNAME `www` (TTL 120) |
/// | `chain1` → `chain2` → `www` | CNAME chain |
/// | `short` | A 192.0.2.9, TTL 2 |
/// | `metrics` | CNAME `x.sc.omtrdc.net.` (cloaked tracker, target outside the zone) |
/// | `mx` | MX 10 `mail.example.test.`; `mail` A 192.0.2.25 |
/// | `txt` | TXT "hello from example.test" |
/// | `big` | 10 TXT records, answer ≈ 2.1 kB (> 1232: TC over UDP, needs TCP) |
/// | `signed` | A 192.0.2.77 + synthetic RRSIG (only with DO=1); AD-capable |
/// | `host.sub` | A 192.0.2.30 (so `sub` is an empty non-terminal: NODATA) |
pub const TEST_ZONE: &str = r#"$ORIGIN example.test.
$TTL 300
@       3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 900 1209600 300
@       3600 IN NS ns1.example.test.
@       300 IN TXT "v=spf1 -all"
ns1     300 IN A 192.0.2.53
www     300 IN A 192.0.2.1
www     300 IN AAAA 2001:db8::1
alias   120 IN CNAME www
chain1  300 IN CNAME chain2
chain2  300 IN CNAME www
short   2   IN A 192.0.2.9
metrics 300 IN CNAME x.sc.omtrdc.net.
mx      300 IN MX 10 mail.example.test.
mail    300 IN A 192.0.2.25
txt     300 IN TXT "hello from example.test"
big     300 IN TXT "big-01-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-02-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-03-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-04-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-05-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-06-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-07-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-08-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-09-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
big     300 IN TXT "big-10-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
signed  300 IN A 192.0.2.77
host.sub 300 IN A 192.0.2.30
"#;

/// One question as the server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenQuery {
    /// The qname exactly as received (case preserved), FQDN with trailing dot.
    pub name: String,
    /// Query type.
    pub qtype: RecordType,
    /// Query class.
    pub qclass: DNSClass,
    /// Message id.
    pub id: u16,
    /// Opcode of the request.
    pub opcode: OpCode,
    /// Whether the request carried an OPT record.
    pub edns: bool,
    /// EDNS version, if EDNS was present.
    pub edns_version: Option<u8>,
    /// Advertised UDP payload size, if EDNS was present.
    pub edns_payload: Option<u16>,
    /// DO bit (false without EDNS).
    pub do_bit: bool,
    /// CD header bit.
    pub cd: bool,
    /// AD header bit.
    pub ad: bool,
    /// RD header bit.
    pub rd: bool,
    /// Transport.
    pub proto: Proto,
    /// Source address of the query.
    pub src: SocketAddr,
}

impl SeenQuery {
    /// True if the qname equals `name` ignoring ASCII case and a trailing dot.
    pub fn name_is(&self, name: &str) -> bool {
        names_equal(&self.name, name)
    }
}

/// Case-insensitive, trailing-dot-insensitive name comparison.
pub fn names_equal(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// A running authoritative server; shuts down when dropped.
pub struct AuthServer {
    addr: SocketAddr,
    origin: Name,
    seen: Arc<Mutex<Vec<SeenQuery>>>,
    zone: Arc<RwLock<Zone>>,
    server: Server<AuthHandler>,
}

impl AuthServer {
    /// Starts a server for `zone_origin` with records from `zone_text` (master-file format)
    /// on `127.0.0.1:<random port>`, UDP and TCP on the same port.
    ///
    /// Must be called inside a tokio runtime (e.g. from a `#[tokio::test]`). Panics on a
    /// zone that does not parse or has no SOA at the origin.
    pub fn start(zone_origin: &str, zone_text: &str) -> AuthServer {
        Self::start_on(loopback(1), zone_origin, zone_text)
    }

    /// [`AuthServer::start`] with [`TEST_ZONE`].
    pub fn start_test_zone() -> AuthServer {
        Self::start(TEST_ZONE_ORIGIN, TEST_ZONE)
    }

    /// Like [`AuthServer::start`] but on a chosen loopback address (e.g. `127.0.0.10`).
    pub fn start_on(ip: IpAddr, zone_origin: &str, zone_text: &str) -> AuthServer {
        let zone = Zone::parse(zone_origin, zone_text);
        let origin = Name::from(&zone.origin);
        let zone = Arc::new(RwLock::new(zone));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler = AuthHandler {
            zone: zone.clone(),
            seen: seen.clone(),
        };

        let (udp, tcp) = bind_udp_tcp(ip);
        let addr = udp.local_addr().expect("udp local addr");
        let udp = tokio::net::UdpSocket::from_std(udp)
            .expect("AuthServer::start must be called inside a tokio runtime");
        let tcp = tokio::net::TcpListener::from_std(tcp).expect("tokio tcp listener");

        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 32);

        AuthServer {
            addr,
            origin,
            seen,
            zone,
            server,
        }
    }

    /// The address (UDP and TCP) the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone origin.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Every question received so far, in arrival order.
    pub fn seen(&self) -> Vec<SeenQuery> {
        self.seen.lock().expect("seen lock").clone()
    }

    /// Number of questions received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().expect("seen lock").len()
    }

    /// Forgets the recorded questions.
    pub fn clear_seen(&self) {
        self.seen.lock().expect("seen lock").clear();
    }

    /// True if a question for exactly `name` was received (case- and trailing-dot-insensitive;
    /// subdomains do not count).
    pub fn saw_name(&self, name: &str) -> bool {
        self.seen().iter().any(|q| q.name_is(name))
    }

    /// Waits (polling every 10 ms, at most `timeout`) until at least `n` questions were
    /// received; returns whether that happened.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        super::wait_until(timeout, || self.count() >= n).await
    }

    /// Number of questions received for exactly `name` (any type).
    pub fn count_name(&self, name: &str) -> usize {
        self.seen().iter().filter(|q| q.name_is(name)).count()
    }

    /// Adds (or appends to) a record in the zone while the server runs.
    pub fn add_record(&self, record: Record) {
        self.zone.write().expect("zone lock").insert(record);
    }

    /// Removes every record of `rtype` at `name` (e.g. to make a name vanish mid-test).
    pub fn remove_records(&self, name: &str, rtype: RecordType) {
        let name = LowerName::from(Name::from_ascii(name).expect("valid name"));
        let mut zone = self.zone.write().expect("zone lock");
        if let Some(records) = zone.records.get_mut(&name) {
            records.retain(|r| r.record_type() != rtype);
            if records.is_empty() {
                zone.records.remove(&name);
            }
        }
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        // Stop accepting; dropping `server` (its JoinSet) right after aborts the listener tasks.
        self.server.shutdown_token().cancel();
    }
}

/// The zone data and lookup logic.
struct Zone {
    origin: LowerName,
    soa: Record,
    /// All records (no RRSIGs) per owner name.
    records: HashMap<LowerName, Vec<Record>>,
    /// Synthetic RRSIGs per (owner, type covered).
    rrsigs: HashMap<(LowerName, RecordType), Record>,
    /// Names that get AD=1 when the query has AD=1 or DO=1.
    secure: HashSet<LowerName>,
}

impl Zone {
    fn parse(origin: &str, text: &str) -> Zone {
        let origin_name = Name::from_ascii(origin).expect("valid zone origin");
        let (origin_name, rrsets) = Parser::new(text, None, Some(origin_name))
            .parse()
            .expect("zone text parses");
        let origin = LowerName::from(&origin_name);

        let mut records: HashMap<LowerName, Vec<Record>> = HashMap::new();
        for rrset in rrsets.values() {
            for record in rrset.records_without_rrsigs() {
                records
                    .entry(LowerName::from(&record.name))
                    .or_default()
                    .push(record.clone());
            }
        }
        let soa = records
            .get(&origin)
            .and_then(|rs| rs.iter().find(|r| r.record_type() == RecordType::SOA))
            .cloned()
            .unwrap_or_else(|| panic!("zone {origin} has no SOA at the origin"));

        let www = LowerName::from(
            Name::from_ascii("www")
                .expect("label")
                .append_domain(&origin_name)
                .expect("name"),
        );
        let signed_name = Name::from_ascii("signed")
            .expect("label")
            .append_domain(&origin_name)
            .expect("name");
        let signed = LowerName::from(&signed_name);

        let mut rrsigs = HashMap::new();
        if let Some(rs) = records.get(&signed) {
            let types: HashSet<(RecordType, u32)> =
                rs.iter().map(|r| (r.record_type(), r.ttl)).collect();
            for (rtype, ttl) in types {
                let rrsig = synthetic_rrsig(&signed_name, rtype, ttl, &origin_name);
                rrsigs.insert((signed.clone(), rtype), rrsig);
            }
        }

        Zone {
            origin,
            soa,
            records,
            rrsigs,
            secure: [www, signed].into_iter().collect(),
        }
    }

    fn insert(&mut self, record: Record) {
        self.records
            .entry(LowerName::from(&record.name))
            .or_default()
            .push(record);
    }

    fn records_of(&self, name: &LowerName, rtype: RecordType) -> Vec<Record> {
        self.records
            .get(name)
            .map(|rs| {
                rs.iter()
                    .filter(|r| rtype == RecordType::ANY || r.record_type() == rtype)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True if `name` owns records or is an empty non-terminal of the zone.
    fn name_exists(&self, name: &LowerName) -> bool {
        self.records.contains_key(name) || self.records.keys().any(|k| name.zone_of(k))
    }

    /// Answers one in-zone question: (rcode, answers, authorities).
    fn lookup(
        &self,
        qname: &LowerName,
        qtype: RecordType,
        do_bit: bool,
    ) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        const MAX_CNAME_CHAIN: usize = 8;
        let mut answers = Vec::new();
        let mut name = qname.clone();
        let mut visited = HashSet::new();

        for _ in 0..=MAX_CNAME_CHAIN {
            if !visited.insert(name.clone()) || !self.origin.zone_of(&name) {
                // Loop, or the chain left the zone: hand back what we have.
                return (ResponseCode::NoError, answers, Vec::new());
            }

            if qtype == RecordType::RRSIG {
                let sigs: Vec<Record> = self
                    .rrsigs
                    .iter()
                    .filter(|((owner, _), _)| *owner == name)
                    .map(|(_, r)| r.clone())
                    .collect();
                if sigs.is_empty() {
                    return self.negative(&name, answers);
                }
                answers.extend(sigs);
                return (ResponseCode::NoError, answers, Vec::new());
            }

            let direct = self.records_of(&name, qtype);
            if !direct.is_empty() {
                let types: HashSet<RecordType> = direct.iter().map(Record::record_type).collect();
                answers.extend(direct);
                if do_bit {
                    for rtype in types {
                        if let Some(sig) = self.rrsigs.get(&(name.clone(), rtype)) {
                            answers.push(sig.clone());
                        }
                    }
                }
                return (ResponseCode::NoError, answers, Vec::new());
            }

            let cname = self.records_of(&name, RecordType::CNAME);
            match cname.first().map(|r| &r.data) {
                Some(RData::CNAME(target)) if qtype != RecordType::CNAME => {
                    if do_bit && let Some(sig) = self.rrsigs.get(&(name.clone(), RecordType::CNAME))
                    {
                        answers.push(sig.clone());
                    }
                    answers.extend(cname.iter().cloned());
                    name = LowerName::from(&target.0);
                }
                _ => return self.negative(&name, answers),
            }
        }
        (ResponseCode::NoError, answers, Vec::new())
    }

    /// NXDOMAIN or NODATA for `name`, with the SOA in the authority section.
    fn negative(
        &self,
        name: &LowerName,
        answers: Vec<Record>,
    ) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        let rcode = if self.name_exists(name) {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        (rcode, answers, vec![self.soa.clone()])
    }
}

/// A syntactically valid RRSIG (RFC 4034 §3.1) for `owner`/`covered`, algorithm 13, with
/// a bogus 64-byte signature. Built as opaque rdata so no hickory DNSSEC feature is needed.
fn synthetic_rrsig(owner: &Name, covered: RecordType, ttl: u32, signer: &Name) -> Record {
    let mut rdata = Vec::with_capacity(128);
    rdata.extend_from_slice(&u16::from(covered).to_be_bytes());
    rdata.push(13); // ECDSAP256SHA256
    rdata.push(owner.num_labels());
    rdata.extend_from_slice(&ttl.to_be_bytes());
    rdata.extend_from_slice(&2_000_000_000u32.to_be_bytes()); // expiration (2033)
    rdata.extend_from_slice(&1_700_000_000u32.to_be_bytes()); // inception (2023)
    rdata.extend_from_slice(&12345u16.to_be_bytes()); // key tag
    for label in signer.to_lowercase().iter() {
        rdata.push(u8::try_from(label.len()).expect("label length"));
        rdata.extend_from_slice(label);
    }
    rdata.push(0);
    rdata.extend(iter::repeat_n(0xA5u8, 64));
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::Unknown {
            code: RecordType::RRSIG,
            rdata: NULL::with(rdata),
        },
    )
}

/// Our `RequestHandler`: records the question, then answers from the zone.
struct AuthHandler {
    zone: Arc<RwLock<Zone>>,
    seen: Arc<Mutex<Vec<SeenQuery>>>,
}

impl AuthHandler {
    fn record(&self, request: &Request) {
        let edns = request.edns.as_ref();
        let proto = match request.protocol() {
            Protocol::Tcp => Proto::Tcp,
            _ => Proto::Udp,
        };
        let mut seen = self.seen.lock().expect("seen lock");
        for q in request.queries.queries() {
            let original = q.original();
            seen.push(SeenQuery {
                name: original.name.to_string(),
                qtype: original.query_type,
                qclass: original.query_class,
                id: request.metadata.id,
                opcode: request.metadata.op_code,
                edns: edns.is_some(),
                edns_version: edns.map(Edns::version),
                edns_payload: edns.map(Edns::max_payload),
                do_bit: edns.is_some_and(|e| e.flags().dnssec_ok),
                cd: request.metadata.checking_disabled,
                ad: request.metadata.authentic_data,
                rd: request.metadata.recursion_desired,
                proto,
                src: request.src(),
            });
        }
    }

    /// Computes (metadata, answers, authorities, response OPT).
    fn answer(&self, request: &Request) -> (Metadata, Vec<Record>, Vec<Record>, Option<Edns>) {
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = false;
        meta.authoritative = false;

        let req_edns = request.edns.as_ref();
        let do_bit = req_edns.is_some_and(|e| e.flags().dnssec_ok);
        let resp_edns = req_edns.map(|e| {
            let mut out = Edns::new();
            out.set_max_payload(e.max_payload().max(512));
            out.set_version(0);
            out.set_dnssec_ok(do_bit);
            out
        });

        let fail = |mut meta: Metadata, code: ResponseCode, edns: Option<Edns>| {
            meta.response_code = code;
            (meta, Vec::new(), Vec::new(), edns)
        };

        if req_edns.is_some_and(|e| e.version() > 0) {
            return fail(meta, ResponseCode::BADVERS, resp_edns);
        }
        if request.metadata.op_code != OpCode::Query {
            return fail(meta, ResponseCode::NotImp, resp_edns);
        }
        let [q] = request.queries.queries() else {
            return fail(meta, ResponseCode::FormErr, resp_edns);
        };
        if q.query_class() != DNSClass::IN {
            return fail(meta, ResponseCode::Refused, resp_edns);
        }

        let zone = self.zone.read().expect("zone lock");
        if !zone.origin.zone_of(q.name()) {
            return fail(meta, ResponseCode::Refused, resp_edns);
        }
        let ad_wanted = request.metadata.authentic_data || do_bit;
        let (rcode, answers, authorities) = zone.lookup(q.name(), q.query_type(), do_bit);
        meta.authoritative = true;
        meta.response_code = rcode;
        meta.authentic_data = ad_wanted
            && rcode == ResponseCode::NoError
            && !answers.is_empty()
            && zone.secure.contains(q.name());
        (meta, answers, authorities, resp_edns)
    }
}

#[async_trait::async_trait]
impl RequestHandler for AuthHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.record(request);
        let (meta, answers, authorities, edns) = self.answer(request);
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            meta,
            answers.iter(),
            authorities.iter(),
            iter::empty(),
            iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut meta = meta;
                meta.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header {
                    metadata: meta,
                    counts: Default::default(),
                })
            }
        }
    }
}
