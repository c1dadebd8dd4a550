//! Checks of `[query_log]` (path, record and client modes, key, key file, rotation size, age,
//! kept files and buffer, each within its bound) and the mode and size parsers that zones'
//! overrides share.

use std::path::Path;

use toml::Spanned;

use super::super::raw::{RawQueryLog, RawSize};
use super::super::{ClientMode, QueryLogConfig, RecordMode, Secret};
use super::Ctx;
use super::bounds::{self, duration, size};

/// `[query_log]`; `None` when it is unusable (errors recorded) or absent.
pub(super) fn query_log(
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
        if k.get_ref().chars().count() < super::super::MIN_QUERY_LOG_KEY_LEN {
            cx.spanned(
                k,
                format!(
                    "query_log.key: too short; expected at least {} characters (or leave it out: a random key is generated into key_file)",
                    super::super::MIN_QUERY_LOG_KEY_LEN
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
        None => state_dir.join(super::super::QUERY_LOG_KEY_FILE),
    };
    let max_size = match &q.max_size {
        None => super::super::DEFAULT_QUERY_LOG_MAX_SIZE,
        Some(s) => match parse_size(s.get_ref()) {
            Some(n) if n > bounds::QUERY_LOG_MAX_SIZE.value => {
                cx.spanned(
                    s,
                    format!(
                        "query_log.max_size: at most {}, got {}",
                        bounds::QUERY_LOG_MAX_SIZE.text,
                        match s.get_ref() {
                            RawSize::Bytes(n) => n.to_string(),
                            RawSize::Text(t) => t.trim().to_owned(),
                        }
                    ),
                );
                super::super::DEFAULT_QUERY_LOG_MAX_SIZE
            }
            Some(n) if n >= 4096 => n,
            _ => {
                cx.spanned(
                    s,
                    "query_log.max_size: expected a size of at least 4096 bytes, e.g. 104857600, \"100MB\" or \"64MiB\"",
                );
                super::super::DEFAULT_QUERY_LOG_MAX_SIZE
            }
        },
    };
    let buffer = size(
        cx,
        "query_log.buffer",
        q.buffer.as_ref(),
        super::super::DEFAULT_QUERY_LOG_BUFFER,
        bounds::QUERY_LOG_BUFFER,
    );
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
        keep: size(
            cx,
            "query_log.keep",
            q.keep.as_ref(),
            super::super::DEFAULT_QUERY_LOG_KEEP,
            bounds::QUERY_LOG_KEEP,
        ),
        max_age: duration(
            cx,
            "query_log.max_age",
            q.max_age.as_ref(),
            super::super::DEFAULT_QUERY_LOG_MAX_AGE,
            bounds::QUERY_LOG_MAX_AGE,
        ),
        buffer: buffer.max(1),
    })
}

pub(super) fn parse_record_mode(
    cx: &mut Ctx<'_>,
    key: &str,
    v: &Spanned<String>,
) -> Option<RecordMode> {
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

pub(super) fn parse_client_mode(
    cx: &mut Ctx<'_>,
    key: &str,
    v: &Spanned<String>,
) -> Option<ClientMode> {
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
pub(super) fn parse_size(s: &RawSize) -> Option<u64> {
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
