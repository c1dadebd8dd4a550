//! The request path: one fixed chain of stages, assembled in [`Pipeline::handle`], each stage
//! commented with why it sits where it does. A stage either answers (and the chain ends) or lets
//! the query continue; a block is an answer, so a blocked name can never leak to an upstream.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

use crate::cache::{Cache, CacheKey, KEY_MAX, pack_key};
use crate::config::Mode;
use crate::matcher::QueryName;
use crate::outcome::{Outcome, Verdict};
use crate::policy::{self, Canary, Decision, RuleAction, ZonePolicy};
use crate::record::{Event, Recorder, Scope};
use crate::respond::{self, Asked, Reply};
use crate::snapshot::Snapshot;
use crate::upstream::Question;
use crate::wire;

/// TTL of local canary answers.
const CANARY_TTL: u32 = 300;

/// The shared state of the request path.
pub struct Pipeline {
    /// Upstream queries allowed in flight at once.
    pub upstream_slots: tokio::sync::Semaphore,
    /// Per-client token buckets.
    pub limiter: crate::ratelimit::RateLimiter,
    /// The current snapshot (swapped whole on reload).
    pub snapshot: ArcSwap<Snapshot>,
    /// The answer cache (survives reloads).
    pub cache: Arc<Cache>,
    /// Keys being refreshed in the background after a stale answer (bounded).
    refreshing: Arc<std::sync::Mutex<std::collections::HashSet<Box<[u8]>>>>,
    /// Counters and the policy-hit log.
    pub recorder: Recorder,
}

/// What the chain decided, before it is sent.
struct Done {
    reply: Reply,
    outcome: Outcome,
    verdict: Option<Verdict>,
    bypass: Option<crate::outcome::Bypass>,
    /// The upstream of a fresh answer.
    upstream: Option<std::net::SocketAddr>,
    /// Cache consulted: hit or miss.
    cache: Option<bool>,
}

/// The parts of a snapshot that recording reads.
pub fn scope(s: &Snapshot) -> Scope<'_> {
    Scope {
        zones: &s.zones,
        zone_configs: &s.config.zones,
        lists: &s.lists,
        upstream_servers: s.upstreams.servers(),
        query_log: s.config.query_log.as_ref(),
    }
}

