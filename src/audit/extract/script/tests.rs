//! Tests of the inline-script scanner and the snippet signatures.

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
