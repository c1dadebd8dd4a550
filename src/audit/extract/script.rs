//! Inline-script scanning: host names inside script text (URLs, protocol-relative URLs and quoted
//! bare host names) and the known tracker snippet signatures with their account IDs (Meta Pixel
//! `fbq('init', …)`, Google tag `gtag('config', …)`, `GTM-…`, TikTok `ttq.load`, LinkedIn
//! `_linkedin_partner_id`, Microsoft Clarity and UET, Hotjar `hjid`, X, Snap, Pinterest, Reddit),
//! plus the IDs that tracker URLs carry in their path or query (`facebook.com/tr?id=`,
//! `gtag/js?id=G-…`, `collect?pid=`, …).
//!
//! No regex crate: small hand parsers over bytes, every loop bounded by the input length and by
//! [`MAX_HOSTS_PER_SCRIPT`] / [`MAX_SNIPPETS_PER_SCRIPT`].

use url::Url;

use crate::lists::catalogue::Category;

/// Most host mentions kept from one script.
pub const MAX_HOSTS_PER_SCRIPT: usize = 500;
/// Most snippet matches kept from one script.
pub const MAX_SNIPPETS_PER_SCRIPT: usize = 100;
/// Longest URL excerpt kept as evidence.
const MAX_EXCERPT: usize = 160;

/// A host name mentioned in script text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHost {
    /// Canonical host name (lower case, no trailing dot).
    pub host: String,
    /// The URL (or quoted host) as it appears, shortened.
    pub excerpt: String,
    /// The URL, when the mention parses as one (for ID extraction).
    pub url: Option<Url>,
}

/// A tracker account or container ID.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TrackerId {
    /// What the ID identifies: `meta_pixel`, `ga4`, `gtm_container`, `google_ads`,
    /// `universal_analytics`, `floodlight`, `tiktok_pixel`, `linkedin_partner`,
    /// `clarity_project`, `uet_tag`, `hotjar_site`, `x_pixel`, `snap_pixel`, `pinterest_tag`,
    /// `reddit_pixel`.
    pub kind: String,
    /// The ID as written.
    pub id: String,
}

impl TrackerId {
    fn new(kind: &str, id: &str) -> TrackerId {
        TrackerId {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }
    }

    /// A short label for tables: `Meta Pixel 1234…`, `GA4 G-ABC…`.
    pub fn label(&self) -> String {
        let what = match self.kind.as_str() {
            "meta_pixel" => "Meta Pixel",
            "ga4" => "GA4",
            "gtm_container" => "GTM",
            "google_ads" => "Google Ads",
            "universal_analytics" => "UA",
            "floodlight" => "Floodlight",
            "tiktok_pixel" => "TikTok Pixel",
            "linkedin_partner" => "LinkedIn partner",
            "clarity_project" => "Clarity",
            "uet_tag" => "UET",
            "hotjar_site" => "Hotjar site",
            "x_pixel" => "X Pixel",
            "snap_pixel" => "Snap Pixel",
            "pinterest_tag" => "Pinterest Tag",
            "reddit_pixel" => "Reddit Pixel",
            other => other,
        };
        if self.id.starts_with("GTM-") || self.id.starts_with("G-") {
            self.id.clone()
        } else {
            format!("{what} {}", self.id)
        }
    }
}

/// A tracker snippet recognised in script text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Catalogue vendor id (`meta`, `google`, ...).
    pub vendor: &'static str,
    /// The category of what the snippet does.
    pub category: Category,
    /// The tracker host the snippet loads or sends to (a catalogue host), which the finding is
    /// attributed to when the page does not reference a host of the vendor itself.
    pub host: &'static str,
    /// The account ID, when the snippet names one.
    pub id: Option<TrackerId>,
    /// The matched text, shortened: `fbq('init', '1234')`.
    pub evidence: String,
}

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