impl Pipeline {
    /// A pipeline over a first snapshot.
    pub fn new(snapshot: Snapshot) -> Self {
        let cache = Cache::new(&snapshot.config.cache);
        let max_inflight = snapshot.config.upstream.max_inflight;
        let recorder = Recorder::new();
        recorder.install(&scope(&snapshot), None);
        let observer = recorder.upstream_observer(snapshot.upstreams.servers());
        snapshot.upstreams.set_observer(observer);
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            cache: Arc::new(cache),
            refreshing: Arc::default(),
            recorder,
            upstream_slots: tokio::sync::Semaphore::new(max_inflight),
            limiter: crate::ratelimit::RateLimiter::new(crate::ratelimit::DEFAULT_MAX_CLIENTS),
        }
    }

    /// Swaps in a new snapshot; in-flight queries finish on the old one.
    pub fn swap(&self, snapshot: Snapshot) {
        self.cache.reconfigure(&snapshot.config.cache);
        let prev = self.snapshot.load_full();
        self.recorder.install(&scope(&snapshot), Some(&prev.lists));
        let observer = self
            .recorder
            .upstream_observer(snapshot.upstreams.servers());
        snapshot.upstreams.set_observer(observer);
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Records a request answered before policy (FORMERR, NOTIMP, BADVERS).
    fn record_invalid(&self, request: &Request, rcode: ResponseCode, start: Instant) {
        let snap = self.snapshot.load();
        let client = request.src().ip();
        let zone = snap.zone_of(client);
        let (qname, qtype) = match request.request_info() {
            Ok(info) => (
                info.query.original().name().to_ascii().to_ascii_lowercase(),
                info.query.original().query_type(),
            ),
            Err(_) => (String::new(), RecordType::Unknown(0)),
        };
        self.recorder.record(&Event {
            zone: zone.map(|(_, z)| &*z.name),
            zone_id: zone.map(|(id, _)| id),
            client,
            qname: qname.strip_suffix('.').unwrap_or(&qname),
            qtype,
            outcome: Outcome::Invalid,
            verdict: None,
            mode: zone.map_or(Mode::Off, |(_, z)| z.mode),
            bypass: None,
            rcode,
            upstream: None,
            cache: None,
            elapsed: start.elapsed(),
        });
    }

    async fn handle<R: ResponseHandler>(&self, request: &Request, handle: R) -> ResponseInfo {
        let start = Instant::now();
        // 0. Never answer a response: that is how reflection loops start.
        if request.metadata.message_type != MessageType::Query {
            return respond::failed_info(request);
        }
        // 1. Decode and EDNS, before anything else reads the request: a query we cannot parse or
        //    whose opcode / EDNS version we do not speak gets its error code and nothing more.
        if request.metadata.op_code != OpCode::Query {
            self.record_invalid(request, ResponseCode::NotImp, start);
            return respond::send_code(request, ResponseCode::NotImp, handle).await;
        }
        let Ok(info) = request.request_info() else {
            self.record_invalid(request, ResponseCode::FormErr, start);
            return respond::send_code(request, ResponseCode::FormErr, handle).await;
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            self.record_invalid(request, ResponseCode::BADVERS, start);
            return respond::send_code(request, ResponseCode::BADVERS, handle).await;
        }
        let snap = self.snapshot.load();
        let client = request.src().ip();
        let original = info.query.original().clone();
        let qtype = original.query_type();
        let lower = original.name().to_ascii().to_ascii_lowercase();
        let qname_str = lower.strip_suffix('.').unwrap_or(&lower);
        let edns = request.edns.as_ref();
        let dnssec_ok = edns.is_some_and(|e| e.flags().dnssec_ok);

        // 2. Zone: everything after this is per-zone policy; a client in no zone is refused here,
        //    before it can cost an upstream query (pixelguard is never an open resolver).
        let Some((zone_id, zone)) = snap.zone_of(client) else {
            self.record_no_zone(client, qname_str, qtype, start);
            return respond::send_code(request, ResponseCode::Refused, handle).await;
        };
        // 2b. Per-client rate limit, before any work is spent on the query.
        let rl = zone.rate_limit;
        if !self.limiter.allow(client, rl.qps, rl.burst, start) {
            self.record_limited(zone_id, zone, client, qname_str, qtype, start);
            if rl.drop {
                return respond::failed_info(request);
            }
            return respond::send_code(request, ResponseCode::Refused, handle).await;
        }
        let asked = Asked {
            name: original.name(),
            qtype,
            dnssec_ok,
            authentic_data: request.metadata.authentic_data,
        };
        let done = self
            .resolve(
                &snap,
                zone,
                qname_str,
                &asked,
                request.metadata.checking_disabled,
                &original,
            )
            .await;
        // Recorded before the answer leaves: a client that has its answer finds it counted.
        self.recorder.record(&Event {
            zone: Some(&zone.name),
            zone_id: Some(zone_id),
            client,
            qname: qname_str,
            qtype,
            outcome: done.outcome,
            verdict: done.verdict.as_ref(),
            mode: zone.mode,
            bypass: done.bypass,
            rcode: done.reply.rcode,
            upstream: done.upstream,
            cache: done.cache,
            elapsed: start.elapsed(),
        });
        respond::send(request, &done.reply, handle).await
    }

    async fn resolve(
        &self,
        snap: &Snapshot,
        zone: &ZonePolicy,
        qname: &str,
        asked: &Asked<'_>,
        checking_disabled: bool,
        original: &hickory_proto::op::Query,
    ) -> Done {
        let ttl = u32::try_from(zone.block_ttl.as_secs()).unwrap_or(u32::MAX);
        // 3. Local answers: bypass canaries must be answered by us whatever the lists say, and
        //    never forwarded (an upstream would answer them "positively").
        if zone.canaries
            && let Some(c) = Canary::of(qname)
        {
            let reply = respond::local_negative(
                asked,
                c != Canary::Ddr,
                CANARY_TTL,
                "pixelguard: bypass canary",
            );
            return Done {
                reply,
                outcome: Outcome::Local,
                verdict: None,
                bypass: Some(c.kind()),
                upstream: None,
                cache: None,
            };
        }
        // 4. Name policy, before the cache and the upstream: a blocked name must never leave.
        let q = QueryName::new(qname.as_bytes());
        let mut would_block: Option<Verdict> = None;
        let mut allowed: Option<Verdict> = None;
        if zone.mode != Mode::Off {
            match policy::decide(&snap.lists, zone, &q) {
                Some(Decision::Block(v, action)) if zone.mode == Mode::Enforce => {
                    // The SOA owner is the matched rule's name, spelt as the client spelt it.
                    let owner = asked.name.trim_to(v.rule.split('.').count());
                    let reply =
                        respond::blocked(asked, &zone.response, action, ttl, &owner, &v.ede_text());
                    return Done {
                        reply,
                        outcome: Outcome::Blocked,
                        verdict: Some(v),
                        bypass: None,
                        upstream: None,
                        cache: None,
                    };
                }
                Some(Decision::Block(v, _)) => would_block = Some(v),
                Some(Decision::Allow(v)) => allowed = Some(v),
                None => {}
            }
        }
        // ANY (RFC 8482): a minimal local answer, so pixelguard is no amplifier. After the
        // policy, so that a blocked name stays blocked for every type.
        if asked.qtype == RecordType::ANY {
            return Done {
                reply: respond::rfc8482(asked),
                outcome: Outcome::Local,
                verdict: would_block.or(allowed),
                bypass: None,
                upstream: None,
                cache: None,
            };
        }
        // 5./6. Cache, then upstream on a miss. Both hold raw upstream answers only.
        let key = CacheKey::new(
            qname,
            u16::from(asked.qtype),
            u16::from(original.query_class()),
            asked.dnssec_ok,
            checking_disabled,
        );
        let now = Instant::now();
        let max_ttl = self.cache.max_ttl();
        let (reply, mut outcome, answer_msg) =
            if let Some(hit) = self.cache.get(key.as_bytes(), now) {
                let age = hit.age(now);
                (
                    respond::from_upstream(&hit.message, asked, age, max_ttl),
                    Outcome::Cached,
                    Some(MsgRef::Cached(hit)),
                )
            } else {
                let question = Question {
                    query: original.clone(),
                    dnssec_ok: asked.dnssec_ok,
                    checking_disabled,
                };
                // A bounded number of upstream queries in flight: past it, a query is served
                // stale or SERVFAIL at once instead of queueing without limit.
                let answer = match self.upstream_slots.try_acquire() {
                    Ok(_permit) => snap.upstreams.resolve(&question).await,
                    Err(_) => None,
                };
                let failed = answer
                    .as_ref()
                    .is_none_or(|a| a.message.metadata.response_code == ResponseCode::ServFail);
                // Serve-stale (RFC 8767): every upstream failed, but an expired answer is recent
                // enough: serve it with TTL 30 and EDE 3, and fetch again on the next query.
                let stale = if failed {
                    self.cache.get_stale(key.as_bytes(), now)
                } else {
                    None
                };
                match (answer, stale) {
                    (_, Some(st)) => {
                        self.refresh_in_background(&key, &question, &snap.upstreams);
                        (
                            respond::stale(&st.message, asked),
                            Outcome::Cached,
                            Some(MsgRef::Cached(st)),
                        )
                    }
                    (Some(ans), None) => {
                        self.cache.insert(key, &ans.message, now);
                        (
                            respond::from_upstream(&ans.message, asked, 0, max_ttl),
                            Outcome::Forwarded,
                            Some(MsgRef::Fresh(ans)),
                        )
                    }
                    (None, None) => (Reply::code(ResponseCode::ServFail), Outcome::Failed, None),
                }
            };
        // 7. Answer policy (uncloaking), on fresh and cached answers alike since policy is per
        //    zone: a CNAME / SVCB alias into a tracker blocks the original name.
        if zone.mode != Mode::Off
            && zone.uncloak
            && allowed.is_none()
            && would_block.is_none()
            && let Some(m) = answer_msg.as_ref()
            && let Some(mut v) = uncloak(snap, zone, m.message())
        {
            if zone.mode == Mode::Enforce {
                let text = v.ede_text();
                let reply = respond::blocked(
                    asked,
                    &zone.response,
                    RuleAction::Block,
                    ttl,
                    asked.name,
                    &text,
                );
                return Done {
                    reply,
                    outcome: Outcome::Blocked,
                    verdict: Some(v),
                    bypass: None,
                    upstream: answer_msg.as_ref().and_then(MsgRef::server),
                    cache: Some(matches!(answer_msg, Some(MsgRef::Cached(_)))),
                };
            }
            v.allowed = false;
            would_block = Some(v);
        }
        if would_block.is_some() && outcome != Outcome::Failed {
            outcome = Outcome::WouldBlock;
        }
        Done {
            reply,
            outcome,
            verdict: would_block.or(allowed),
            bypass: None,
            upstream: answer_msg.as_ref().and_then(MsgRef::server),
            cache: Some(matches!(answer_msg, Some(MsgRef::Cached(_)))),
        }
    }
}

