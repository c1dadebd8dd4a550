//! Extraction: everything an audit needs from one HTML page, parsed with a real HTML parser
//! (scraper / html5ever), never with patterns over markup.
//!
//! Owns the walk over the document and what it collects: the hosts the page makes the browser
//! contact ([`Reference`]: `script src`, `img src`/`srcset` with 1×1 pixels flagged, `iframe`,
//! `link` with resource hints told apart, `form action`, media, `a ping`, the contents of
//! `<noscript>` (re-parsed, since html5ever keeps them as text when scripting is on) and host
//! names inside inline scripts), the tracker snippet signatures in inline scripts
//! ([`script`]), `<meta http-equiv>` Content-Security-Policy values ([`csp`] parses them), the
//! links a crawler follows, the title, the page's content text (without `nav`, `header`,
//! `footer`, `aside`, scripts and styles) and its forms, for [`super::sensitive`].
//!
//! Every collection is capped ([`MAX_REFS`], [`MAX_LINKS`], [`MAX_TEXT`], [`MAX_FORMS`]).

pub mod csp;
pub mod script;
mod types;

use scraper::{ElementRef, Html, Node};
use url::Url;

use script::{ScriptHost, Snippet};
pub use types::{FormInfo, InlineScript, MAX_INLINE_SCRIPTS, RefKind, Reference};

/// Most references kept per page.
pub const MAX_REFS: usize = 5_000;
/// Most links kept per page.
pub const MAX_LINKS: usize = 5_000;
/// Most bytes of content text kept per page.
pub const MAX_TEXT: usize = 2 * 1024 * 1024;
/// Most forms kept per page.
pub const MAX_FORMS: usize = 100;
/// Longest detail string kept per reference.
const MAX_DETAIL: usize = 200;
/// How deep `<noscript>` contents are re-parsed (a noscript inside a noscript's text).
const MAX_NOSCRIPT_NESTING: u8 = 2;

/// What one page yields.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// `<title>`, trimmed.
    pub title: Option<String>,
    /// The page's content text (see the module docs), whitespace-collapsed.
    pub text: String,
    /// Forms.
    pub forms: Vec<FormInfo>,
    /// Absolute http(s) links (`a`, `area`, `iframe`, `frame`), fragment removed, in order.
    pub links: Vec<Url>,
    /// Hosts the page contacts or names.
    pub refs: Vec<Reference>,
    /// Tracker snippets in inline scripts.
    pub snippets: Vec<Snippet>,
    /// `<meta http-equiv=Content-Security-Policy content>` values.
    pub csp_meta: Vec<String>,
    /// Inline scripts (code, not data blocks), for a Content-Security-Policy's hashes.
    pub inline_scripts: Vec<InlineScript>,
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    chrome: bool,
    noscript: u8,
    form: Option<usize>,
    hidden: bool,
}