fn excerpt(s: &str) -> String {
    if s.len() <= MAX_EXCERPT {
        return s.to_owned();
    }
    let mut end = MAX_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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
// Snippet signatures

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A JS literal at `i`: a quoted string without escapes, or a bare token of letters, digits,
/// `_` and `-` (numbers, identifiers). Returns the value and the index after it.
fn literal(text: &str, i: usize) -> Option<(&str, usize)> {
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
fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    let i = skip_ws(b, i);
    (b.get(i) == Some(&c)).then_some(i + 1)
}

/// Every `func(` call in `text` whose first argument equals `first` (when given); yields the
/// next argument and the matched text.
fn calls<'a>(text: &'a str, func: &str, first: Option<&str>) -> Vec<(&'a str, &'a str)> {
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
fn assignments<'a>(text: &'a str, key: &str) -> Vec<(&'a str, &'a str)> {
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

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The Google product an ID prefix names: (id kind, category, host the tag talks to).
pub fn google_id(id: &str) -> Option<(&'static str, Category, &'static str)> {
    let (prefix, rest) = id.split_once('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    Some(match prefix {
        "G" => ("ga4", Category::Analytics, "www.google-analytics.com"),
        "GTM" => (
            "gtm_container",
            Category::TagManager,
            "www.googletagmanager.com",
        ),
        "AW" => (
            "google_ads",
            Category::Advertising,
            "googleads.g.doubleclick.net",
        ),
        "UA" => (
            "universal_analytics",
            Category::Analytics,
            "www.google-analytics.com",
        ),
        "DC" => ("floodlight", Category::Advertising, "ad.doubleclick.net"),
        _ => return None,
    })
}

/// Every `GTM-XXXX` container id in `text` (4 to 12 upper-case letters or digits).
fn gtm_ids(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out: Vec<&str> = Vec::new();
    let mut from = 0;
    while let Some(pos) = text.get(from..).and_then(|t| t.find("GTM-")) {
        let at = from + pos;
        from = at + 4;
        if at > 0 && b[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let len = b[at + 4..]
            .iter()
            .take(13)
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            .count();
        let end = at + 4 + len;
        if (4..=12).contains(&len) && !b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
            let id = &text[at..end];
            if !out.contains(&id) {
                out.push(id);
            }
        }
        if out.len() >= MAX_SNIPPETS_PER_SCRIPT {
            break;
        }
    }
    out
}

/// Which characters a tracker ID may have, and how many.
#[derive(Clone, Copy)]
enum IdShape {
    Digits(usize, usize),
    Alnum(usize, usize),
}

impl IdShape {
    fn accepts(self, id: &str) -> bool {
        match self {
            Self::Digits(min, max) => digits(id, min, max),
            Self::Alnum(min, max) => alnum(id, min, max),
        }
    }
}