impl Pipeline {
    /// The UDP fast path: answers the common cases (client in no zone, blocked names, cache
    /// hits) straight from the request bytes into `out`, with no task, no allocation on a cache
    /// hit and no lock but the cache shard's. Returns false when the query needs the full path
    /// (anything unusual, canaries, cache misses, answers too large for the client): the caller
    /// then hands the same bytes to [`Handler`]. Both paths produce the same answers.
    pub fn fast_udp(&self, raw: &[u8], client: IpAddr, out: &mut Vec<u8>) -> bool {
        let start = Instant::now();
        let Some(q) = wire::parse_query(raw) else {
            return false;
        };
        let snap = self.snapshot.load();
        let qname = q.name();
        let qtype = RecordType::from(q.qtype);
        let Some((zone_id, zone)) = snap.zone_of(client) else {
            wire::encode_refused(out, &q);
            self.record_no_zone(client, qname, qtype, start);
            return true;
        };
        // The rate limit is charged only where this path answers: a query handed to the full
        // path is charged there, once.
        let limited = |out: &mut Vec<u8>| -> bool {
            let rl = zone.rate_limit;
            if self.limiter.allow(client, rl.qps, rl.burst, start) {
                return false;
            }
            self.record_limited(zone_id, zone, client, qname, qtype, start);
            if rl.drop {
                out.clear();
            } else {
                wire::encode_refused(out, &q);
            }
            true
        };
        if zone.canaries && Canary::of(qname).is_some() {
            return false;
        }
        let ttl = u32::try_from(zone.block_ttl.as_secs()).unwrap_or(u32::MAX);
        // Writes and records a blocked answer (`soa_at`: where the SOA owner starts in the name).
        let blocked = |out: &mut Vec<u8>,
                       v: &Verdict,
                       action: RuleAction,
                       soa_at: Option<usize>,
                       cache: Option<bool>| {
            wire::encode_blocked(out, &q, &zone.response, action, ttl, soa_at, &v.ede_text());
            self.record_fast(
                zone_id,
                zone,
                client,
                qname,
                qtype,
                Outcome::Blocked,
                Some(v),
                wire::rcode_of(out),
                cache,
                start,
            );
        };
        let qn = QueryName::new(qname.as_bytes());
        let mut would_block: Option<Verdict> = None;
        let mut allowed = false;
        if zone.mode != Mode::Off {
            match policy::decide(&snap.lists, zone, &qn) {
                Some(Decision::Block(v, action)) if zone.mode == Mode::Enforce => {
                    if limited(out) {
                        return true;
                    }
                    // The SOA owner: the matched rule, a suffix of the query name.
                    let at = qname.len().saturating_sub(v.rule.len());
                    blocked(out, &v, action, Some(at), None);
                    return true;
                }
                Some(Decision::Block(v, _)) => would_block = Some(v),
                Some(Decision::Allow(_)) => allowed = true,
                None => {}
            }
        }
        let mut key = [0u8; KEY_MAX];
        let n = pack_key(&mut key, qname, q.qtype, q.qclass, q.dnssec_ok(), q.cd);
        let now = Instant::now();
        let Some(hit) = self.cache.get(&key[..n], now) else {
            return false;
        };
        let Some(w) = hit.wire.as_ref() else {
            return false;
        };
        if limited(out) {
            return true;
        }
        if zone.mode != Mode::Off && zone.uncloak && !allowed && would_block.is_none() {
            for t in &w.alias_targets {
                let tq = QueryName::new(t.as_bytes());
                if let Some(Decision::Block(mut v, _)) =
                    policy::decide_target(&snap.lists, zone, &tq)
                {
                    v.cloaked_via = Some(t.to_string());
                    if zone.mode == Mode::Enforce {
                        blocked(out, &v, RuleAction::Block, None, Some(true));
                        return true;
                    }
                    would_block = Some(v);
                    break;
                }
            }
        }
        if !wire::encode_cached(out, &q, w, hit.age(now), self.cache.max_ttl()) {
            return false;
        }
        let outcome = if would_block.is_some() {
            Outcome::WouldBlock
        } else {
            Outcome::Cached
        };
        self.record_fast(
            zone_id,
            zone,
            client,
            qname,
            qtype,
            outcome,
            would_block.as_ref(),
            wire::rcode_of(out),
            Some(true),
            start,
        );
        true
    }

