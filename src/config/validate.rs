//! Semantic validation: raw TOML values → typed [`Config`]. Every check reports the exact
//! `file:line:column` of the offending value and says what was expected; validation keeps going
//! after an error so that one run of `pixelguard check` shows every problem in the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;

use ipnet::IpNet;
use toml::Spanned;

use super::raw::{RawConfig, RawResponse};
use super::{
    BlockResponse, CacheConfig, CatalogueMode, Config, ConfigError, ConfigErrors, ListConfig,
    ListFormat, ListSource, Mode, Overrides, ServerConfig, UpstreamConfig, ZoneConfig,
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
    };

    // [upstream]
    let mut servers = Vec::new();
    let mut add_upstream = |cx: &mut Ctx<'_>, s: &str, span: Option<Range<usize>>| {
        if s == "system" {
            let found = resolv_conf_nameservers(Path::new("/etc/resolv.conf"), &listen);
            // No nameserver found is not an error: pixelguard still starts (blocking works, cache
            // misses get SERVFAIL) and the start-up summary says so.
            let _ = &span;
            servers.extend(found);
        } else {
            match parse_socket_addr(s).or_else(|| s.parse::<IpAddr>().ok().map(|ip| (ip, 53).into())) {
                Some(a) => servers.push(a),
                None => cx.at(
                    span,
                    format!("upstream.servers: invalid upstream {s:?}; expected \"IP:PORT\", \"IP\" or \"system\""),
                ),
            }
        }
    };
    if overrides.upstream.is_empty() {
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
    let upstream = UpstreamConfig {
        servers,
        timeout: raw.upstream.timeout,
        deadline: raw.upstream.deadline.max(raw.upstream.timeout),
    };

    let cache = CacheConfig {
        max_entries: raw.cache.max_entries,
        min_ttl: raw.cache.min_ttl,
        max_ttl: raw.cache.max_ttl.max(raw.cache.min_ttl),
        negative_max_ttl: raw.cache.negative_max_ttl,
        servfail_ttl: raw.cache.servfail_ttl.min(super::DEFAULT_SERVFAIL_TTL),
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
        } else if src.starts_with("http://") || src.starts_with("https://") {
            cx.spanned(
                &l_ref.source,
                format!("lists.{name}.source: remote sources are not supported by this build yet; download {src:?} to a file and name the file"),
            );
            continue;
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
            },
        );
    }
    let defined: Vec<&str> = raw.lists.keys().map(String::as_str).collect();

    // [zones.*]
    let mut zones = Vec::new();
    let mut seen_nets: BTreeMap<IpNet, String> = BTreeMap::new();
    for (name, z) in &raw.zones {
        let zr = z.get_ref();
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
        });
    }
    if !overrides.block.is_empty() {
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
        });
    }

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
    })
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
