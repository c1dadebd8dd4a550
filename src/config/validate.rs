//! Semantic validation: raw TOML values → typed [`Config`]. Every check reports the exact
//! `file:line:column` of the offending value and says what was expected; validation keeps going
//! after an error so that one run of `pixelguard check` shows every problem in the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;

use ipnet::IpNet;
use toml::Spanned;

use super::raw::{RawConfig, RawQueryLog, RawResponse, RawSize};
use super::{
    AdminConfig, BlockResponse, CacheConfig, CatalogueMode, ClientMode, Config, ConfigError,
    ConfigErrors, FetchOpts, ListConfig, ListFormat, ListSource, Mode, Overrides, QueryLogConfig,
    RecordMode, Secret, ServerConfig, UpstreamConfig, UpstreamMode, UpstreamServer, ZoneConfig,
};

/// Builtin list names (`source = "builtin:NAME"`).
pub const BUILTIN_LISTS: &[&str] = &["trackers"];

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn at(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, column) = match span {
            Some(s) => line_col(self.text, s.start),
            None => (0, 0),
        };
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }
    fn spanned<T>(&mut self, v: &Spanned<T>, message: impl Into<String>) {
        self.at(Some(v.span()), message);
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

pub(super) fn validate(
    text: &str,
    file: &str,
    base: &Path,
    overrides: &Overrides,
) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx {
        text,
        file,
        errors: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.message().trim().to_owned();
            cx.at(e.span(), msg);
            return Err(ConfigErrors(cx.errors));
        }
    };

    // [server]
    let mut listen = Vec::new();
    if overrides.listen.is_empty() {
        for l in &raw.server.listen {
            match parse_socket_addr(l.get_ref()) {
                Some(a) => listen.push(a),
                None => cx.spanned(
                    l,
                    format!(
                        "server.listen: invalid address {:?}; expected IP:PORT such as \"0.0.0.0:53\" or \"[::]:53\"",
                        l.get_ref()
                    ),
                ),
            }
        }
    } else {
        for l in &overrides.listen {
            match parse_socket_addr(l) {
                Some(a) => listen.push(a),
                None => cx.at(
                    None,
                    format!("--listen: invalid address {l:?}; expected IP:PORT"),
                ),
            }
        }
    }
    if listen.is_empty() && cx.errors.is_empty() {
        cx.at(
            None,
            "server.listen: no listen address; expected at least one IP:PORT",
        );
    }
    let server = ServerConfig {
        listen: listen.clone(),
        udp_sockets: raw.server.udp_sockets,
        workers: raw.server.workers,
        tcp_idle_timeout: raw.server.tcp_idle_timeout,
        tcp_max_connections: raw.server.tcp_max_connections.max(1),
        tcp_max_connections_per_client: raw.server.tcp_max_connections_per_client.max(1),
        udp_fast_path: match raw.server.udp_path.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("fast") => true,
            Some("hickory") => false,
            Some(other) => {
                if let Some(p) = &raw.server.udp_path {
                    cx.spanned(
                        p,
                        format!(
                            "server.udp_path: unknown value {other:?}; expected fast or hickory"
                        ),
                    );
                }
                true
            }
        },
    };

    // [upstream]
    let mode = match &raw.upstream.mode {
        None => UpstreamMode::Forward,
        Some(m) => match m.get_ref().as_str() {
            "forward" => UpstreamMode::Forward,
            "recursive" => UpstreamMode::Recursive,
            other => {
                cx.spanned(
                    m,
                    format!("upstream.mode: unknown mode {other:?}; expected forward (to upstream.servers) or recursive (from the root servers)"),
                );
                UpstreamMode::Forward
            }
        },
    };
    let mut servers = Vec::new();
    let mut add_upstream = |cx: &mut Ctx<'_>, s: &str, span: Option<Range<usize>>| {
        if s == "system" {
            let found = resolv_conf_nameservers(Path::new("/etc/resolv.conf"), &listen);
            // No nameserver found is not an error: pixelguard still starts (blocking works, cache
            // misses get SERVFAIL) and the start-up summary says so.
            let _ = &span;
            servers.extend(found.into_iter().map(UpstreamServer::plain));
        } else {
            match UpstreamServer::parse(s) {
                Ok(u) => servers.push(u),
                Err(e) => cx.at(
                    span,
                    format!("upstream.servers: invalid upstream {s:?}: {e}; expected \"IP:PORT\", \"IP\", \"tls://IP:PORT#NAME\", \"https://IP:PORT/dns-query#NAME\" or \"system\""),
                ),
            }
        }
    };
    if mode == UpstreamMode::Recursive {
        for s in &raw.upstream.servers {
            cx.spanned(
                s,
                "upstream.servers: not used when mode = \"recursive\"; remove it, or set mode = \"forward\"",
            );
        }
        if !overrides.upstream.is_empty() {
            cx.at(
                None,
                "--upstream: not used when upstream.mode = \"recursive\" in the config",
            );
        }
    } else if overrides.upstream.is_empty() {
        for s in &raw.upstream.servers {
            add_upstream(&mut cx, s.get_ref(), Some(s.span()));
        }
        if raw.upstream.servers.is_empty() {
            add_upstream(&mut cx, "system", None);
        }
    } else {
        for s in &overrides.upstream {
            add_upstream(&mut cx, s, None);
        }
    }
    if raw.upstream.timeout.is_zero() || raw.upstream.deadline.is_zero() {
        cx.at(None, "upstream: timeout and deadline must be above zero");
    }
    let (ca_file, ca_certs) = match &raw.upstream.ca_file {
        None => (None, Vec::new()),
        Some(f) => {
            let path = base.join(f.get_ref());
            match load_ca_file(&path) {
                Ok(certs) => (Some(path), certs),
                Err(e) => {
                    cx.spanned(f, format!("upstream.ca_file: {}: {e}", path.display()));
                    (Some(path), Vec::new())
                }
            }
        }
    };
    let (root_hints, roots) = match &raw.upstream.root_hints {
        None => (
            None,
            super::BUILTIN_ROOT_HINTS
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
        ),
        Some(f) => {
            let path = base.join(f.get_ref());
            match load_root_hints(&path) {
                Ok(r) => (Some(path), r),
                Err(e) => {
                    cx.spanned(f, format!("upstream.root_hints: {}: {e}", path.display()));
                    (Some(path), Vec::new())
                }
            }
        }
    };
    let mut recursion_ports = Vec::new();
    for p in &raw.upstream.recursion_ports {
        match parse_socket_addr(p.get_ref()) {
            Some(a) => recursion_ports.push(a),
            None => cx.spanned(
                p,
                format!(
                    "upstream.recursion_ports: invalid entry {:?}; expected \"IP:PORT\"",
                    p.get_ref()
                ),
            ),
        }
    }
    let upstream = UpstreamConfig {
        servers,
        timeout: raw.upstream.timeout,
        deadline: raw.upstream.deadline.max(raw.upstream.timeout),
        mode,
        ca_file,
        ca_certs,
        root_hints,
        roots,
        qname_minimization: raw.upstream.qname_minimization,
        recursion_ports,
        max_inflight: raw.upstream.max_inflight.max(1),
        strategy: match raw.upstream.strategy.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("ordered") => crate::upstream::health::Strategy::Ordered,
            Some("fastest") => crate::upstream::health::Strategy::Fastest,
            Some(other) => {
                if let Some(s) = &raw.upstream.strategy {
                    cx.spanned(s, format!("upstream.strategy: unknown strategy {other:?}; expected ordered or fastest"));
                }
                crate::upstream::health::Strategy::Ordered
            }
        },
    };

    let cache = CacheConfig {
        max_entries: raw.cache.max_entries,
        min_ttl: raw.cache.min_ttl,
        max_ttl: raw.cache.max_ttl.max(raw.cache.min_ttl),
        negative_max_ttl: raw.cache.negative_max_ttl,
        servfail_ttl: raw.cache.servfail_ttl.min(super::DEFAULT_SERVFAIL_TTL),
        serve_stale: raw.cache.serve_stale,
    };

    // [lists.*]
    let mut lists = BTreeMap::new();
    for (name, l) in &raw.lists {
        let l_ref = l.get_ref();
        let src = l_ref.source.get_ref();
        let source = if let Some(b) = src.strip_prefix("builtin:") {
            if !BUILTIN_LISTS.contains(&b) {
                cx.spanned(
                    &l_ref.source,
                    format!(
                        "lists.{name}.source: unknown builtin list {b:?}; available: {}",
                        BUILTIN_LISTS.join(", ")
                    ),
                );
                continue;
            }
            ListSource::Builtin(b.to_owned())
        } else if src.starts_with("https://") || src.starts_with("http://") {
            if src.starts_with("http://") && !l_ref.allow_insecure {
                cx.spanned(
                    &l_ref.source,
                    format!("lists.{name}.source: {src:?} is plain http, which anyone on the path can alter; use https://, or set allow_insecure = true for this list"),
                );
                continue;
            }
            if url::Url::parse(src)
                .map(|u| u.host().is_none())
                .unwrap_or(true)
            {
                cx.spanned(
                    &l_ref.source,
                    format!("lists.{name}.source: invalid URL {src:?}"),
                );
                continue;
            }
            ListSource::Url(src.clone())
        } else if src.is_empty() {
            cx.spanned(
                &l_ref.source,
                format!("lists.{name}.source: empty; expected a file path or builtin:trackers"),
            );
            continue;
        } else {
            ListSource::File(base.join(src))
        };
        let format = match &l_ref.format {
            None => None,
            Some(f) => match parse_format(f.get_ref()) {
                Some(v) => Some(v),
                None => {
                    cx.spanned(
                        f,
                        format!("lists.{name}.format: unknown format {:?}; expected domains, hosts, adblock, rpz or catalogue", f.get_ref()),
                    );
                    None
                }
            },
        };
        lists.insert(
            name.clone(),
            ListConfig {
                name: name.clone(),
                source,
                format,
                fetch: fetch_opts(&mut cx, name, l),
            },
        );
    }
    for (i, path) in overrides.block.iter().enumerate() {
        let name = format!("cli-block-{}", i + 1);
        let path = if path.is_absolute() {
            path.clone()
        } else {
            std::env::current_dir().unwrap_or_default().join(path)
        };
        lists.insert(
            name.clone(),
            ListConfig {
                name,
                source: ListSource::File(path),
                format: None,
                fetch: FetchOpts::default(),
            },
        );
    }
    let defined: Vec<&str> = raw.lists.keys().map(String::as_str).collect();

    // [zones.*]
    let mut zones = Vec::new();
    let mut seen_nets: BTreeMap<IpNet, String> = BTreeMap::new();
    for (name, z) in &raw.zones {
        let zr = z.get_ref();
        if name == "none" {
            // The metrics' `zone` label of clients in no zone.
            cx.spanned(
                z,
                "zones.none: the zone name \"none\" is reserved (it labels clients in no zone); choose another name",
            );
        }
        let mut networks = Vec::new();
        for (i, n) in zr.networks.iter().enumerate() {
            match parse_net(n.get_ref()) {
                Some(net) => {
                    if let Some(other) = seen_nets.insert(net, name.clone()) {
                        cx.spanned(n, format!("zones.{name}.networks[{i}]: {net} is already in zone {other:?}; a network belongs to one zone"));
                    }
                    networks.push(net);
                }
                None => cx.spanned(
                    n,
                    format!("zones.{name}.networks[{i}]: invalid CIDR {:?}; expected e.g. \"10.20.0.0/16\" or \"fd00::/48\"", n.get_ref()),
                ),
            }
        }
        if zr.networks.is_empty() {
            cx.spanned(
                z,
                format!("zones.{name}.networks: empty; a zone needs at least one network"),
            );
        }
        let check_lists = |cx: &mut Ctx<'_>, key: &str, v: &[Spanned<String>]| -> Vec<String> {
            let mut out = Vec::new();
            for (i, l) in v.iter().enumerate() {
                if raw.lists.contains_key(l.get_ref()) {
                    out.push(l.get_ref().clone());
                } else {
                    cx.spanned(
                        l,
                        format!(
                            "zones.{name}.{key}[{i}]: undefined list {:?}; defined: {}",
                            l.get_ref(),
                            if defined.is_empty() {
                                "(none)".to_owned()
                            } else {
                                defined.join(", ")
                            }
                        ),
                    );
                }
            }
            out
        };
        let block = check_lists(&mut cx, "block", &zr.block);
        let allow = check_lists(&mut cx, "allow", &zr.allow);
        let mode = match &zr.mode {
            None => Mode::Enforce,
            Some(m) => match m.get_ref().as_str() {
                "enforce" => Mode::Enforce,
                "log" => Mode::Log,
                "off" => Mode::Off,
                other => {
                    cx.spanned(m, format!("zones.{name}.mode: unknown mode {other:?}; expected enforce, log or off"));
                    Mode::Enforce
                }
            },
        };
        let response = match &zr.response {
            None => BlockResponse::Nxdomain,
            Some(r) => match r.get_ref() {
                RawResponse::Keyword(k) => match k.as_str() {
                    "nxdomain" => BlockResponse::Nxdomain,
                    "refused" => BlockResponse::Refused,
                    "nodata" => BlockResponse::Nodata,
                    "null" => BlockResponse::Null,
                    other => {
                        cx.spanned(r, format!("zones.{name}.response: unknown response {other:?}; expected nxdomain, refused, nodata, null or a list of IP addresses"));
                        BlockResponse::Nxdomain
                    }
                },
                RawResponse::Addresses(a) => {
                    let mut ips = Vec::new();
                    for (i, s) in a.iter().enumerate() {
                        match s.parse::<IpAddr>() {
                            Ok(ip) => ips.push(ip),
                            Err(_) => cx.spanned(
                                r,
                                format!("zones.{name}.response[{i}]: invalid IP address {s:?}"),
                            ),
                        }
                    }
                    if a.is_empty() {
                        cx.spanned(r, format!("zones.{name}.response: empty address list; expected at least one IP address"));
                    }
                    BlockResponse::Addresses(ips)
                }
            },
        };
        let catalogue = match &zr.catalogue {
            None => CatalogueMode::Block,
            Some(c) => match c.get_ref().as_str() {
                "block" => CatalogueMode::Block,
                "strict" => CatalogueMode::Strict,
                other => {
                    cx.spanned(c, format!("zones.{name}.catalogue: unknown value {other:?}; expected block or strict"));
                    CatalogueMode::Block
                }
            },
        };
        let query_log = zr.query_log.as_ref().and_then(|v| {
            if raw.query_log.is_none() {
                cx.spanned(v, format!("zones.{name}.query_log: there is no [query_log] section; add one with a `path` first"));
            }
            parse_record_mode(&mut cx, &format!("zones.{name}.query_log"), v)
        });
        let query_log_client = zr.query_log_client.as_ref().and_then(|v| {
            if raw.query_log.is_none() {
                cx.spanned(v, format!("zones.{name}.query_log_client: there is no [query_log] section; add one with a `path` first"));
            }
            parse_client_mode(&mut cx, &format!("zones.{name}.query_log_client"), v)
        });
        zones.push(ZoneConfig {
            name: name.clone(),
            networks,
            block,
            allow,
            mode,
            response,
            block_ttl: zr.block_ttl.unwrap_or(super::DEFAULT_BLOCK_TTL),
            catalogue,
            canaries: zr.canaries.unwrap_or(true),
            uncloak: zr.uncloak.unwrap_or(true),
            query_log,
            query_log_client,
            rate_limit: rate_limit(&mut cx, name, zr.rate_limit.as_ref()),
        });
    }
    if !overrides.block.is_empty() {
        // --block applies to every client: the configured zones block the lists too, and a
        // catch-all zone covers clients in no configured zone.
        let cli_lists: Vec<String> = (1..=overrides.block.len())
            .map(|i| format!("cli-block-{i}"))
            .collect();
        for z in &mut zones {
            z.block.extend(cli_lists.iter().cloned());
        }
        zones.push(ZoneConfig {
            name: "cli".into(),
            networks: vec![
                IpNet::from(IpAddr::from([0u8, 0, 0, 0])).supernet_or_self(0),
                any_v6(),
            ],
            block: (1..=overrides.block.len())
                .map(|i| format!("cli-block-{i}"))
                .collect(),
            allow: Vec::new(),
            mode: Mode::Enforce,
            response: BlockResponse::Nxdomain,
            block_ttl: super::DEFAULT_BLOCK_TTL,
            catalogue: CatalogueMode::Block,
            canaries: true,
            uncloak: true,
            query_log: None,
            query_log_client: None,
            // A trial or benchmark override: no per-client limit.
            rate_limit: super::RateLimit {
                qps: 0.0,
                burst: 0.0,
                drop: false,
            },
        });
    }

    let admin = validate_admin(&mut cx, &raw);
    let state_dir = match &raw.state_dir {
        Some(d) => base.join(d.get_ref()),
        None => std::path::PathBuf::from(super::DEFAULT_STATE_DIR),
    };
    let query_log = raw
        .query_log
        .as_ref()
        .and_then(|q| validate_query_log(&mut cx, q.get_ref(), base, &state_dir));

    if !cx.errors.is_empty() {
        return Err(ConfigErrors(cx.errors));
    }
    Ok(Config {
        origin: file.to_owned(),
        server,
        upstream,
        cache,
        lists,
        zones,
        log_level: raw.log.level,
        state_dir,
        strict_start: raw.strict_start,
        admin,
        query_log,
    })
}