    /// After a stale answer (RFC 8767), keeps trying the upstreams in the background (after 1 s,
    /// doubling to 30 s, six tries) and puts a fresh answer in the cache as soon as one answers,
    /// so clients get fresh data once upstreams return. At most 256 names at a time, one task each.
    fn refresh_in_background(
        &self,
        key: &CacheKey,
        q: &Question,
        upstreams: &crate::upstream::Upstreams,
    ) {
        {
            let mut set = match self.refreshing.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if set.len() >= 256 || !set.insert(key.as_bytes().into()) {
                return;
            }
        }
        let (cache, set, key, q, ups) = (
            self.cache.clone(),
            self.refreshing.clone(),
            key.clone(),
            q.clone(),
            upstreams.clone(),
        );
        tokio::spawn(async move {
            let mut wait = std::time::Duration::from_secs(1);
            for _ in 0..6 {
                tokio::time::sleep(wait).await;
                if let Some(ans) = ups.resolve(&q).await
                    && ans.message.metadata.response_code != ResponseCode::ServFail
                {
                    cache.insert(key.clone(), &ans.message, Instant::now());
                    break;
                }
                wait = (wait * 2).min(std::time::Duration::from_secs(30));
            }
            if let Ok(mut s) = set.lock() {
                s.remove(key.as_bytes());
            }
        });
    }

