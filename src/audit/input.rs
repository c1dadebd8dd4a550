//! Saved pages for offline audits (`--input`): an HTML file as saved from a browser or a build,
//! or a HAR capture (browser dev tools → "Save all as HAR with content"). From a HAR, each
//! HTML document entry with content is a page (the first per HAR page id; frames are requests),
//! its `Content-Security-Policy` response headers count, and the other requests of the same HAR
//! page become `network_request` evidence: they show trackers that a tag manager loaded at run
//! time, which no static scan of the HTML can see.

use std::io::Read;
use std::path::Path;

use serde_json::Value;
use url::Url;

use super::PageInput;

/// Largest HAR file read.
pub const MAX_HAR_BYTES: u64 = 256 * 1024 * 1024;
/// Most HAR entries looked at.
pub const MAX_HAR_ENTRIES: usize = 100_000;
/// Most network requests kept per page.
pub const MAX_REQUESTS: usize = 5_000;

/// Loads one `--input` file: `.har` (or JSON with a `log` object) as a HAR, anything else as
/// HTML. HTML bodies are read up to `max_body` bytes.
pub fn load(path: &Path, max_body: usize) -> Result<Vec<PageInput>, String> {
    let is_har = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("har"));
    if is_har {
        load_har(path, max_body)
    } else {
        load_html(path, max_body).map(|p| vec![p])
    }
}

fn file_url(path: &Path) -> Option<Url> {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| Url::from_file_path(p).ok())
}

fn truncated_note(max: usize) -> String {
    format!("page larger than {max} bytes: only the first {max} bytes were audited")
}

fn load_html(path: &Path, max_body: usize) -> Result<PageInput, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(max_body as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let url = file_url(path)
        .ok_or_else(|| format!("{}: cannot make a file URL of this path", path.display()))?;
    let mut page = PageInput::new(url, path.display().to_string(), "html");
    if bytes.len() > max_body {
        bytes.truncate(max_body);
        page.truncated = true;
        page.notes.push(truncated_note(max_body));
    }
    page.body = Some(String::from_utf8_lossy(&bytes).into_owned());
    Ok(page)
}

/// Standard base64 (RFC 4648), whitespace ignored, padding optional.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_str()
}

fn load_har(path: &Path, max_body: usize) -> Result<Vec<PageInput>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_HAR_BYTES {
        return Err(format!(
            "{}: HAR larger than {MAX_HAR_BYTES} bytes",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let har: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a HAR (JSON): {e}", path.display()))?;
    let entries = har
        .get("log")
        .and_then(|l| l.get("entries"))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: not a HAR: no log.entries", path.display()))?;
    let mut pages: Vec<(Option<String>, PageInput)> = Vec::new();
    let mut others: Vec<(Option<String>, Url)> = Vec::new();
    for (i, e) in entries.iter().take(MAX_HAR_ENTRIES).enumerate() {
        let Some(url) = str_at(e, &["request", "url"]).and_then(|u| Url::parse(u).ok()) else {
            continue;
        };
        let pageref = e.get("pageref").and_then(Value::as_str).map(str::to_owned);
        let status = e
            .get("response")
            .and_then(|r| r.get("status"))
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok());
        let mime = str_at(e, &["response", "content", "mimeType"])
            .unwrap_or("")
            .to_ascii_lowercase();
        let content = str_at(e, &["response", "content", "text"]);
        let is_doc = mime.contains("html")
            && content.is_some_and(|c| !c.is_empty())
            && !status.is_some_and(|s| (300..400).contains(&s))
            && !pages.iter().any(|(p, _)| p.is_some() && *p == pageref);
        if !is_doc {
            others.push((pageref, url));
            continue;
        }
        let mut body = content.unwrap_or("").to_owned();
        if str_at(e, &["response", "content", "encoding"])
            .is_some_and(|enc| enc.eq_ignore_ascii_case("base64"))
        {
            match base64_decode(&body) {
                Some(b) => body = String::from_utf8_lossy(&b).into_owned(),
                None => {
                    let mut p = PageInput::new(url.clone(), url.to_string(), "har");
                    p.error = Some(format!("HAR entry {i}: invalid base64 content"));
                    pages.push((pageref, p));
                    continue;
                }
            }
        }
        let mut p = PageInput::new(url.clone(), url.to_string(), "har");
        p.status = status;
        if body.len() > max_body {
            let mut end = max_body;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body.truncate(end);
            p.truncated = true;
            p.notes.push(truncated_note(max_body));
        }
        p.body = Some(body);
        if let Some(headers) = e
            .get("response")
            .and_then(|r| r.get("headers"))
            .and_then(Value::as_array)
        {
            for h in headers.iter().take(200) {
                if h.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case("content-security-policy"))
                    && let Some(v) = h.get("value").and_then(Value::as_str)
                    && p.csp.len() < 10
                {
                    p.csp.push(v.to_owned());
                }
            }
        }
        pages.push((pageref, p));
    }
    if pages.is_empty() {
        return Err(format!(
            "{}: the HAR holds no HTML page with content (save it \"with content\")",
            path.display()
        ));
    }
    let single = pages.len() == 1;
    for (pageref, url) in others {
        let target = pages.iter_mut().find(|(p, _)| match (&pageref, p) {
            (Some(a), Some(b)) => a == b,
            _ => single,
        });
        if let Some((_, page)) = target
            && page.requests.len() < MAX_REQUESTS
        {
            page.requests.push(url);
        }
    }
    Ok(pages.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(base64_decode("PGh0bWw+").unwrap(), b"<html>");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn har_pages_and_requests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.har");
        let har = serde_json::json!({"log": {"version": "1.2", "pages": [{"id": "page_1"}], "entries": [
            {"pageref": "page_1", "request": {"url": "https://www.force.test/"},
             "response": {"status": 200, "headers": [{"name": "Content-Security-Policy", "value": "script-src connect.facebook.net"}],
                          "content": {"mimeType": "text/html; charset=utf-8", "text": "PGh0bWw+", "encoding": "base64"}}},
            {"pageref": "page_1", "request": {"url": "https://connect.facebook.net/en_US/fbevents.js"},
             "response": {"status": 200, "headers": [], "content": {"mimeType": "application/javascript"}}},
            {"pageref": "page_1", "request": {"url": "https://www.googletagmanager.com/ns.html?id=GTM-ABCD"},
             "response": {"status": 200, "headers": [], "content": {"mimeType": "text/html", "text": "<html></html>"}}}
        ]}});
        std::fs::write(&p, har.to_string()).unwrap();
        let pages = load(&p, 1000).unwrap();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].body.as_deref(), Some("<html>"));
        assert_eq!(pages[0].csp.len(), 1);
        assert_eq!(pages[0].requests.len(), 2);
        std::fs::write(&p, "{\"log\": {\"entries\": []}}").unwrap();
        assert!(load(&p, 1000).is_err());
        std::fs::write(&p, "not json").unwrap();
        assert!(load(&p, 1000).is_err());
    }
}
