//! The immutable state the request path reads: config, compiled lists, zone policies, the
//! network → zone table, the upstream set and the forward rules. Built off the request path by
//! [`Snapshot::build`] and swapped in whole (arc-swap), so a query sees one consistent policy
//! from start to end.
//! [`summary`] describes a snapshot in the lines that start-up and `check` print.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, ListConfig};
use crate::config::{WATCH_SERVER_SIDE, ZoneConfig};
use crate::lists::catalogue::Category;
use crate::lists::supply::ListSupply;
use crate::lists::{self, CompiledList};
use crate::policy::{Exception, ZonePolicy};
use crate::upstream::Upstreams;
use crate::upstream::route::Forwards;
use crate::zones::{ZoneId, ZoneTable};

/// Everything a query needs, immutable.
pub struct Snapshot {
    /// The config it was built from.
    pub config: Config,
    /// Compiled lists, in name order; zone policies refer to them by index.
    pub lists: Vec<Arc<CompiledList>>,
    /// Zone policies; `ZoneId` indexes this.
    pub zones: Vec<ZonePolicy>,
    /// Client address → zone.
    pub zone_table: ZoneTable,
    /// The upstream set of `[upstream]`.
    pub upstreams: Upstreams,
    /// The forward rules (`[forward.*]`): names under their domains go to their own servers.
    /// `forwards.covers(name)` says whether a rule takes a name.
    pub forwards: Forwards,
}

impl Snapshot {
    /// Builds a snapshot. Compiled lists are reused from `previous` when their config did not
    /// change and (for files) the file's modification time and size did not either; remote lists
    /// come from `supply` (their last good content).
    pub fn build(
        config: Config,
        previous: Option<&Snapshot>,
        supply: Option<&ListSupply>,
    ) -> Snapshot {
        let mut lists = Vec::new();
        let mut index = BTreeMap::new();
        for (name, lc) in &config.lists {
            let remote = match (&lc.source, supply) {
                (crate::config::ListSource::Url(_), Some(s)) => {
                    s.load_disk_copy(lc);
                    s.compiled(&lc.name)
                }
                _ => None,
            };
            let reused = remote.or_else(|| previous.and_then(|p| reuse(p, lc)));
            let list = reused.unwrap_or_else(|| Arc::new(lists::load(lc)));
            index.insert(name.clone(), lists.len() as u16);
            lists.push(list);
        }
        // Vendors for lists that carry none, from the loaded catalogue-like lists (once per build).
        lists::attribute::apply(&mut lists);
        let extra = extra_lists(&config, &lists, &index, previous);
        for (name, list) in extra {
            index.insert(name, lists.len() as u16);
            lists.push(list);
        }
        let exceptions: Vec<Arc<Exception>> = config
            .exceptions
            .iter()
            .map(|e| Arc::new(Exception::new(e)))
            .collect();
        let mut zones = Vec::new();
        let mut nets = Vec::new();
        for (i, z) in config.zones.iter().enumerate() {
            let id = i as ZoneId;
            for n in &z.networks {
                nets.push((*n, id));
            }
            zones.push(ZonePolicy {
                name: Arc::from(z.name.as_str()),
                allow: z
                    .allow
                    .iter()
                    .filter_map(|l| index.get(l).copied())
                    .collect(),
                block: z
                    .block
                    .iter()
                    .filter_map(|l| index.get(l).copied())
                    .collect(),
                mode: z.mode,
                response: z.response.clone(),
                block_ttl: z.block_ttl,
                catalogue: z.catalogue,
                canaries: z.canaries,
                uncloak: z.uncloak,
                rate_limit: z.rate_limit,
                trial: z
                    .trial
                    .iter()
                    .filter_map(|l| index.get(l).copied())
                    .collect(),
                watch: z
                    .watch
                    .iter()
                    .filter_map(|l| index.get(l).copied())
                    .collect(),
                vendor_list: vendor_list(z, &lists, &index),
                block_vendors: z
                    .block_vendors
                    .iter()
                    .map(|v| Arc::from(v.as_str()))
                    .collect(),
                allow_vendors: z
                    .allow_vendors
                    .iter()
                    .map(|v| Arc::from(v.as_str()))
                    .collect(),
                exceptions: config
                    .exceptions
                    .iter()
                    .zip(&exceptions)
                    .filter(|(c, _)| c.zones.contains(&z.name))
                    .map(|(_, e)| e.clone())
                    .collect(),
            });
        }
        let upstreams = Upstreams::from_config(&config.upstream, previous.map(|p| &p.upstreams));
        let forwards = Forwards::build(
            &config.forwards,
            &config.upstream,
            previous.map(|p| &p.forwards),
        );
        Snapshot {
            forwards,
            zone_table: ZoneTable::new(nets),
            zones,
            lists,
            upstreams,
            config,
        }
    }

    /// The zone of a client.
    pub fn zone_of(&self, ip: std::net::IpAddr) -> Option<(ZoneId, &ZonePolicy)> {
        let id = self.zone_table.lookup(ip)?;
        self.zones.get(usize::from(id)).map(|z| (id, z))
    }
}

