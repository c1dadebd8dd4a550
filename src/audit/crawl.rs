//! The crawl: breadth-first from the start URLs over links on the same site (same registrable
//! domain per the public suffix list; for IP addresses and single-label hosts the same host),
//! politely and bounded: `--depth` and `--max-pages` limits, at most `--concurrency` requests in
//! flight, request starts spaced by `--delay`, a per-page `--timeout` covering headers and body,
//! bodies read in chunks and cut at `--max-body` (never buffered whole), redirects followed only
//! on the same site (at most [`MAX_REDIRECTS`]), only HTML analysed, a User-Agent naming
//! pixelguard ([`user_agent`]). Each URL is fetched at most once per audit.
//!
//! The crawl knows nothing of trackers: each fetched page is handed to an analysis callback
//! (run on the blocking pool) that returns the caller's page result and the page's links.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use url::Url;

use super::PageInput;
use super::classify::registrable;
use super::report::{CrawlStats, Skipped};

/// Most redirects followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// File extensions that are never HTML pages; links to them are not followed.
const NOT_PAGES: &[&str] = &[
    ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".json",
    ".xml", ".zip", ".gz", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".mp3", ".mp4",
    ".mov", ".avi", ".webm", ".woff", ".woff2", ".ttf", ".csv", ".rss", ".ics", ".txt",
];

/// Crawl limits and manners.
#[derive(Debug, Clone)]
pub struct CrawlOptions {
    /// Most pages (requests) in all.
    pub max_pages: usize,
    /// Most link hops from a start URL.
    pub depth: u32,
    /// Most requests in flight.
    pub concurrency: usize,
    /// Per page, headers and body together.
    pub timeout: Duration,
    /// Least time between two request starts.
    pub delay: Duration,
    /// Most body bytes read per page.
    pub max_body: usize,
}

/// The analysis callback: a fetched page in, the caller's page result and the page's links out.
pub type Analyze<P> = Arc<dyn Fn(PageInput) -> (P, Vec<Url>) + Send + Sync>;

/// The User-Agent header: names pixelguard, its version, and why it is visiting.
pub fn user_agent() -> String {
    format!(
        "pixelguard-audit/{} (privacy audit of tracking pixels; +https://example.invalid/pixelguard)",
        env!("CARGO_PKG_VERSION")
    )
}