fn validate_admin(cx: &mut Ctx<'_>, raw: &RawConfig) -> AdminConfig {
    let a = &raw.admin;
    let listen = match &a.listen {
        None => parse_socket_addr(super::DEFAULT_ADMIN_LISTEN),
        Some(l) if l.get_ref().trim().is_empty() => None,
        Some(l) => {
            let v = parse_socket_addr(l.get_ref());
            if v.is_none() {
                cx.spanned(
                    l,
                    format!(
                        "admin.listen: invalid address {:?}; expected IP:PORT such as \"127.0.0.1:9153\", or \"\" for no admin server",
                        l.get_ref()
                    ),
                );
            }
            v
        }
    };
    let token = a.token.as_ref().and_then(|t| {
        let v = t.get_ref();
        if v.len() < 16 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            cx.spanned(
                t,
                "admin.token: expected at least 16 printable characters without spaces",
            );
            return None;
        }
        Some(Secret(v.clone()))
    });
    AdminConfig {
        listen,
        token,
        trust_loopback: a.trust_loopback,
    }
}

fn validate_query_log(
    cx: &mut Ctx<'_>,
    q: &RawQueryLog,
    base: &Path,
    state_dir: &Path,
) -> Option<QueryLogConfig> {
    let p = q.path.get_ref();
    if p.trim().is_empty() {
        cx.spanned(
            &q.path,
            "query_log.path: empty; expected a file path such as \"/var/log/pixelguard/queries.jsonl\"",
        );
        return None;
    }
    let path = base.join(p);
    let record = q
        .record
        .as_ref()
        .and_then(|v| parse_record_mode(cx, "query_log.record", v))
        .unwrap_or(RecordMode::Policy);
    let client = q
        .client
        .as_ref()
        .and_then(|v| parse_client_mode(cx, "query_log.client", v))
        .unwrap_or(ClientMode::Hash);
    let key = q.key.as_ref().and_then(|k| {
        if k.get_ref().chars().count() < super::MIN_QUERY_LOG_KEY_LEN {
            cx.spanned(
                k,
                format!(
                    "query_log.key: too short; expected at least {} characters (or leave it out: a random key is generated into key_file)",
                    super::MIN_QUERY_LOG_KEY_LEN
                ),
            );
            return None;
        }
        Some(Secret(k.get_ref().clone()))
    });
    let key_file = match &q.key_file {
        Some(k) if !k.get_ref().trim().is_empty() => base.join(k.get_ref()),
        Some(k) => {
            cx.spanned(k, "query_log.key_file: empty; expected a file path");
            return None;
        }
        // The state folder, not next to the log: whoever receives the log files must not get
        // the key that links pseudonyms back to addresses.
        None => state_dir.join(super::QUERY_LOG_KEY_FILE),
    };
    let max_size = match &q.max_size {
        None => super::DEFAULT_QUERY_LOG_MAX_SIZE,
        Some(s) => match parse_size(s.get_ref()) {
            Some(n) if n >= 4096 => n,
            _ => {
                cx.spanned(
                    s,
                    "query_log.max_size: expected a size of at least 4096 bytes, e.g. 104857600, \"100MB\" or \"64MiB\"",
                );
                super::DEFAULT_QUERY_LOG_MAX_SIZE
            }
        },
    };
    let buffer = q.buffer.unwrap_or(super::DEFAULT_QUERY_LOG_BUFFER);
    if buffer == 0 {
        cx.at(None, "query_log.buffer: must be at least 1");
    }
    Some(QueryLogConfig {
        path,
        record,
        client,
        key,
        key_file,
        max_size,
        keep: q.keep.unwrap_or(super::DEFAULT_QUERY_LOG_KEEP),
        max_age: q.max_age.unwrap_or(super::DEFAULT_QUERY_LOG_MAX_AGE),
        buffer: buffer.max(1),
    })
}