/// The lines printed at start-up (and by `check`): one per listener, upstream, forward rule,
/// zone and list.
pub fn summary(snap: &Snapshot, addrs: &[SocketAddr]) -> Vec<String> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(format!("listen    {a} (udp, tcp)"));
    }
    let nets = |v: &[ipnet::IpNet]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let server = &snap.config.server;
    if !server.proxy_protocol.is_empty() {
        let n = nets(&server.proxy_protocol).join(" ");
        out.push(format!("proxy     PROXY v2 header required from {n}"));
    }
    if !server.client_subnet_from.is_empty() {
        let n = nets(&server.client_subnet_from).join(" ");
        out.push(format!(
            "ecs       EDNS Client Subnet names the client from {n}"
        ));
    }
    let upstreams = snap.upstreams.describe();
    for u in &upstreams {
        out.push(format!("upstream  {u}"));
    }
    if upstreams.is_empty() {
        out.push("upstream  none: every cache miss will be answered SERVFAIL".into());
    }
    for g in snap.forwards.groups() {
        out.push(format!(
            "forward   {}: {} -> {}",
            g.name,
            g.domains.join(", "),
            g.upstreams.describe().join(", ")
        ));
    }
    for z in &snap.config.zones {
        let nets: Vec<String> = z.networks.iter().map(|n| n.to_string()).collect();
        out.push(format!(
            "zone      {}: {} mode={} response={} block=[{}] allow=[{}]",
            z.name,
            nets.join(" "),
            z.mode.as_str(),
            z.response.describe(),
            z.block.join(", "),
            z.allow.join(", ")
        ));
        if let Some(last) = out.last_mut() {
            for (key, v) in [
                ("trial", &z.trial),
                ("block_vendors", &z.block_vendors),
                ("allow_vendors", &z.allow_vendors),
                ("watch", &z.watch),
            ] {
                if !v.is_empty() {
                    last.push_str(&format!(" {key}=[{}]", v.join(", ")));
                }
            }
        }
    }
    for l in &snap.lists {
        let src = l.source.to_string();
        let mut line = format!(
            "list      {}: {} ({}) {} entries, {} lines skipped",
            l.name,
            src,
            l.format.as_str(),
            l.entries(),
            l.report.skipped_total()
        );
        if let Some(e) = &l.error {
            line.push_str(&format!(" -- NOT LOADED: {e}"));
        }
        out.push(line);
    }
    out
}

/// The name of the built-in catalogue list added for `block_vendors` when no configured list is
/// the built-in catalogue.
const VENDOR_LIST: &str = "catalogue:vendors";

/// Lists the zones need beyond `[lists]`: the catalogue's server-side endpoints for
/// `watch = ["catalogue:server_side"]`, and the built-in catalogue for `block_vendors` when no
/// configured list is it. Reused from `previous` (they only change with the binary).
fn extra_lists(
    config: &Config,
    lists: &[Arc<CompiledList>],
    index: &BTreeMap<String, u16>,
    previous: Option<&Snapshot>,
) -> Vec<(String, Arc<CompiledList>)> {
    let old =
        |name: &str| previous.and_then(|p| p.lists.iter().find(|l| &*l.name == name).cloned());
    let mut out = Vec::new();
    if config
        .zones
        .iter()
        .any(|z| z.watch.iter().any(|w| w == WATCH_SERVER_SIDE))
    {
        let l = old(WATCH_SERVER_SIDE).unwrap_or_else(|| {
            Arc::new(lists::builtin_category(
                WATCH_SERVER_SIDE,
                Category::ServerSide,
            ))
        });
        out.push((WATCH_SERVER_SIDE.to_owned(), l));
    }
    let needs_catalogue = config.zones.iter().any(|z| !z.block_vendors.is_empty());
    if needs_catalogue && builtin_index(lists, index).is_none() {
        let l = old(VENDOR_LIST).unwrap_or_else(|| Arc::new(lists::builtin_catalogue(VENDOR_LIST)));
        out.push((VENDOR_LIST.to_owned(), l));
    }
    out
}

/// The index of a list that is the built-in catalogue.
fn builtin_index(lists: &[Arc<CompiledList>], index: &BTreeMap<String, u16>) -> Option<u16> {
    index.iter().find_map(|(name, &i)| {
        let l = lists.get(usize::from(i))?;
        let builtin = matches!(&l.source, crate::config::ListSource::Builtin(b) if b == "trackers");
        (builtin && l.error.is_none() && (name != WATCH_SERVER_SIDE)).then_some(i)
    })
}

/// The catalogue list a zone's `block_vendors` use: none when it has none, or when it blocks
/// that list whole anyway.
fn vendor_list(
    z: &ZoneConfig,
    lists: &[Arc<CompiledList>],
    index: &BTreeMap<String, u16>,
) -> Option<u16> {
    if z.block_vendors.is_empty() {
        return None;
    }
    let i = builtin_index(lists, index)?;
    let blocked_whole = z.block.iter().any(|l| index.get(l) == Some(&i));
    (!blocked_whole).then_some(i)
}

fn reuse(prev: &Snapshot, lc: &ListConfig) -> Option<Arc<CompiledList>> {
    let old = prev.lists.iter().find(|l| &*l.name == lc.name.as_str())?;
    let same = prev
        .config
        .lists
        .get(&lc.name)
        .is_some_and(|p| p.source == lc.source && p.format == lc.format);
    let unchanged = match &lc.source {
        crate::config::ListSource::Builtin(_) => true,
        crate::config::ListSource::File(p) => {
            old.stamp.is_some() && lists::file_stamp(p) == old.stamp
        }
        crate::config::ListSource::Url(_) => false,
    };
    (same && unchanged && old.error.is_none()).then(|| old.clone())
}