/// The site a URL belongs to, for the same-site rule.
pub fn site_of(u: &Url) -> Option<String> {
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    u.host_str().map(registrable)
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn looks_like_page(u: &Url) -> bool {
    let p = u.path().to_ascii_lowercase();
    !NOT_PAGES.iter().any(|e| p.ends_with(e))
}

/// Spaces request starts at least `delay` apart (all requests of the crawl).
struct Pace {
    next: tokio::sync::Mutex<Instant>,
    delay: Duration,
}

impl Pace {
    async fn wait(&self) {
        if self.delay.is_zero() {
            return;
        }
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = Instant::now() + self.delay;
    }
}

enum Visit<P> {
    Page {
        page: P,
        links: Vec<Url>,
        requested: Url,
        final_url: Url,
        truncated: bool,
        failed: bool,
    },
    Skip(Skipped),
}

fn build_client(
    starts: &[Url],
    opts: &CrawlOptions,
    sites: Arc<HashSet<String>>,
) -> Result<reqwest::Client, String> {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if site_of(attempt.url()).is_some_and(|s| sites.contains(&s)) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    let mut b = reqwest::Client::builder()
        .user_agent(user_agent())
        .redirect(policy)
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .pool_max_idle_per_host(opts.concurrency);
    // A crawl of a loopback site (tests, a local staging copy) never goes through a proxy.
    if starts.iter().all(is_loopback) {
        b = b.no_proxy();
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Reads at most `max` body bytes; true when the body was longer.
async fn read_capped(
    resp: &mut reqwest::Response,
    max: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut buf: Vec<u8> = Vec::new();
    // Bounded: every iteration adds at least one byte or ends; the caller's timeout bounds time.
    while let Some(chunk) = resp.chunk().await? {
        let room = max - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

fn human_size(n: usize) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    depth: u32,
    opts: &CrawlOptions,
) -> Result<PageInput, Skipped> {
    let mut page = PageInput::new(url.clone(), url.to_string(), "crawl");
    page.depth = Some(depth);
    let work = async {
        let mut resp = client
            .get(url.clone())
            .header(ACCEPT, "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
            .send()
            .await
            .map_err(|e| describe(&e, opts.timeout))?;
        let status = resp.status();
        let final_url = resp.url().clone();
        if status.is_redirection() {
            let to = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            return Ok(Err(Skipped {
                url: url.to_string(),
                reason: format!("redirects off-site to {to} (not followed)"),
            }));
        }
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !ctype.is_empty() && !ctype.contains("html") {
            return Ok(Err(Skipped {
                url: url.to_string(),
                reason: format!("not HTML ({})", ctype.split(';').next().unwrap_or("")),
            }));
        }
        let csp: Vec<String> = resp
            .headers()
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .take(10)
            .collect();
        let (body, truncated) = read_capped(&mut resp, opts.max_body)
            .await
            .map_err(|e| describe(&e, opts.timeout))?;
        Ok(Ok((status.as_u16(), final_url, csp, body, truncated)))
    };
    match tokio::time::timeout(opts.timeout, work).await {
        Err(_) => page.error = Some(timed_out(opts.timeout)),
        Ok(Err(e)) => page.error = Some(e),
        Ok(Ok(Err(skip))) => return Err(skip),
        Ok(Ok(Ok((status, final_url, csp, body, truncated)))) => {
            page.status = Some(status);
            if final_url != *url {
                page.notes.push(format!("redirected to {final_url}"));
                page.location = final_url.to_string();
                page.url = final_url;
            }
            page.csp = csp;
            if truncated {
                page.truncated = true;
                page.notes.push(format!(
                    "page larger than {}: only the first {} were audited",
                    human_size(opts.max_body),
                    human_size(opts.max_body)
                ));
            }
            page.body = Some(String::from_utf8_lossy(&body).into_owned());
        }
    }
    Ok(page)
}

fn timed_out(t: Duration) -> String {
    format!("timed out after {}", humantime::format_duration(t))
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return timed_out(timeout);
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect error"
    } else if e.is_body() || e.is_decode() {
        "error reading the body"
    } else {
        "request failed"
    };
    let mut s = kind.to_owned();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    // Bounded: error chains are short; cap anyway.
    for _ in 0..4 {
        let Some(inner) = src else { break };
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

async fn visit<P: Send + 'static>(
    client: &reqwest::Client,
    pace: &Pace,
    url: Url,
    depth: u32,
    opts: &CrawlOptions,
    analyze: Analyze<P>,
) -> Visit<P> {
    pace.wait().await;
    let requested = url.clone();
    match fetch(client, &url, depth, opts).await {
        Err(skip) => Visit::Skip(skip),
        Ok(page) => {
            let final_url = page.url.clone();
            let truncated = page.truncated;
            let failed = page.error.is_some();
            let location = page.location.clone();
            let analysed = tokio::task::spawn_blocking(move || analyze(page)).await;
            match analysed {
                Ok((page, links)) => Visit::Page {
                    page,
                    links,
                    requested,
                    final_url,
                    truncated,
                    failed,
                },
                Err(e) => Visit::Skip(Skipped {
                    url: location,
                    reason: format!("analysis failed: {e}"),
                }),
            }
        }
    }
}

/// Crawls from `starts`; returns the analysed pages in crawl order (breadth first, links in
/// document order) and the crawl's statistics.
pub async fn crawl<P: Send + 'static>(
    starts: &[Url],
    opts: &CrawlOptions,
    analyze: Analyze<P>,
) -> Result<(Vec<P>, CrawlStats), String> {
    let began = Instant::now();
    let sites: Arc<HashSet<String>> = Arc::new(starts.iter().filter_map(site_of).collect());
    let client = build_client(starts, opts, sites.clone())?;
    let pace = Pace {
        next: tokio::sync::Mutex::new(Instant::now()),
        delay: opts.delay,
    };
    let mut stats = CrawlStats {
        max_pages: opts.max_pages,
        depth: opts.depth,
        ..CrawlStats::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut frontier: Vec<Url> = Vec::new();
    for s in starts {
        let mut s = s.clone();
        s.set_fragment(None);
        if seen.insert(s.to_string()) {
            if frontier.len() < opts.max_pages {
                frontier.push(s);
            } else {
                stats.not_followed.max_pages += 1;
                stats.limit_reached = true;
            }
        }
    }
    let mut queued = frontier.len();
    let mut audited_final: HashSet<String> = HashSet::new();
    let mut pages = Vec::new();
    let concurrency = opts.concurrency.max(1);
    // Bounded: one iteration per depth level.
    for depth in 0..=opts.depth {
        if frontier.is_empty() {
            break;
        }
        let batch = std::mem::take(&mut frontier);
        stats.requests += batch.len();
        // Unordered, so a hanging page holds one slot only; then back into link order.
        let mut visits: Vec<(usize, Visit<P>)> =
            futures_util::stream::iter(batch.into_iter().enumerate())
                .map(|(i, u)| {
                    let f = visit(&client, &pace, u, depth, opts, analyze.clone());
                    async move { (i, f.await) }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        visits.sort_by_key(|(i, _)| *i);
        for (_, v) in visits {
            match v {
                Visit::Skip(s) => stats.skipped.push(s),
                Visit::Page {
                    page,
                    links,
                    requested,
                    final_url,
                    truncated,
                    failed,
                } => {
                    let mut key = final_url.clone();
                    key.set_fragment(None);
                    if !audited_final.insert(key.to_string()) {
                        stats.skipped.push(Skipped {
                            url: requested.to_string(),
                            reason: format!("redirects to {final_url}, already audited"),
                        });
                        continue;
                    }
                    seen.insert(key.to_string());
                    stats.pages += 1;
                    stats.failed += usize::from(failed);
                    stats.truncated += usize::from(truncated);
                    pages.push(page);
                    for mut link in links {
                        link.set_fragment(None);
                        if !matches!(link.scheme(), "http" | "https") || !looks_like_page(&link) {
                            continue;
                        }
                        if !seen.insert(link.to_string()) {
                            continue;
                        }
                        if !site_of(&link).is_some_and(|s| sites.contains(&s)) {
                            stats.not_followed.off_site += 1;
                        } else if depth >= opts.depth {
                            stats.not_followed.depth += 1;
                        } else if queued >= opts.max_pages {
                            stats.not_followed.max_pages += 1;
                            stats.limit_reached = true;
                        } else {
                            queued += 1;
                            frontier.push(link);
                        }
                    }
                }
            }
        }
    }
    stats.elapsed_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok((pages, stats))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn same_site_rules() {
        let s = |u: &str| site_of(&Url::parse(u).unwrap());
        assert_eq!(s("https://www.force.test/a"), Some("force.test".into()));
        assert_eq!(s("https://metrics.force.test/"), Some("force.test".into()));
        assert_eq!(
            s("https://www.police.uk/x"),
            Some("www.police.uk".into()),
            "police.uk is a public suffix"
        );
        assert_eq!(s("https://a.nhs.uk/"), Some("a.nhs.uk".into()));
        assert_eq!(s("http://127.0.0.1:8080/"), Some("127.0.0.1".into()));
        assert_eq!(s("http://[::1]:8080/"), Some("[::1]".into()));
        assert_eq!(s("http://localhost/"), Some("localhost".into()));
        assert_eq!(s("ftp://www.force.test/"), None);
        assert!(is_loopback(&Url::parse("http://127.0.0.5/").unwrap()));
        assert!(!looks_like_page(
            &Url::parse("http://a.test/leaflet.PDF").unwrap()
        ));
        assert!(looks_like_page(
            &Url::parse("http://a.test/report").unwrap()
        ));
    }
}
