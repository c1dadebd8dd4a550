//! Semantic validation: raw TOML values → typed [`Config`]. Every check reports the exact
//! `file:line:column` of the offending value and says what was expected; validation keeps going
//! after an error so that one run of `pixelguard check` shows every problem in the file.
//!
//! This file holds the driver ([`validate`]: parse, then one function per section, called in
//! the order the error messages have always come in) and the error context. Each section's
//! checks live beside it, mirroring `raw`: `server` (`[server]`, `[cache]`, `[admin]`),
//! `tls` (the encrypted listeners' certificate), `upstream`, `forward`, `lists`, `zones`, `exceptions` (with the catalogue's vendor ids), `query_log`, `export` (`[dnstap]`, `[syslog]`), `csp_reports`; `bounds`
//! holds the upper bound of every duration and size.

mod bounds;
mod csp_reports;
mod exceptions;
mod export;
mod forward;
mod lists;
mod query_log;
mod server;
mod tls;
mod upstream;
mod zones;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::RawConfig;
use super::{Config, ConfigError, ConfigErrors, Overrides};

pub use exceptions::catalogue_vendors;
pub use upstream::resolv_conf_nameservers;

/// The errors found so far, and what is needed to locate a new one.
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

/// Parses `text` and checks every section; `file` names it in errors, `base` resolves relative
/// paths. Either a complete [`Config`] or every error found.
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
            cx.at(e.span(), toml_message(&e, text));
            return Err(ConfigErrors(cx.errors));
        }
    };

    let server = server::server(&mut cx, &raw.server, overrides, base);
    let upstream = upstream::upstream(&mut cx, &raw.upstream, base, overrides, &server.listen);
    let forwards = forward::forwards(&mut cx, &raw.forward, &upstream);
    let cache = server::cache(&mut cx, &raw.cache);
    let list_proxy = lists::list_download(&mut cx, &raw.list_download);
    let lists = lists::lists(&mut cx, &raw.lists, base, overrides, list_proxy.as_ref());
    let zones = zones::zones(&mut cx, &raw, overrides);
    let exceptions = exceptions::exceptions(&mut cx, &raw, &zones);
    let admin = server::admin(&mut cx, &raw.admin);
    let state_dir = state_dir(&raw, base);
    let query_log = raw
        .query_log
        .as_ref()
        .and_then(|q| query_log::query_log(&mut cx, q.get_ref(), base, &state_dir));
    let dnstap = raw
        .dnstap
        .as_ref()
        .and_then(|d| export::dnstap(&mut cx, d, base));
    let syslog = raw
        .syslog
        .as_ref()
        .and_then(|s| export::syslog(&mut cx, s.get_ref(), base));
    let csp_reports = raw
        .csp_reports
        .as_ref()
        .and_then(|c| csp_reports::csp_reports(&mut cx, c.get_ref(), base));

    if !cx.errors.is_empty() {
        return Err(ConfigErrors(cx.errors));
    }
    Ok(Config {
        origin: file.to_owned(),
        server,
        upstream,
        forwards,
        cache,
        lists,
        list_proxy,
        zones,
        exceptions,
        log_level: raw.log.level,
        state_dir,
        strict_start: raw.strict_start,
        admin,
        query_log,
        local: super::LocalConfig {
            private_reverse: raw.local.private_reverse,
            special_names: raw.local.special_names,
        },
        dnstap,
        syslog,
        csp_reports,
    })
}

/// The message of a TOML syntax error. The toml crate gives none for a control character in a
/// comment (found by the `config` fuzz target: the error read "file:24:53: " and nothing more).
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim();
    if !msg.is_empty() {
        return msg.to_owned();
    }
    let found = e.span().and_then(|s| text.get(s.start..)?.chars().next());
    match found {
        Some(c) if c.is_control() => format!(
            "a control character (U+{:04X}) is not allowed here: remove it (inside a string, \
             write it as an escape such as \\u0000)",
            u32::from(c)
        ),
        _ => "invalid TOML syntax".to_owned(),
    }
}

/// `state_dir`: relative to the config file's folder; default /var/lib/pixelguard.
fn state_dir(raw: &RawConfig, base: &Path) -> PathBuf {
    match &raw.state_dir {
        Some(d) => base.join(d.get_ref()),
        None => PathBuf::from(super::DEFAULT_STATE_DIR),
    }
}

/// `"IP:PORT"` or `"[IPv6]:PORT"`.
fn parse_socket_addr(s: &str) -> Option<SocketAddr> {
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests;
