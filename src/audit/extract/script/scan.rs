//! The script scanner: host names mentioned in script text ([`hosts_in_script`],
//! [`plausible_host`]) and the small JS readers the snippet signatures are built on (a literal,
//! `func(` calls and `key = value` assignments). Hand parsers over bytes, every loop bounded by
//! the input length and by [`MAX_HOSTS_PER_SCRIPT`] / [`MAX_SNIPPETS_PER_SCRIPT`].

use url::Url;

use super::{MAX_HOSTS_PER_SCRIPT, MAX_SNIPPETS_PER_SCRIPT, ScriptHost, excerpt};

// ---------------------------------------------------------------------------------------------
// Host mentions

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'
}

/// A plausible DNS host: at least two labels, valid characters, a last label that is not all
/// digits (so "1.5" and IP addresses are not hosts), no empty labels.
pub fn plausible_host(h: &str) -> bool {
    if h.len() < 4 || h.len() > 253 || !h.contains('.') {
        return false;
    }
    let mut last = "";
    for label in h.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.bytes().all(is_host_byte)
        {
            return false;
        }
        last = label;
    }
    last.len() >= 2 && last.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Every host named in `text`: after `//` (absolute and protocol-relative URLs, also the JSON
/// escaped `\/\/` form) and as a whole quoted string (`s.trackingServer = "metrics.example"`).
/// Duplicates (same host and excerpt) are dropped; at most [`MAX_HOSTS_PER_SCRIPT`] are kept.
pub fn hosts_in_script(text: &str) -> Vec<ScriptHost> {
    let unescaped;
    let text = if text.contains("\\/") {
        unescaped = text.replace("\\/", "/");
        unescaped.as_str()
    } else {
        text
    };
    let b = text.as_bytes();
    let mut out: Vec<ScriptHost> = Vec::new();
    let push = |h: ScriptHost, out: &mut Vec<ScriptHost>| {
        if out.len() < MAX_HOSTS_PER_SCRIPT
            && !out
                .iter()
                .any(|o| o.host == h.host && o.excerpt == h.excerpt)
        {
            out.push(h);
        }
    };
    // 1. "//host..." anywhere.
    let mut i = 0;
    while let Some(pos) = text.get(i..).and_then(|t| t.find("//")) {
        let at = i + pos;
        i = at + 2;
        // Skip line comments: "//" preceded by something other than ':' or a quote or '('.
        let prev = if at == 0 { b' ' } else { b[at - 1] };
        if !(prev == b':'
            || prev == b'"'
            || prev == b'\''
            || prev == b'`'
            || prev == b'('
            || prev == b'='
            || prev == b' ')
        {
            continue;
        }
        let start = at + 2;
        let mut end = start;
        while end < b.len() && is_host_byte(b[end]) {
            end += 1;
        }
        let host = text[start..end].trim_end_matches('.').to_ascii_lowercase();
        if !plausible_host(&host) {
            continue;
        }
        // The URL runs to the next quote, whitespace or bracket.
        let mut url_end = end;
        while url_end < b.len()
            && !matches!(
                b[url_end],
                b'"' | b'\'' | b'`' | b' ' | b'\n' | b'\r' | b'\t' | b')' | b'<' | b'>' | b'\\'
            )
        {
            url_end += 1;
        }
        let before = &text[..at];
        let scheme = ["https:", "http:", "wss:", "ws:"]
            .into_iter()
            .find(|s| before.ends_with(s));
        let raw = &text[at - scheme.map_or(0, str::len)..url_end];
        let url = Url::parse(&format!(
            "{}{}",
            scheme.unwrap_or("https:"),
            &text[at..url_end]
        ))
        .ok();
        push(
            ScriptHost {
                host,
                excerpt: excerpt(raw),
                url,
            },
            &mut out,
        );
        i = end.max(i);
    }
    // 2. Quoted strings that are exactly a host name.
    let mut i = 0;
    while i < b.len() {
        let q = b[i];
        if q != b'"' && q != b'\'' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < b.len() && is_host_byte(b[end]) && end - start <= 253 {
            end += 1;
        }
        if end < b.len() && b[end] == q {
            let host = text[start..end].trim_end_matches('.').to_ascii_lowercase();
            if plausible_host(&host) && !looks_like_file(&host) {
                push(
                    ScriptHost {
                        excerpt: format!("{}{}{}", q as char, &text[start..end], q as char),
                        host,
                        url: None,
                    },
                    &mut out,
                );
            }
            i = end + 1;
        } else {
            i = start;
        }
    }
    out
}

/// "fbevents.js", "main.css", "image.png": quoted file names are not hosts.
fn looks_like_file(h: &str) -> bool {
    const EXT: &[&str] = &[
        ".js", ".css", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".html", ".htm", ".json", ".php",
        ".webp", ".woff", ".woff2", ".txt", ".xml", ".pdf", ".min",
    ];
    EXT.iter().any(|e| h.ends_with(e))
}

// ---------------------------------------------------------------------------------------------
// JS literals, calls and assignments

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A JS literal at `i`: a quoted string without escapes, or a bare token of letters, digits,
/// `_` and `-` (numbers, identifiers). Returns the value and the index after it.
pub(super) fn literal(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    let i = skip_ws(b, i);
    let q = *b.get(i)?;
    if q == b'"' || q == b'\'' || q == b'`' {
        let start = i + 1;
        let len = text
            .get(start..)?
            .bytes()
            .take(200)
            .position(|c| c == q || c == b'\\' || c == b'\n')?;
        if b[start + len] != q {
            return None;
        }
        return Some((&text[start..start + len], start + len + 1));
    }
    let len = b[i..]
        .iter()
        .take(200)
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'-')
        .count();
    (len > 0).then(|| (&text[i..i + len], i + len))
}

