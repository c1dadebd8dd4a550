//! What an extraction yields per item: [`Reference`]s with their [`RefKind`] (and its stable
//! snake_case name in reports), [`FormInfo`] and [`InlineScript`].

use url::Url;

/// How a page refers to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    /// `<script src>`.
    ScriptSrc,
    /// A host named inside an inline `<script>`.
    InlineScript,
    /// `<img src>` / `srcset`, `<input type=image>`.
    Img,
    /// An image marked 1×1 or hidden: a tracking pixel.
    Pixel,
    /// `<iframe src>` / `<frame src>`.
    Iframe,
    /// `<link href>` other than resource hints (stylesheet, icon, manifest, ...).
    Link,
    /// `<link rel=preconnect|dns-prefetch|preload|prefetch|modulepreload>`.
    ResourceHint,
    /// `<form action>`.
    FormAction,
    /// `<embed>`, `<object>`, `<video>`, `<audio>`, `<source>`, `<track>`.
    Media,
    /// `<a ping>`.
    Ping,
    /// An image inside `<noscript>`.
    NoscriptImg,
    /// An iframe inside `<noscript>` (the GTM fallback).
    NoscriptIframe,
    /// Anything else inside `<noscript>`.
    Noscript,
    /// Allowed by a `Content-Security-Policy` response header.
    CspHeader,
    /// Allowed by a `<meta http-equiv=Content-Security-Policy>`.
    CspMeta,
    /// A request the browser made (HAR input).
    Network,
    /// Implied by a recognised tracker snippet.
    Snippet,
    /// CNAME chain of a first-party host (uncloaking).
    Cname,
}

impl RefKind {
    /// The stable snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::ScriptSrc => "script_src",
            RefKind::InlineScript => "inline_script",
            RefKind::Img => "img",
            RefKind::Pixel => "pixel_img",
            RefKind::Iframe => "iframe",
            RefKind::Link => "link",
            RefKind::ResourceHint => "resource_hint",
            RefKind::FormAction => "form_action",
            RefKind::Media => "media",
            RefKind::Ping => "a_ping",
            RefKind::NoscriptImg => "noscript_img",
            RefKind::NoscriptIframe => "noscript_iframe",
            RefKind::Noscript => "noscript",
            RefKind::CspHeader => "csp_header",
            RefKind::CspMeta => "csp_meta",
            RefKind::Network => "network_request",
            RefKind::Snippet => "snippet",
            RefKind::Cname => "cname",
        }
    }
}

/// One host the page makes the browser contact (or mentions in script).
#[derive(Debug, Clone)]
pub struct Reference {
    /// How.
    pub kind: RefKind,
    /// Canonical host name.
    pub host: String,
    /// The absolute URL, when there is one (for IDs in the query string).
    pub url: Option<Url>,
    /// The element or text, shortened, e.g. `<script src="https://…">`.
    pub detail: String,
}

/// A form in the page.
#[derive(Debug, Clone, Default)]
pub struct FormInfo {
    /// `action`, resolved.
    pub action: Option<String>,
    /// Descriptions of the fields that collect input (`textarea`, `email "email"`, ...).
    pub fields: Vec<String>,
    /// True when every field is a search box (`type=search`, `role=search`, `name=q`, ...).
    pub search_only: bool,
    /// True when the form sits inside `nav`, `header`, `footer` or `aside` (site chrome).
    pub in_chrome: bool,
}

/// Most inline scripts kept per page.
pub const MAX_INLINE_SCRIPTS: usize = 200;

/// One inline `<script>` as a Content-Security-Policy sees it.
#[derive(Debug, Clone)]
pub struct InlineScript {
    /// `'sha256-…'`: the CSP hash source of its text.
    pub hash: String,
    /// Its first characters, for explanations.
    pub excerpt: String,
    /// Hosts it names.
    pub hosts: Vec<String>,
    /// Vendors whose tracker snippet it contains.
    pub snippet_vendors: Vec<&'static str>,
}