fn parse_record_mode(cx: &mut Ctx<'_>, key: &str, v: &Spanned<String>) -> Option<RecordMode> {
    match v.get_ref().as_str() {
        "policy" => Some(RecordMode::Policy),
        "all" => Some(RecordMode::All),
        "none" => Some(RecordMode::None),
        other => {
            cx.spanned(
                v,
                format!("{key}: unknown value {other:?}; expected policy (blocked and would-block only), all or none"),
            );
            None
        }
    }
}

fn parse_client_mode(cx: &mut Ctx<'_>, key: &str, v: &Spanned<String>) -> Option<ClientMode> {
    match v.get_ref().as_str() {
        "hash" => Some(ClientMode::Hash),
        "masked" => Some(ClientMode::Masked),
        "full" => Some(ClientMode::Full),
        "none" => Some(ClientMode::None),
        other => {
            cx.spanned(
                v,
                format!("{key}: unknown value {other:?}; expected hash, masked, full or none"),
            );
            None
        }
    }
}

/// `1048576`, `"100MB"`, `"64MiB"`, `"1 GB"`, `"512k"`: decimal (kB, MB, GB) and binary (KiB,
/// MiB, GiB) units, case-insensitive.
fn parse_size(s: &RawSize) -> Option<u64> {
    let t = match s {
        RawSize::Bytes(n) => return Some(*n),
        RawSize::Text(t) => t.trim(),
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn rate_limit(
    cx: &mut Ctx<'_>,
    zone: &str,
    r: Option<&Spanned<super::raw::RawRateLimit>>,
) -> super::RateLimit {
    let Some(r) = r else {
        return super::RateLimit::default();
    };
    let raw = r.get_ref();
    if !(raw.qps.is_finite() && raw.qps >= 0.0) {
        cx.spanned(
            r,
            format!(
                "zones.{zone}.rate_limit.qps: {} is not a rate; expected 0 (off) or more",
                raw.qps
            ),
        );
    }
    let burst = raw.burst.unwrap_or(raw.qps * 2.0);
    if !(burst.is_finite() && burst >= 0.0) {
        cx.spanned(
            r,
            format!("zones.{zone}.rate_limit.burst: {burst} is not a size; expected 0 or more"),
        );
    }
    let drop = match raw.action.as_deref() {
        None | Some("refused") => false,
        Some("drop") => true,
        Some(other) => {
            cx.spanned(r, format!("zones.{zone}.rate_limit.action: unknown action {other:?}; expected refused or drop"));
            false
        }
    };
    super::RateLimit {
        qps: raw.qps.max(0.0) as f32,
        burst: burst.max(0.0) as f32,
        drop,
    }
}

fn fetch_opts(cx: &mut Ctx<'_>, name: &str, l: &Spanned<super::raw::RawList>) -> FetchOpts {
    let r = l.get_ref();
    let d = FetchOpts::default();
    let max_shrink = r.max_shrink.unwrap_or(d.max_shrink);
    if !(0.0..=1.0).contains(&max_shrink) {
        cx.spanned(l, format!("lists.{name}.max_shrink: {max_shrink} is not a fraction; expected 0.0 to 1.0 (0.5 = 50%)"));
    }
    let refresh = r.refresh.unwrap_or(d.refresh);
    if refresh < std::time::Duration::from_secs(1) {
        cx.spanned(
            l,
            format!("lists.{name}.refresh: below one second; expected e.g. \"12h\""),
        );
    }
    FetchOpts {
        refresh,
        timeout: r
            .timeout
            .unwrap_or(d.timeout)
            .max(std::time::Duration::from_millis(100)),
        max_size: r.max_size.unwrap_or(d.max_size),
        min_entries: r.min_entries.unwrap_or(d.min_entries),
        max_shrink: max_shrink.clamp(0.0, 1.0),
    }
}

trait SupernetOrSelf {
    fn supernet_or_self(self, len: u8) -> IpNet;
}
impl SupernetOrSelf for IpNet {
    fn supernet_or_self(self, len: u8) -> IpNet {
        IpNet::new(self.addr(), len)
            .map(|n| n.trunc())
            .unwrap_or(self)
    }
}

fn any_v6() -> IpNet {
    IpNet::from(IpAddr::from([0u16; 8])).supernet_or_self(0)
}

fn parse_format(s: &str) -> Option<ListFormat> {
    Some(match s {
        "domains" => ListFormat::Domains,
        "hosts" => ListFormat::Hosts,
        "adblock" => ListFormat::Adblock,
        "rpz" => ListFormat::Rpz,
        "catalogue" => ListFormat::Catalogue,
        _ => return None,
    })
}

/// The certificates of a PEM file, each checked to be a usable trust anchor.
pub fn load_ca_file(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&bytes) {
        let c = c.map_err(|e| format!("not a PEM certificate file: {e}"))?;
        let mut store = rustls::RootCertStore::empty();
        store
            .add(c.clone())
            .map_err(|e| format!("certificate {} is not usable as a CA: {e}", certs.len() + 1))?;
        certs.push(c);
    }
    if certs.is_empty() {
        return Err("no \"BEGIN CERTIFICATE\" block found; expected PEM CA certificates".into());
    }
    Ok(certs)
}

/// The root server addresses of a hints file in zone-file form (the `named.root` format: NS
/// records for `.` and A / AAAA records for their names); every A / AAAA record counts.
pub fn load_root_hints(path: &Path) -> Result<Vec<IpAddr>, String> {
    use hickory_proto::rr::{Name, RData};
    use hickory_proto::serialize::txt::Parser;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let (_, sets) = Parser::new(text, Some(path.to_path_buf()), Some(Name::root()))
        .parse()
        .map_err(|e| format!("not a zone-file style hints file: {e}"))?;
    let mut out = Vec::new();
    for set in sets.values() {
        for r in set.records_without_rrsigs() {
            let ip = match &r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    if out.is_empty() {
        return Err("no A or AAAA record: no root server address".into());
    }
    Ok(out)
}

/// `"IP:PORT"` or `"[IPv6]:PORT"`.
fn parse_socket_addr(s: &str) -> Option<SocketAddr> {
    s.trim().parse().ok()
}

/// A CIDR, or a bare address meaning a single host. Host bits must be zero, so that a typo such as
/// "10.20.3.0/16" is caught instead of silently meaning 10.20.0.0/16.
fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return (n.trunc() == n).then_some(n);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// The nameservers of a resolv.conf, skipping any that would point back at one of our own
/// listeners (a loop), and keeping their order.
pub fn resolv_conf_nameservers(path: &Path, own: &[SocketAddr]) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = it.next() else { continue };
        // Link-local IPv6 addresses may carry a zone index ("fe80::1%eth0"); drop it.
        let addr = addr.split('%').next().unwrap_or(addr);
        let Ok(ip) = addr.parse::<IpAddr>() else {
            continue;
        };
        let sa = SocketAddr::new(ip, 53);
        let loops = own.iter().any(|l| {
            l.port() == 53 && (l.ip() == ip || (l.ip().is_unspecified() && ip.is_loopback()))
        });
        if !loops && !out.contains(&sa) {
            out.push(sa);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn sizes() {
        let t = |s: &str| parse_size(&RawSize::Text(s.into()));
        assert_eq!(t("100MB"), Some(100_000_000));
        assert_eq!(t("64MiB"), Some(64 << 20));
        assert_eq!(t("1 gb"), Some(1_000_000_000));
        assert_eq!(t("4096"), Some(4096));
        assert_eq!(t("12 parsecs"), None);
        assert_eq!(t("MB"), None);
        assert_eq!(parse_size(&RawSize::Bytes(5)), Some(5));
    }

    #[test]
    fn admin_and_query_log_sections() {
        let base = Path::new("/etc/pg");
        let ok = |t: &str| validate(t, "t.toml", base, &Overrides::default());
        let head =
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n";
        let c = ok(head).unwrap();
        assert_eq!(c.admin.listen, "127.0.0.1:9153".parse().ok());
        assert!(c.admin.trust_loopback && c.admin.token.is_none());
        assert!(c.query_log.is_none());
        let c = ok(&format!("{head}[admin]\nlisten = \"\"\n")).unwrap();
        assert_eq!(c.admin.listen, None);
        let c = ok(&format!(
            "{head}[query_log]\npath = \"q.jsonl\"\nmax_size = \"1MiB\"\n[zones.z]\nnetworks = [\"10.0.0.0/8\"]\nquery_log = \"all\"\nquery_log_client = \"masked\"\n"
        ))
        .unwrap();
        let q = c.query_log.unwrap();
        assert_eq!(q.path, Path::new("/etc/pg/q.jsonl"));
        assert_eq!(
            q.key_file,
            Path::new(super::super::DEFAULT_STATE_DIR).join("query-log.key")
        );
        assert_eq!(
            (q.record, q.client, q.max_size),
            (RecordMode::Policy, ClientMode::Hash, 1 << 20)
        );
        assert_eq!(c.zones[0].query_log, Some(RecordMode::All));
        assert_eq!(c.zones[0].query_log_client, Some(ClientMode::Masked));
        let e = ok(&format!(
            "{head}[admin]\nlisten = \"nowhere\"\ntoken = \"short\"\n[query_log]\npath = \"q\"\nrecord = \"most\"\nclient = \"ip\"\nkey = \"k\"\n"
        ))
        .unwrap_err()
        .to_string();
        for want in [
            "t.toml:6:10: admin.listen",
            "t.toml:7:9: admin.token",
            "t.toml:10:10: query_log.record",
            "t.toml:11:10: query_log.client",
            "t.toml:12:7: query_log.key",
        ] {
            assert!(e.contains(want), "{want} in:\n{e}");
        }
        let e = ok(&format!(
            "{head}[zones.z]\nnetworks = [\"10.0.0.0/8\"]\nquery_log = \"all\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.toml:7:13: zones.z.query_log: there is no [query_log]"),
            "{e}"
        );
        let e = ok(&format!(
            "{head}[zones.none]\nnetworks = [\"10.0.0.0/8\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("zones.none: the zone name \"none\" is reserved"),
            "{e}"
        );
        let e = ok(&format!("{head}[query_log]\npath = \"q\"\nrotate = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:7:1") && e.contains("rotate"), "{e}");
    }

    #[test]
    fn nets() {
        assert_eq!(parse_net("10.20.0.0/16"), "10.20.0.0/16".parse().ok());
        assert_eq!(parse_net("10.20.0.0/33"), None);
        assert_eq!(parse_net("10.20.3.0/16"), None);
        assert_eq!(parse_net("10.1.2.3"), "10.1.2.3/32".parse().ok());
        assert_eq!(parse_net("fd00::/8"), "fd00::/8".parse().ok());
    }

    #[test]
    fn resolv_conf_skips_self() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("resolv.conf");
        std::fs::write(
            &p,
            "# c\nnameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch x\n",
        )
        .unwrap();
        let own: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().unwrap()];
        let got = resolv_conf_nameservers(&p, &own);
        assert_eq!(
            got,
            vec![
                "192.0.2.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        let got = resolv_conf_nameservers(&p, &["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(got.len(), 3);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::super::{Config, Overrides};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The config loader on arbitrary text: an error or a config, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = Config::from_str(&text, "fuzz.toml", std::path::Path::new("."), &Overrides::default());
        }

        /// Near-valid configs: real keys with arbitrary values.
        #[test]
        fn real_keys_arbitrary_values_never_panic(listen in "\\PC{0,30}", net in "\\PC{0,30}", resp in "\\PC{0,20}", qps in any::<f64>()) {
            let text = format!(
                "[server]\nlisten = [{listen:?}]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[zones.z]\nnetworks = [{net:?}]\nresponse = {resp:?}\nrate_limit = {{ qps = {qps:?} }}\n"
            );
            let _ = Config::from_str(&text, "fuzz.toml", std::path::Path::new("."), &Overrides::default());
        }
    }
}
