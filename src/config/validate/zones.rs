//! Checks of `[zones.NAME]`: networks (each in one zone only), the lists a zone blocks and
//! allows (with trials, `block_vendors`, `allow_vendors` and `watch`), mode, block response and its TTL (bounded), catalogue strictness, query-log overrides and the per-client
//! rate limit; `--block` adds a catch-all zone `cli`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use toml::Spanned;

use super::super::raw::{RawBlockEntry, RawConfig, RawRateLimit, RawResponse};
use super::super::zones::WATCH_SERVER_SIDE;
use super::super::{BlockResponse, CatalogueMode, Mode, Overrides, RateLimit, ZoneConfig};
use super::Ctx;
use super::bounds::{self, duration};
use super::exceptions as vendors;
use super::query_log::{parse_client_mode, parse_record_mode};

/// `[zones.*]`, in name order (then `cli` with `--block`). The lists they name must be in
/// `[lists]`; their query-log overrides need a `[query_log]`.
pub(super) fn zones(cx: &mut Ctx<'_>, raw: &RawConfig, overrides: &Overrides) -> Vec<ZoneConfig> {
    let defined: Vec<&str> = raw.lists.keys().map(String::as_str).collect();
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
        let undefined = |l: &str, key: &str, i: usize| {
            format!(
                "zones.{name}.{key}[{i}]: undefined list {l:?}; defined: {}",
                if defined.is_empty() {
                    "(none)".to_owned()
                } else {
                    defined.join(", ")
                }
            )
        };
        let check_lists = |cx: &mut Ctx<'_>, key: &str, v: &[Spanned<String>]| -> Vec<String> {
            let mut out = Vec::new();
            for (i, l) in v.iter().enumerate() {
                if raw.lists.contains_key(l.get_ref()) {
                    out.push(l.get_ref().clone());
                } else {
                    cx.spanned(l, undefined(l.get_ref(), key, i));
                }
            }
            out
        };
        let mut block = Vec::new();
        let mut trial = Vec::new();
        for (i, b) in zr.block.iter().enumerate() {
            let list = match b.get_ref() {
                RawBlockEntry::Name(l) => l,
                RawBlockEntry::Table { list, mode } => match mode.as_str() {
                    "enforce" | "log" => list,
                    other => {
                        cx.spanned(b, format!("zones.{name}.block[{i}].mode: unknown mode {other:?}; expected log (a trial: would-block only) or enforce"));
                        continue;
                    }
                },
            };
            if raw.lists.contains_key(list) {
                if block.contains(list) || trial.contains(list) {
                    cx.spanned(b, format!("zones.{name}.block[{i}]: list {list:?} is named twice; a list either blocks or is on trial in a zone"));
                    continue;
                }
                let to = if matches!(b.get_ref(), RawBlockEntry::Table { mode, .. } if mode == "log")
                {
                    &mut trial
                } else {
                    &mut block
                };
                to.push(list.clone());
            } else {
                cx.spanned(b, undefined(list, "block", i));
            }
        }
        let block_vendors = vendors::check(
            cx,
            &format!("zones.{name}.block_vendors"),
            &zr.block_vendors,
        );
        let allow_vendors = vendors::check(
            cx,
            &format!("zones.{name}.allow_vendors"),
            &zr.allow_vendors,
        );
        let mut watch = Vec::new();
        for (i, w) in zr.watch.iter().enumerate() {
            let l = w.get_ref();
            if l == WATCH_SERVER_SIDE || raw.lists.contains_key(l) {
                if block.contains(l) || trial.contains(l) {
                    cx.spanned(w, format!("zones.{name}.watch[{i}]: list {l:?} is also in block; a list is either blocked or watched in a zone"));
                }
                watch.push(l.clone());
            } else if l.starts_with("catalogue:") {
                cx.spanned(w, format!("zones.{name}.watch[{i}]: unknown catalogue selection {l:?}; expected {WATCH_SERVER_SIDE:?} or a list name"));
            } else {
                cx.spanned(w, undefined(l, "watch", i));
            }
        }
        let allow = check_lists(cx, "allow", &zr.allow);
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
            parse_record_mode(cx, &format!("zones.{name}.query_log"), v)
        });
        let query_log_client = zr.query_log_client.as_ref().and_then(|v| {
            if raw.query_log.is_none() {
                cx.spanned(v, format!("zones.{name}.query_log_client: there is no [query_log] section; add one with a `path` first"));
            }
            parse_client_mode(cx, &format!("zones.{name}.query_log_client"), v)
        });
        zones.push(ZoneConfig {
            name: name.clone(),
            networks,
            block,
            trial,
            allow,
            block_vendors,
            allow_vendors,
            watch,
            mode,
            response,
            block_ttl: duration(
                cx,
                &format!("zones.{name}.block_ttl"),
                zr.block_ttl.as_ref(),
                super::super::DEFAULT_BLOCK_TTL,
                bounds::BLOCK_TTL,
            ),
            catalogue,
            canaries: zr.canaries.unwrap_or(true),
            uncloak: zr.uncloak.unwrap_or(true),
            query_log,
            query_log_client,
            rate_limit: rate_limit(cx, name, zr.rate_limit.as_ref()),
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
            trial: Vec::new(),
            allow: Vec::new(),
            block_vendors: Vec::new(),
            allow_vendors: Vec::new(),
            watch: Vec::new(),
            mode: Mode::Enforce,
            response: BlockResponse::Nxdomain,
            block_ttl: super::super::DEFAULT_BLOCK_TTL,
            catalogue: CatalogueMode::Block,
            canaries: true,
            uncloak: true,
            query_log: None,
            query_log_client: None,
            // A trial or benchmark override: no per-client limit.
            rate_limit: super::super::RateLimit {
                qps: 0.0,
                burst: 0.0,
                drop: false,
            },
        });
    }

    zones
}

fn rate_limit(cx: &mut Ctx<'_>, zone: &str, r: Option<&Spanned<RawRateLimit>>) -> RateLimit {
    let Some(r) = r else {
        return RateLimit::default();
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
    RateLimit {
        qps: raw.qps.max(0.0) as f32,
        burst: burst.max(0.0) as f32,
        drop,
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

/// A CIDR, or a bare address meaning a single host. Host bits must be zero, so that a typo such as
/// "10.20.3.0/16" is caught instead of silently meaning 10.20.0.0/16.
pub(super) fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return (n.trunc() == n).then_some(n);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}