    /// A client in no zone: refused (both paths).
    fn record_no_zone(&self, client: IpAddr, qname: &str, qtype: RecordType, start: Instant) {
        self.recorder.record(&Event {
            zone: None,
            zone_id: None,
            client,
            qname,
            qtype,
            outcome: Outcome::Refused,
            verdict: None,
            mode: Mode::Off,
            bypass: None,
            rcode: ResponseCode::Refused,
            upstream: None,
            cache: None,
            elapsed: start.elapsed(),
        });
    }

    fn record_limited(
        &self,
        zone_id: crate::zones::ZoneId,
        zone: &ZonePolicy,
        client: IpAddr,
        qname: &str,
        qtype: RecordType,
        start: Instant,
    ) {
        self.record_fast(
            zone_id,
            zone,
            client,
            qname,
            qtype,
            Outcome::RateLimited,
            None,
            ResponseCode::Refused,
            None,
            start,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn record_fast(
        &self,
        zone_id: crate::zones::ZoneId,
        zone: &ZonePolicy,
        client: IpAddr,
        qname: &str,
        qtype: RecordType,
        outcome: Outcome,
        verdict: Option<&Verdict>,
        rcode: ResponseCode,
        cache: Option<bool>,
        start: Instant,
    ) {
        self.recorder.record(&Event {
            zone: Some(&zone.name),
            zone_id: Some(zone_id),
            client,
            qname,
            qtype,
            outcome,
            verdict,
            mode: zone.mode,
            bypass: None,
            rcode,
            upstream: None,
            cache,
            elapsed: start.elapsed(),
        });
    }
}

enum MsgRef {
    Cached(Arc<crate::cache::CachedAnswer>),
    Fresh(Arc<crate::upstream::UpstreamAnswer>),
}

impl MsgRef {
    fn server(&self) -> Option<std::net::SocketAddr> {
        match self {
            Self::Cached(_) => None,
            Self::Fresh(f) => Some(f.server),
        }
    }

    fn message(&self) -> &hickory_proto::op::Message {
        match self {
            Self::Cached(c) => &c.message,
            Self::Fresh(f) => &f.message,
        }
    }
}

/// Checks every CNAME target and HTTPS / SVCB alias target of an answer against the zone's block
/// lists and the catalogue's cloak targets.
fn uncloak(snap: &Snapshot, zone: &ZonePolicy, m: &hickory_proto::op::Message) -> Option<Verdict> {
    for r in &m.answers {
        let Some(t) = respond::alias_target(&r.data) else {
            continue;
        };
        let t = t.as_str();
        let q = QueryName::new(t.as_bytes());
        match policy::decide_target(&snap.lists, zone, &q) {
            Some(Decision::Block(mut v, _)) => {
                v.cloaked_via = Some(t.to_owned());
                return Some(v);
            }
            // An allowed target (e.g. the organisation's own CDN) stops nothing else.
            Some(Decision::Allow(_)) | None => {}
        }
    }
    None
}

/// The hickory-server entry point.
#[derive(Clone)]
pub struct Handler(pub Arc<Pipeline>);

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.0.handle(request, response_handle).await
    }
}
