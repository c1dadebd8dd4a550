//! Checks of `[lists.NAME]`: the source (builtin, file, or https URL), the format, and the
//! download settings of remote lists (durations and size bounded); `--block` files join as lists `cli-block-N`.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::super::raw::RawList;
use super::super::{FetchOpts, ListConfig, ListFormat, ListSource, Overrides};
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
                fetch: fetch_opts(cx, name, l),
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
    }
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