/// Expects `c` (after whitespace) at `i`; returns the index after it.
pub(super) fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    let i = skip_ws(b, i);
    (b.get(i) == Some(&c)).then_some(i + 1)
}

/// Every `func(` call in `text` whose first argument equals `first` (when given); yields the
/// next argument and the matched text.
pub(super) fn calls<'a>(text: &'a str, func: &str, first: Option<&str>) -> Vec<(&'a str, &'a str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text.get(from..).and_then(|t| t.find(func)) {
        let at = from + pos;
        from = at + func.len();
        // Must not be the tail of a longer identifier (e.g. "myfbq(").
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_' || b[at - 1] == b'$') {
            continue;
        }
        let Some(open) = expect(b, at + func.len(), b'(') else {
            continue;
        };
        let arg_start = match first {
            Some(want) => {
                let Some((v, after)) = literal(text, open) else {
                    continue;
                };
                if v != want {
                    continue;
                }
                let Some(comma) = expect(b, after, b',') else {
                    continue;
                };
                comma
            }
            None => open,
        };
        let Some((v, after)) = literal(text, arg_start) else {
            continue;
        };
        // Include the closing parenthesis when the call ends there.
        let close = skip_ws(b, after);
        let end = if b.get(close) == Some(&b')') {
            close + 1
        } else {
            after
        };
        out.push((v, &text[at..end]));
        if out.len() >= MAX_SNIPPETS_PER_SCRIPT {
            break;
        }
    }
    out
}

/// `key` then `:` or `=` then a literal, e.g. `hjid:123`, `ti: "456"`, `_linkedin_partner_id = "7"`.
pub(super) fn assignments<'a>(text: &'a str, key: &str) -> Vec<(&'a str, &'a str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text.get(from..).and_then(|t| t.find(key)) {
        let at = from + pos;
        from = at + key.len();
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue;
        }
        let mut i = at + key.len();
        // Allow a closing quote of a quoted key: "ti":"123".
        if matches!(b.get(i), Some(b'"') | Some(b'\'')) {
            i += 1;
        }
        let j = skip_ws(b, i);
        if !matches!(b.get(j), Some(b':') | Some(b'=')) || b.get(j + 1) == Some(&b'=') {
            continue;
        }
        let Some((v, after)) = literal(text, j + 1) else {
            continue;
        };
        out.push((v, &text[at..after]));
        if out.len() >= MAX_SNIPPETS_PER_SCRIPT {
            break;
        }
    }
    out
}
