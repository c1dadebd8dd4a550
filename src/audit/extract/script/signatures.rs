//! Snippet signatures and tracker IDs: the vendors' base codes ([`snippets_in_script`]: Meta
//! Pixel, Google tag and GTM, TikTok, LinkedIn, Clarity, UET, Hotjar, X, Snap, Pinterest, Reddit),
//! the shapes their IDs must have, Google's ID prefixes ([`google_id`]) and the IDs tracker URLs
//! carry ([`ids_from_url`]). Every loop is bounded by [`MAX_SNIPPETS_PER_SCRIPT`].

use url::Url;

use super::scan::{assignments, calls, expect, literal};
use super::{MAX_SNIPPETS_PER_SCRIPT, Snippet, TrackerId, excerpt};
use crate::lists::catalogue::Category;

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