fn shorten(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_DETAIL {
        return s.to_owned();
    }
    let mut end = MAX_DETAIL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn http_url(base: &Url, raw: &str) -> Option<Url> {
    let raw = raw.trim();
    if raw.is_empty() || raw.starts_with('#') {
        return None;
    }
    let u = base.join(raw).ok()?;
    matches!(u.scheme(), "http" | "https" | "ws" | "wss").then_some(u)
}

fn host_of(u: &Url) -> Option<String> {
    let h = u.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

struct Walker<'b> {
    base: &'b Url,
    out: Extracted,
    text_len: usize,
}

impl Walker<'_> {
    fn add_ref(&mut self, kind: RefKind, raw: &str, detail: String) {
        if self.out.refs.len() >= MAX_REFS {
            return;
        }
        let Some(url) = http_url(self.base, raw) else {
            return;
        };
        let Some(host) = host_of(&url) else {
            return;
        };
        self.out.refs.push(Reference {
            kind,
            host,
            url: Some(url),
            detail: shorten(&detail),
        });
    }

    fn add_link(&mut self, raw: &str) {
        if self.out.links.len() >= MAX_LINKS {
            return;
        }
        if let Some(mut u) = http_url(self.base, raw)
            && matches!(u.scheme(), "http" | "https")
        {
            u.set_fragment(None);
            self.out.links.push(u);
        }
    }

    fn add_text(&mut self, t: &str) {
        if self.text_len >= MAX_TEXT {
            return;
        }
        for word in t.split_whitespace() {
            if self.text_len >= MAX_TEXT {
                break;
            }
            if !self.out.text.is_empty() {
                self.out.text.push(' ');
            }
            self.out.text.push_str(word);
            self.text_len += word.len() + 1;
        }
    }

    fn script(&mut self, el: ElementRef<'_>, ctx: Ctx) {
        let ty = el.attr("type").unwrap_or("").trim().to_ascii_lowercase();
        if let Some(src) = el.attr("src") {
            let kind = if ctx.noscript > 0 {
                RefKind::Noscript
            } else {
                RefKind::ScriptSrc
            };
            let note = if ty.is_empty() || ty.contains("javascript") || ty == "module" {
                String::new()
            } else {
                format!(" type=\"{ty}\"")
            };
            self.add_ref(kind, src, format!("<script src=\"{}\"{note}>", src.trim()));
            return;
        }
        // JSON data blocks (JSON-LD "sameAs" links to social profiles) are not code.
        if ty.contains("json") || ty == "text/template" || ty == "text/html" {
            return;
        }
        let text: String = el.text().collect();
        if text.trim().is_empty() {
            return;
        }
        let hosts: Vec<ScriptHost> = script::hosts_in_script(&text);
        let snippets = script::snippets_in_script(&text);
        if self.out.inline_scripts.len() < MAX_INLINE_SCRIPTS && ctx.noscript == 0 {
            let mut snippet_vendors: Vec<&'static str> =
                snippets.iter().map(|s| s.vendor).collect();
            snippet_vendors.dedup();
            self.out.inline_scripts.push(InlineScript {
                hash: super::csp::hash_source(&text),
                excerpt: shorten(&text.split_whitespace().collect::<Vec<_>>().join(" ")),
                hosts: hosts.iter().map(|h| h.host.clone()).collect(),
                snippet_vendors,
            });
        }
        for h in hosts {
            if self.out.refs.len() >= MAX_REFS {
                break;
            }
            self.out.refs.push(Reference {
                kind: RefKind::InlineScript,
                host: h.host,
                url: h.url,
                detail: shorten(&format!("inline script: {}", h.excerpt)),
            });
        }
        for s in snippets {
            if !self.out.snippets.contains(&s) {
                self.out.snippets.push(s);
            }
        }
    }

    fn img(&mut self, el: ElementRef<'_>, ctx: Ctx) {
        let one = |a: &str| {
            el.attr(a)
                .map(|v| v.trim().trim_end_matches("px"))
                .is_some_and(|v| v == "1" || v == "0")
        };
        let style = el
            .attr("style")
            .unwrap_or("")
            .to_ascii_lowercase()
            .replace(' ', "");
        let hidden = ctx.hidden
            || style.contains("display:none")
            || style.contains("visibility:hidden")
            || el.attr("hidden").is_some();
        let pixel = (one("width") && one("height")) || hidden;
        let kind = if ctx.noscript > 0 {
            RefKind::NoscriptImg
        } else if pixel {
            RefKind::Pixel
        } else {
            RefKind::Img
        };
        let size = if pixel { " (1×1 or hidden)" } else { "" };
        if let Some(src) = el.attr("src") {
            self.add_ref(kind, src, format!("<img src=\"{}\">{size}", src.trim()));
        }
        if let Some(set) = el.attr("srcset") {
            for cand in set.split(',').take(20) {
                if let Some(u) = cand.split_whitespace().next() {
                    self.add_ref(kind, u, format!("<img srcset=\"{u}\">"));
                }
            }
        }
    }

    fn form_field(&mut self, el: ElementRef<'_>, ctx: Ctx) {
        let Some(fi) = ctx.form else {
            return;
        };
        let name = el.value().name();
        let ty = el
            .attr("type")
            .unwrap_or("text")
            .trim()
            .to_ascii_lowercase();
        if name == "input"
            && matches!(
                ty.as_str(),
                "hidden" | "submit" | "button" | "reset" | "image"
            )
        {
            return;
        }
        let field_name = el
            .attr("name")
            .or_else(|| el.attr("id"))
            .unwrap_or("")
            .to_owned();
        let search = (name == "input" && ty == "search")
            || matches!(
                field_name.to_ascii_lowercase().as_str(),
                "q" | "query" | "search" | "s" | "keywords" | "term" | "searchterm"
            );
        let desc = match (name, field_name.is_empty()) {
            ("input", true) => ty.clone(),
            ("input", false) => format!("{ty} \"{field_name}\""),
            (other, true) => other.to_owned(),
            (other, false) => format!("{other} \"{field_name}\""),
        };
        if let Some(f) = self.out.forms.get_mut(fi) {
            if !search {
                f.search_only = false;
            }
            if f.fields.len() < 50 {
                f.fields.push(desc);
            }
        }
    }

    fn element(&mut self, el: ElementRef<'_>, ctx: &mut Ctx) -> bool {
        let name = el.value().name();
        match name {
            "script" => {
                self.script(el, *ctx);
                return false;
            }
            "style" | "template" => return false,
            "title" if self.out.title.is_none() && ctx.noscript == 0 => {
                let t: String = el.text().collect::<Vec<_>>().join(" ");
                let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
                if !t.is_empty() {
                    self.out.title = Some(shorten(&t));
                }
                return false;
            }
            "noscript" => {
                // With scripting on, html5ever keeps noscript contents as text: parse them.
                let inner: String = el.text().collect();
                if ctx.noscript < MAX_NOSCRIPT_NESTING && inner.contains('<') {
                    let frag = Html::parse_fragment(&inner);
                    let mut c = *ctx;
                    c.noscript += 1;
                    self.walk(frag.root_element(), c);
                    return false;
                }
                ctx.noscript += 1;
            }
            "nav" | "header" | "footer" | "aside" => ctx.chrome = true,
            "img" => self.img(el, *ctx),
            "input"
                if el
                    .attr("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("image")) =>
            {
                if let Some(src) = el.attr("src") {
                    self.add_ref(
                        RefKind::Img,
                        src,
                        format!("<input type=image src=\"{}\">", src.trim()),
                    );
                }
                self.form_field(el, *ctx);
            }
            "input" | "textarea" | "select" => self.form_field(el, *ctx),
            "iframe" | "frame" => {
                if let Some(src) = el.attr("src") {
                    let kind = if ctx.noscript > 0 {
                        RefKind::NoscriptIframe
                    } else {
                        RefKind::Iframe
                    };
                    self.add_ref(kind, src, format!("<{name} src=\"{}\">", src.trim()));
                    self.add_link(src);
                }
            }
            "link" => {
                if let Some(href) = el.attr("href") {
                    let rel = el.attr("rel").unwrap_or("").to_ascii_lowercase();
                    let hint = rel.split_whitespace().any(|r| {
                        matches!(
                            r,
                            "preconnect"
                                | "dns-prefetch"
                                | "preload"
                                | "prefetch"
                                | "modulepreload"
                                | "prerender"
                        )
                    });
                    let kind = if hint {
                        RefKind::ResourceHint
                    } else {
                        RefKind::Link
                    };
                    self.add_ref(
                        kind,
                        href,
                        format!("<link rel=\"{rel}\" href=\"{}\">", href.trim()),
                    );
                }
            }
            "form" if self.out.forms.len() < MAX_FORMS && ctx.noscript == 0 => {
                let action = el.attr("action").and_then(|a| http_url(self.base, a));
                if action.is_some()
                    && let Some(raw) = el.attr("action")
                {
                    self.add_ref(
                        RefKind::FormAction,
                        raw,
                        format!("<form action=\"{}\">", raw.trim()),
                    );
                }
                let role_search = el
                    .attr("role")
                    .is_some_and(|r| r.eq_ignore_ascii_case("search"));
                self.out.forms.push(FormInfo {
                    action: action.map(|a| a.to_string()),
                    fields: Vec::new(),
                    search_only: true,
                    in_chrome: ctx.chrome || role_search,
                });
                ctx.form = Some(self.out.forms.len() - 1);
            }
            "search" => ctx.chrome = true,
            "a" | "area" => {
                if let Some(href) = el.attr("href") {
                    self.add_link(href);
                }
                if let Some(ping) = el.attr("ping") {
                    for p in ping.split_whitespace().take(10) {
                        self.add_ref(RefKind::Ping, p, format!("<a ping=\"{p}\">"));
                    }
                }
            }
            "embed" | "source" | "track" | "video" | "audio" => {
                for a in ["src", "poster"] {
                    if let Some(v) = el.attr(a) {
                        self.add_ref(RefKind::Media, v, format!("<{name} {a}=\"{}\">", v.trim()));
                    }
                }
            }
            "object" => {
                if let Some(v) = el.attr("data") {
                    self.add_ref(RefKind::Media, v, format!("<object data=\"{}\">", v.trim()));
                }
            }
            "meta" => {
                if el
                    .attr("http-equiv")
                    .is_some_and(|h| h.eq_ignore_ascii_case("content-security-policy"))
                    && let Some(c) = el.attr("content")
                    && self.out.csp_meta.len() < 10
                {
                    self.out.csp_meta.push(c.to_owned());
                }
            }
            _ => {}
        }
        if el.attr("hidden").is_some()
            || el.attr("style").is_some_and(|s| {
                s.to_ascii_lowercase()
                    .replace(' ', "")
                    .contains("display:none")
            })
        {
            ctx.hidden = true;
        }
        true
    }

    /// Depth-first, in document order, with an explicit stack (no recursion on the tree; the
    /// only recursion is the bounded noscript re-parse).
    fn walk(&mut self, root: ElementRef<'_>, ctx: Ctx) {
        let mut stack: Vec<(ElementRef<'_>, Ctx)> = vec![(root, ctx)];
        while let Some((el, mut ctx)) = stack.pop() {
            if !self.element(el, &mut ctx) {
                continue;
            }
            let start = stack.len();
            for child in el.children() {
                match child.value() {
                    Node::Text(t) if !ctx.chrome && ctx.noscript == 0 => self.add_text(t),
                    Node::Element(_) => {
                        if let Some(c) = ElementRef::wrap(child) {
                            stack.push((c, ctx));
                        }
                    }
                    _ => {}
                }
            }
            stack[start..].reverse();
        }
    }
}

/// Extracts everything from one HTML document whose URL is `url` (a `<base href>` overrides it
/// for resolving relative references).
pub fn extract(html: &str, url: &Url) -> Extracted {
    let doc = Html::parse_document(html);
    let base = match scraper::Selector::parse("base[href]") {
        Ok(sel) => doc
            .select(&sel)
            .next()
            .and_then(|b| b.attr("href"))
            .and_then(|h| url.join(h.trim()).ok())
            .unwrap_or_else(|| url.clone()),
        Err(_) => url.clone(),
    };
    let mut w = Walker {
        base: &base,
        out: Extracted::default(),
        text_len: 0,
    };
    w.walk(doc.root_element(), Ctx::default());
    w.out
}

#[cfg(test)]
mod tests;
