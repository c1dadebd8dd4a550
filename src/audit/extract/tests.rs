//! Tests of the page extraction: elements, noscript, forms, base href, garbage input.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn refs(e: &Extracted) -> Vec<(&'static str, &str)> {
    e.refs
        .iter()
        .map(|r| (r.kind.as_str(), r.host.as_str()))
        .collect()
}

#[test]
fn finds_elements_noscript_and_forms() {
    let html = r#"<!doctype html><html><head><title> Report a
    crime </title>
    <meta http-equiv="Content-Security-Policy" content="script-src 'self' connect.facebook.net">
    <link rel="preconnect" href="https://www.google-analytics.com">
    <link rel="stylesheet" href="/style.css">
    <script async src="https://www.googletagmanager.com/gtag/js?id=G-ABC123"></script>
    <script type="application/ld+json">{"sameAs": ["https://www.facebook.com/police"]}</script>
    <noscript><img height="1" width="1" style="display:none" src="https://www.facebook.com/tr?id=123456&ev=PageView&noscript=1"/></noscript>
    </head><body>
    <header><nav><a href="/victims">Victim support</a><form role="search" action="/search"><input type="search" name="q"></form></nav></header>
    <noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-ABCD12" height="0" width="0"></iframe></noscript>
    <main><h1>Tell us what happened</h1>
    <form action="https://forms.example.org/submit" method="post">
      <input type="hidden" name="csrf"><input name="name"><input type="email" name="email">
      <textarea name="details"></textarea><input type="submit">
    </form>
    <img src="https://pixel.example.net/p.gif" width="1" height="1">
    <img src="/logo.png" srcset="/logo@2x.png 2x">
    <a href="page2.html#top">next</a><a href="mailto:x@y.z">mail</a>
    </main>
    <footer>Victim and witness care</footer>
    </body></html>"#;
    let url = Url::parse("https://www.force.test/report/").unwrap();
    let e = extract(html, &url);
    assert_eq!(e.title.as_deref(), Some("Report a crime"));
    assert_eq!(e.csp_meta.len(), 1);
    let r = refs(&e);
    assert!(r.contains(&("resource_hint", "www.google-analytics.com")));
    assert!(r.contains(&("link", "www.force.test")));
    assert!(r.contains(&("script_src", "www.googletagmanager.com")));
    assert!(r.contains(&("noscript_img", "www.facebook.com")));
    assert!(r.contains(&("noscript_iframe", "www.googletagmanager.com")));
    assert!(r.contains(&("form_action", "forms.example.org")));
    assert!(r.contains(&("pixel_img", "pixel.example.net")));
    assert!(r.contains(&("img", "www.force.test")));
    // JSON-LD is data, not code.
    assert!(!e.refs.iter().any(|x| x.kind == RefKind::InlineScript));
    assert_eq!(e.forms.len(), 2);
    assert!(e.forms[0].search_only && e.forms[0].in_chrome);
    assert!(!e.forms[1].search_only && !e.forms[1].in_chrome);
    assert_eq!(
        e.forms[1].fields,
        vec!["text \"name\"", "email \"email\"", "textarea \"details\""]
    );
    assert!(e.text.contains("Tell us what happened"));
    assert!(
        !e.text.contains("Victim"),
        "chrome text excluded: {}",
        e.text
    );
    let links: Vec<&str> = e.links.iter().map(Url::as_str).collect();
    assert!(links.contains(&"https://www.force.test/report/page2.html"));
    assert!(links.contains(&"https://www.force.test/victims"));
    assert!(!links.iter().any(|l| l.starts_with("mailto")));
}

proptest::proptest! {
    #[test]
    fn extract_never_panics(s in "(<|>|/|=|\"|'| |a|img|src|script|noscript|form|input|http://x.test/|GTM-ABCD|fbq\\('init', '12345'\\)|é){0,80}") {
        let u = Url::parse("http://127.0.0.1/").unwrap();
        let e = extract(&s, &u);
        proptest::prop_assert!(e.refs.len() <= MAX_REFS && e.links.len() <= MAX_LINKS);
        for c in &e.csp_meta {
            let _ = csp::hosts(c);
        }
    }
}

#[test]
fn base_href_and_garbage() {
    let e = extract(
        r#"<base href="https://cdn.force.test/"><img src="x.png"><script>var a = "</script>"#,
        &Url::parse("http://127.0.0.1:1/").unwrap(),
    );
    assert_eq!(e.refs[0].host, "cdn.force.test");
    for junk in [
        "",
        "<",
        "<<<>>>",
        "<noscript><noscript><img src=//a.example.com>",
        "\u{0}\u{feff}",
    ] {
        let _ = extract(junk, &Url::parse("http://127.0.0.1/").unwrap());
    }
}