/// How a snippet hands its ID over: a call `func('first', '<id>')` (or `func('<id>')` without
/// `first`), or an assignment `key = '<id>'`.
#[derive(Clone, Copy)]
enum Carrier {
    Call(&'static str, Option<&'static str>),
    Assign(&'static str),
}

/// A snippet signature: where the ID is, what it looks like, and whose it is.
struct Signature {
    carrier: Carrier,
    shape: IdShape,
    vendor: &'static str,
    category: Category,
    host: &'static str,
    kind: &'static str,
}

/// The vendors' base codes, as their install guides print them (Google's IDs and GTM containers,
/// Clarity and UET need their own parsing, below).
const SIGNATURES: &[Signature] = &[
    Signature {
        carrier: Carrier::Call("fbq", Some("init")),
        shape: IdShape::Digits(5, 20),
        vendor: "meta",
        category: Category::Advertising,
        host: "connect.facebook.net",
        kind: "meta_pixel",
    },
    Signature {
        carrier: Carrier::Call("ttq.load", None),
        shape: IdShape::Alnum(8, 40),
        vendor: "tiktok",
        category: Category::Advertising,
        host: "analytics.tiktok.com",
        kind: "tiktok_pixel",
    },
    Signature {
        carrier: Carrier::Assign("_linkedin_partner_id"),
        shape: IdShape::Digits(3, 12),
        vendor: "linkedin",
        category: Category::Advertising,
        host: "snap.licdn.com",
        kind: "linkedin_partner",
    },
    Signature {
        carrier: Carrier::Call("_linkedin_data_partner_ids.push", None),
        shape: IdShape::Digits(3, 12),
        vendor: "linkedin",
        category: Category::Advertising,
        host: "snap.licdn.com",
        kind: "linkedin_partner",
    },
    Signature {
        carrier: Carrier::Assign("hjid"),
        shape: IdShape::Digits(3, 12),
        vendor: "hotjar",
        category: Category::SessionReplay,
        host: "static.hotjar.com",
        kind: "hotjar_site",
    },
    Signature {
        carrier: Carrier::Call("twq", Some("config")),
        shape: IdShape::Alnum(4, 20),
        vendor: "x",
        category: Category::Advertising,
        host: "static.ads-twitter.com",
        kind: "x_pixel",
    },
    Signature {
        carrier: Carrier::Call("twq", Some("init")),
        shape: IdShape::Alnum(4, 20),
        vendor: "x",
        category: Category::Advertising,
        host: "static.ads-twitter.com",
        kind: "x_pixel",
    },
    Signature {
        carrier: Carrier::Call("snaptr", Some("init")),
        shape: IdShape::Alnum(8, 40),
        vendor: "snap",
        category: Category::Advertising,
        host: "tr.snapchat.com",
        kind: "snap_pixel",
    },
    Signature {
        carrier: Carrier::Call("pintrk", Some("load")),
        shape: IdShape::Digits(6, 20),
        vendor: "pinterest",
        category: Category::Advertising,
        host: "ct.pinterest.com",
        kind: "pinterest_tag",
    },
    Signature {
        carrier: Carrier::Call("rdt", Some("init")),
        shape: IdShape::Alnum(4, 40),
        vendor: "reddit",
        category: Category::Advertising,
        host: "alb.reddit.com",
        kind: "reddit_pixel",
    },
];

/// Tracker snippets in an inline script, with their IDs.
pub fn snippets_in_script(text: &str) -> Vec<Snippet> {
    let mut out: Vec<Snippet> = Vec::new();
    let mut add = |vendor, category, host, kind: &str, id: &str, evidence: &str| {
        let s = Snippet {
            vendor,
            category,
            host,
            id: Some(TrackerId::new(kind, id)),
            evidence: excerpt(evidence),
        };
        if !out.contains(&s) && out.len() < MAX_SNIPPETS_PER_SCRIPT {
            out.push(s);
        }
    };
    for sig in SIGNATURES {
        let found = match sig.carrier {
            Carrier::Call(func, first) => calls(text, func, first),
            Carrier::Assign(key) => assignments(text, key),
        };
        for (id, ev) in found {
            if sig.shape.accepts(id) {
                add(sig.vendor, sig.category, sig.host, sig.kind, id, ev);
            }
        }
    }
    for (id, ev) in calls(text, "gtag", Some("config")) {
        if let Some((kind, cat, host)) = google_id(id) {
            add("google", cat, host, kind, id, ev);
        }
    }
    for id in gtm_ids(text) {
        add(
            "google",
            Category::TagManager,
            "www.googletagmanager.com",
            "gtm_container",
            id,
            id,
        );
    }
    // Clarity: (function(c,l,a,r,i,t,y){...})(window, document, "clarity", "script", "<id>");
    clarity(text, &mut |id, ev| {
        add(
            "microsoft",
            Category::SessionReplay,
            "www.clarity.ms",
            "clarity_project",
            id,
            ev,
        )
    });
    // UET's `ti` is a common word: only inside a UET snippet.
    if text.contains("uetq") || text.contains("bat.bing.com") {
        for (id, ev) in assignments(text, "ti") {
            if digits(id, 4, 12) {
                add(
                    "microsoft",
                    Category::Advertising,
                    "bat.bing.com",
                    "uet_tag",
                    id,
                    ev,
                );
            }
        }
    }
    out
}

/// The Clarity snippet's trailing call: `"clarity", "script", "<project id>"`.
fn clarity(text: &str, found: &mut dyn FnMut(&str, &str)) {
    let b = text.as_bytes();
    let mut from = 0;
    let mut n = 0;
    while let Some(pos) = text.get(from..).and_then(|t| t.find("clarity")) {
        let at = from + pos;
        from = at + 7;
        if at == 0 || !matches!(b[at - 1], b'"' | b'\'') || b.get(at + 7) != Some(&b[at - 1]) {
            continue;
        }
        let mut i = at + 8; // past the closing quote
        let Some(c) = expect(b, i, b',') else {
            continue;
        };
        let Some(("script", after)) = literal(text, c) else {
            continue;
        };
        i = after;
        let Some(c) = expect(b, i, b',') else {
            continue;
        };
        let Some((id, after)) = literal(text, c) else {
            continue;
        };
        if alnum(id, 6, 20) {
            found(id, &text[at - 1..after]);
            n += 1;
            if n >= MAX_SNIPPETS_PER_SCRIPT {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IDs in URLs

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .take(64)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

fn host_is(host: &str, suffix: &str) -> bool {
    host == suffix || host.strip_suffix(suffix).is_some_and(|h| h.ends_with('.'))
}

/// Tracker IDs carried by a tracker URL's path or query string.
pub fn ids_from_url(url: &Url) -> Vec<TrackerId> {
    let Some(host) = url.host_str() else {
        return Vec::new();
    };
    let host = host.to_ascii_lowercase();
    let path = url.path();
    let found: Option<(&str, String)> =
        if host_is(&host, "facebook.com") && (path == "/tr" || path.starts_with("/tr/")) {
            query(url, "id")
                .filter(|i| digits(i, 5, 20))
                .map(|id| ("meta_pixel", id))
        } else if host_is(&host, "facebook.net") {
            path.strip_prefix("/signals/config/")
                .filter(|i| digits(i, 5, 20))
                .map(|id| ("meta_pixel", id.to_owned()))
        } else if host_is(&host, "googletagmanager.com") {
            query(url, "id").and_then(|id| google_id(&id).map(|(kind, _, _)| (kind, id)))
        } else if host_is(&host, "ads.linkedin.com") {
            query(url, "pid")
                .filter(|i| digits(i, 3, 12))
                .map(|id| ("linkedin_partner", id))
        } else if host_is(&host, "bat.bing.com") {
            query(url, "ti")
                .filter(|i| digits(i, 4, 12))
                .map(|id| ("uet_tag", id))
        } else if host_is(&host, "hotjar.com") {
            path.strip_prefix("/c/hotjar-")
                .and_then(|r| r.strip_suffix(".js"))
                .and_then(|r| r.split('.').next())
                .filter(|i| digits(i, 3, 12))
                .map(|id| ("hotjar_site", id.to_owned()))
        } else if host_is(&host, "clarity.ms") {
            path.strip_prefix("/tag/")
                .filter(|i| alnum(i, 6, 20))
                .map(|id| ("clarity_project", id.to_owned()))
        } else if host_is(&host, "tiktok.com") {
            query(url, "sdkid")
                .filter(|i| alnum(i, 8, 40))
                .map(|id| ("tiktok_pixel", id))
        } else if host_is(&host, "pinterest.com") {
            query(url, "tid")
                .filter(|i| digits(i, 6, 20))
                .map(|id| ("pinterest_tag", id))
        } else if host_is(&host, "t.co") || host_is(&host, "analytics.twitter.com") {
            query(url, "txn_id")
                .filter(|i| alnum(i, 4, 20))
                .map(|id| ("x_pixel", id))
        } else {
            None
        };
    found
        .map(|(kind, id)| vec![TrackerId::new(kind, &id)])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ids(text: &str) -> Vec<(String, String, &'static str)> {
        snippets_in_script(text)
            .into_iter()
            .map(|s| {
                let id = s.id.unwrap();
                (id.kind, id.id, s.host)
            })
            .collect()
    }

    const META: &str = r#"!function(f,b,e,v,n,t,s)
{if(f.fbq)return;n=f.fbq=function(){n.callMethod?
n.callMethod.apply(n,arguments):n.queue.push(arguments)};
t.src=v;s=b.getElementsByTagName(e)[0];
s.parentNode.insertBefore(t,s)}(window, document,'script',
'https://connect.facebook.net/en_US/fbevents.js');
fbq('init', '1234567890123456');
fbq('track', 'PageView');"#;

    #[test]
    fn meta_pixel() {
        assert_eq!(
            ids(META),
            vec![(
                "meta_pixel".into(),
                "1234567890123456".into(),
                "connect.facebook.net"
            )]
        );
        let hosts = hosts_in_script(META);
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].host, "connect.facebook.net");
        assert_eq!(
            hosts[0].excerpt,
            "https://connect.facebook.net/en_US/fbevents.js"
        );
        assert!(hosts[0].url.is_some());
        // Double quotes and no spaces; a lookalike function does not count.
        assert_eq!(ids(r#"fbq("init","98765")"#)[0].1, "98765");
        assert!(ids(r#"myfbq('init', '98765')"#).is_empty());
        assert!(ids(r#"fbq('track', '98765')"#).is_empty());
        assert!(ids(r#"fbq('init', 'notdigits')"#).is_empty());
    }

    #[test]
    fn google_tag_and_gtm() {
        let text = r#"window.dataLayer = window.dataLayer || [];
function gtag(){dataLayer.push(arguments);}
gtag('js', new Date());
gtag('config', 'G-8XK2M4PL1Q');
gtag('config', 'AW-123456789');
(function(w,d,s,l,i){w[l]=w[l]||[];j.src='https://www.googletagmanager.com/gtm.js?id='+i+dl;
})(window,document,'script','dataLayer','GTM-P7X2Q9K');"#;
        let got = ids(text);
        assert!(got.contains(&(
            "ga4".into(),
            "G-8XK2M4PL1Q".into(),
            "www.google-analytics.com"
        )));
        assert!(got.contains(&(
            "google_ads".into(),
            "AW-123456789".into(),
            "googleads.g.doubleclick.net"
        )));
        assert!(got.contains(&(
            "gtm_container".into(),
            "GTM-P7X2Q9K".into(),
            "www.googletagmanager.com"
        )));
        assert_eq!(got.len(), 3);
        // "GTM-" needs 4..=12 upper-case letters or digits, not part of a longer word.
        assert!(ids("XGTM-ABCDE GTM-ab GTM-ABC").is_empty());
    }

    #[test]
    fn other_vendors() {
        let tiktok = "ttq.load('C4ABCDEF1234567890');ttq.page();";
        assert_eq!(ids(tiktok)[0].1, "C4ABCDEF1234567890");
        let li = r#"_linkedin_partner_id = "4567890";
window._linkedin_data_partner_ids = window._linkedin_data_partner_ids || [];
window._linkedin_data_partner_ids.push(_linkedin_partner_id);"#;
        assert_eq!(
            ids(li),
            vec![(
                "linkedin_partner".into(),
                "4567890".into(),
                "snap.licdn.com"
            )]
        );
        let clarity = r#"(function(c,l,a,r,i,t,y){ t.src="https://www.clarity.ms/tag/"+i;
})(window, document, "clarity", "script", "k3j4h5g6f7");"#;
        assert_eq!(
            ids(clarity),
            vec![(
                "clarity_project".into(),
                "k3j4h5g6f7".into(),
                "www.clarity.ms"
            )]
        );
        let uet = r#"(function(w,d,t,r,u){var f,n,i;w[u]=w[u]||[],f=function(){var o={ti:"187000123", enableAutoSpaLoading: true};
o.q=w[u],w[u]=new UET(o)},n=d.createElement(t),n.src=r;})(window,document,"script","//bat.bing.com/bat.js","uetq");"#;
        assert_eq!(
            ids(uet),
            vec![("uet_tag".into(), "187000123".into(), "bat.bing.com")]
        );
        // "ti:" outside a UET snippet is not an id.
        assert!(ids("var x = {ti: '12345678'};").is_empty());
        let hotjar = "(function(h,o,t,j,a,r){h._hjSettings={hjid:3412345,hjsv:6};a.src='https://static.hotjar.com/c/hotjar-'+h._hjSettings.hjid+'.js?sv='})(window,document);";
        assert_eq!(
            ids(hotjar),
            vec![("hotjar_site".into(), "3412345".into(), "static.hotjar.com")]
        );
        assert_eq!(ids("twq('config','o8x1z');")[0].0, "x_pixel");
        assert_eq!(ids("snaptr('init', 'a1b2c3d4-e5f6')")[0].0, "snap_pixel");
        assert_eq!(ids("pintrk('load', '2612345678901')")[0].0, "pinterest_tag");
        assert_eq!(ids("rdt('init','a2_abcdef123')")[0].0, "reddit_pixel");
    }

    #[test]
    fn hosts_in_scripts() {
        let text = r#"s.trackingServer="metrics.force.test"; var u = '//cdn.example.org/x.js';
// a comment mentioning http://not-a-comment.example.com is still a URL
var json = "https:\/\/snap.licdn.com\/li.lms-analytics\/insight.min.js"; var f = "main.js"; var v = "1.2.3";"#;
        let hosts: Vec<String> = hosts_in_script(text).into_iter().map(|h| h.host).collect();
        assert!(hosts.contains(&"metrics.force.test".to_owned()));
        assert!(hosts.contains(&"cdn.example.org".to_owned()));
        assert!(hosts.contains(&"not-a-comment.example.com".to_owned()));
        assert!(hosts.contains(&"snap.licdn.com".to_owned()));
        assert!(!hosts.iter().any(|h| h == "main.js" || h == "1.2.3"));
    }

    #[test]
    fn ids_in_urls() {
        let u = |s: &str| ids_from_url(&Url::parse(s).unwrap());
        assert_eq!(
            u("https://www.facebook.com/tr?id=1234567890123456&ev=PageView&noscript=1")[0].id,
            "1234567890123456"
        );
        assert_eq!(
            u("https://www.googletagmanager.com/gtag/js?id=G-8XK2M4PL1Q")[0].kind,
            "ga4"
        );
        assert_eq!(
            u("https://www.googletagmanager.com/ns.html?id=GTM-P7X2Q9K")[0].kind,
            "gtm_container"
        );
        assert_eq!(
            u("https://px.ads.linkedin.com/collect/?pid=4567890&fmt=gif")[0].id,
            "4567890"
        );
        assert_eq!(
            u("https://bat.bing.com/action/0?ti=187000123&Ver=2")[0].id,
            "187000123"
        );
        assert_eq!(
            u("https://static.hotjar.com/c/hotjar-3412345.js?sv=6")[0].id,
            "3412345"
        );
        assert_eq!(
            u("https://www.clarity.ms/tag/k3j4h5g6f7")[0].id,
            "k3j4h5g6f7"
        );
        assert_eq!(
            u("https://connect.facebook.net/signals/config/1234567890123456?v=2")[0].id,
            "1234567890123456"
        );
        assert!(u("https://www.facebook.com/police").is_empty());
        assert!(u("https://example.com/tr?id=1234567").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn scanners_never_panic(s in "[a-zA-Z0-9 .:/'\"`(),=_\\-é\\\\]{0,200}") {
            let _ = snippets_in_script(&s);
            for h in hosts_in_script(&s) {
                proptest::prop_assert!(plausible_host(&h.host));
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "fbq(",
            "fbq('init',",
            "'",
            "\"clarity\",",
            "//",
            "GTM-",
            "hjid:",
            "ti:\"",
            "é//é.é",
            "\"a.b\u{e9}\"",
        ] {
            let _ = snippets_in_script(s);
            let _ = hosts_in_script(s);
        }
    }
}
