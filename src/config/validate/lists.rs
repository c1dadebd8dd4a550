//! Checks of `[lists.NAME]`: the source (builtin, file, or https URL), the format, and the
//! download settings of remote lists (durations and size bounded); `--block` files join as lists `cli-block-N`.
//! Also `[list_download]`: the proxy of list downloads, copied into every remote list's settings.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::super::raw::{RawList, RawListDownload};
use super::super::{DownloadProxy, FetchOpts, ListConfig, ListFormat, ListSource, Overrides};
use super::Ctx;
use super::bounds::{self, duration, size};

/// Builtin list names (`source = "builtin:NAME"`).
pub const BUILTIN_LISTS: &[&str] = &["trackers"];

/// `[lists.*]`, by name, plus one list per `--block` file.
pub(super) fn lists(
    cx: &mut Ctx<'_>,
    raw: &BTreeMap<String, Spanned<RawList>>,
    base: &Path,
    overrides: &Overrides,
    proxy: Option<&DownloadProxy>,
) -> BTreeMap<String, ListConfig> {
    let mut lists = BTreeMap::new();
    for (name, l) in raw {
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
                        format!("lists.{name}.format: unknown format {:?}; expected domains, hosts, adblock, rpz, catalogue, disconnect or tracker-radar", f.get_ref()),
                    );
                    None
                }
            },
        };
        let mut fetch = fetch_opts(cx, name, l);
        if matches!(source, ListSource::Url(_)) {
            fetch.proxy = proxy.cloned();
        }
        lists.insert(
            name.clone(),
            ListConfig {
                name: name.clone(),
                source,
                format,
                fetch,
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
    lists
}

fn fetch_opts(cx: &mut Ctx<'_>, name: &str, l: &Spanned<RawList>) -> FetchOpts {
    let r = l.get_ref();
    let d = FetchOpts::default();
    let max_shrink = r.max_shrink.unwrap_or(d.max_shrink);
    if !(0.0..=1.0).contains(&max_shrink) {
        cx.spanned(l, format!("lists.{name}.max_shrink: {max_shrink} is not a fraction; expected 0.0 to 1.0 (0.5 = 50%)"));
    }
    let refresh = duration(
        cx,
        &format!("lists.{name}.refresh"),
        r.refresh.as_ref(),
        d.refresh,
        bounds::LIST_REFRESH,
    );
    if refresh < std::time::Duration::from_secs(1) {
        cx.spanned(
            l,
            format!("lists.{name}.refresh: below one second; expected e.g. \"12h\""),
        );
    }
    FetchOpts {
        refresh,
        timeout: duration(
            cx,
            &format!("lists.{name}.timeout"),
            r.timeout.as_ref(),
            d.timeout,
            bounds::LIST_TIMEOUT,
        )
        .max(std::time::Duration::from_millis(100)),
        max_size: size(
            cx,
            &format!("lists.{name}.max_size"),
            r.max_size.as_ref(),
            d.max_size,
            bounds::LIST_MAX_SIZE,
        ),
        min_entries: r.min_entries.unwrap_or(d.min_entries),
        max_shrink: max_shrink.clamp(0.0, 1.0),
        proxy: None,
    }
}

/// `[list_download]`: `proxy` must be `http://` or `https://` with a host and an explicit port
/// (credentials allowed, never shown); `no_proxy` entries are single hosts, `.domain`s, IP
/// addresses or CIDRs. `None` when no proxy is set.
pub(super) fn list_download(cx: &mut Ctx<'_>, raw: &RawListDownload) -> Option<DownloadProxy> {
    let mut no_proxy = Vec::new();
    for (i, h) in raw.no_proxy.iter().enumerate() {
        let t = h.get_ref().trim();
        if t.is_empty() || t.contains([',', ' ', '\t', '/', '@']) && !is_cidr(t) {
            cx.spanned(
                h,
                format!("list_download.no_proxy[{i}]: {:?} is not a host; expected e.g. \"lists.example.org\", \".example.org\", \"10.0.0.0/8\"", h.get_ref()),
            );
            continue;
        }
        no_proxy.push(t.to_owned());
    }
    let p = raw.proxy.as_ref()?;
    let text = p.get_ref();
    let expected = "expected \"http://HOST:PORT\" or \"https://HOST:PORT\", e.g. \"http://proxy.example:3128\"";
    let url = match url::Url::parse(text) {
        Ok(u) => u,
        Err(_) => {
            cx.spanned(p, format!("list_download.proxy: invalid URL; {expected}"));
            return None;
        }
    };
    let shown = |u: &url::Url| {
        // The message must not repeat a password either.
        DownloadProxy::new(u, Vec::new()).redacted().to_owned()
    };
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some(format!("scheme {:?} is not http or https", url.scheme()))
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("no host".to_owned())
    } else if !explicit_port(text) {
        Some("no port".to_owned())
    } else if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        Some(format!("{} has a path, query or fragment", shown(&url)))
    } else {
        None
    };
    if let Some(problem) = problem {
        cx.spanned(p, format!("list_download.proxy: {problem}; {expected}"));
        return None;
    }
    Some(DownloadProxy::new(&url, no_proxy))
}

/// `scheme://[userinfo@]host:PORT[/]`: the port written out (the URL parser forgets a default one).
fn explicit_port(text: &str) -> bool {
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hostport.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && !h.ends_with(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
    })
}

fn is_cidr(t: &str) -> bool {
    t.parse::<ipnet::IpNet>().is_ok()
}

fn parse_format(s: &str) -> Option<ListFormat> {
    Some(match s {
        "domains" => ListFormat::Domains,
        "hosts" => ListFormat::Hosts,
        "adblock" => ListFormat::Adblock,
        "rpz" => ListFormat::Rpz,
        "catalogue" => ListFormat::Catalogue,
        "disconnect" => ListFormat::Disconnect,
        "tracker-radar" => ListFormat::TrackerRadar,
        _ => return None,
    })
}
