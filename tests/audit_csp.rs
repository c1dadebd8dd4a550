//! `pixelguard audit --csp`: the real binary crawls the CSP fixture site (tests/csp_site, on
//! 127.0.0.1) and prints its policies. Every inline script of the fixture pages is hashed here
//! independently (sha256 + base64, as browsers do) and checked: the site's own scripts are in
//! the policy of their page, the tracker snippets (Meta Pixel, GTM, LinkedIn) in none; no
//! tracker host is allowed anywhere unless `--csp-allow` keeps it, and never on the sensitive
//! reporting page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod csp_site;

use base64::Engine as _;
use csp_site::{audit, config, site_dir, start_site};
use serde_json::Value;
use sha2::{Digest, Sha256};

const TRACKER_HOSTS: [&str; 7] = [
    "facebook",
    "googletagmanager",
    "google-analytics",
    "licdn",
    "linkedin",
    "tiktok",
    "doubleclick",
];

/// Every inline script of a fixture page: (is a tracker snippet, CSP hash source).
fn inline_scripts(file: &str) -> Vec<(bool, String)> {
    let html = std::fs::read_to_string(site_dir().join(file)).unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("script:not([src])").unwrap();
    doc.select(&sel)
        .map(|s| {
            let text: String = s.text().collect();
            let tracker = ["fbq(", "gtm.start", "_linkedin", "lintrk", "ttq"]
                .iter()
                .any(|m| text.contains(m));
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&text));
            (tracker, format!("'sha256-{hash}'"))
        })
        .collect()
}

fn directive<'a>(policy: &'a str, name: &str) -> Vec<&'a str> {
    policy
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name).filter(|r| r.starts_with(' ')))
        .map(|r| r.split_whitespace().collect())
        .unwrap_or_default()
}

fn no_tracker(policy: &str) {
    for t in TRACKER_HOSTS {
        assert!(!policy.contains(t), "{t} allowed in {policy}");
    }
}

async fn csp_json(extra: &[&str]) -> Value {
    let site = start_site().await;
    let cfg = config();
    let mut a = vec!["--csp", "--format", "json"];
    a.extend_from_slice(extra);
    let run = audit(&site, &cfg, &a).await;
    // A tracker on a sensitive page fails a plain audit (exit 4); --csp prints a policy: 0.
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_allows_what_pages_need_and_no_tracker() {
    let doc = csp_json(&["--report-uri", "https://dns.force.test:8443/csp-report"]).await;
    assert_eq!(doc["schema"], "pixelguard.csp/1");
    let site = doc["policy"].as_str().unwrap();
    no_tracker(site);
    assert_eq!(directive(site, "default-src"), ["'self'"]);
    assert!(directive(site, "style-src").contains(&"https://fonts.fontcdn.test"));
    assert!(directive(site, "img-src").contains(&"https://tiles.maps.test"));
    assert_eq!(directive(site, "object-src"), ["'none'"]);
    assert_eq!(
        directive(site, "report-uri"),
        ["https://dns.force.test:8443/csp-report"]
    );
    assert_eq!(directive(site, "report-to"), ["csp-endpoint"]);
    assert_eq!(
        doc["reporting_endpoints"],
        "csp-endpoint=\"https://dns.force.test:8443/csp-report\""
    );
    let pages: Vec<&str> = doc["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pages, ["/", "/news.html", "/careers.html"]);

    // The sensitive reporting page has its own policy, without the site's map tiles.
    let sens = doc["sensitive"].as_array().unwrap();
    assert_eq!(sens.len(), 1, "{sens:?}");
    assert_eq!(sens[0]["path"], "/report-a-crime.html");
    let strict = sens[0]["policy"].as_str().unwrap();
    no_tracker(strict);
    assert!(!strict.contains("tiles.maps.test"));

    // Hashes: the site's own inline scripts in their page's policy, the tracker snippets in none.
    let script_src = directive(site, "script-src");
    let strict_src = directive(strict, "script-src");
    let mut own = 0;
    let mut snippets = 0;
    for (file, policy) in [
        ("index.html", &script_src),
        ("news.html", &script_src),
        ("careers.html", &script_src),
        ("report-a-crime.html", &strict_src),
    ] {
        for (tracker, hash) in inline_scripts(file) {
            if tracker {
                snippets += 1;
                assert!(
                    !script_src.contains(&hash.as_str()),
                    "{file}: snippet hashed"
                );
                assert!(
                    !strict_src.contains(&hash.as_str()),
                    "{file}: snippet hashed"
                );
            } else {
                own += 1;
                assert!(policy.contains(&hash.as_str()), "{file}: {hash} missing");
            }
        }
    }
    assert_eq!((own, snippets), (2, 4));

    // Every tracker left out is named with its page.
    let excluded: Vec<(String, String)> = doc["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["pages"].as_array().unwrap().iter().map(move |p| {
                (
                    e["what"].as_str().unwrap().to_owned(),
                    p.as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    for (what, page) in [
        ("connect.facebook.net", "/report-a-crime.html"),
        ("www.facebook.com", "/report-a-crime.html"),
        ("www.googletagmanager.com", "/news.html"),
        ("snap.licdn.com", "/careers.html"),
        ("px.ads.linkedin.com", "/careers.html"),
    ] {
        assert!(
            excluded.contains(&(what.to_owned(), page.to_owned())),
            "{what} on {page} not in {excluded:?}"
        );
    }
    assert!(
        excluded.iter().any(
            |(w, p)| w.starts_with("inline script \"!function(f,b,e,v,n,t,s)")
                && p == "/report-a-crime.html"
        ),
        "{excluded:?}"
    );
    // Every allowed source has a reason.
    for a in doc["allowed"].as_array().unwrap() {
        assert!(!a["reason"].as_str().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csp_allow_keeps_a_vendor_on_ordinary_pages_only() {
    let doc = csp_json(&["--csp-allow", "linkedin"]).await;
    let site = doc["policy"].as_str().unwrap();
    assert!(directive(site, "script-src").contains(&"https://snap.licdn.com"));
    assert!(directive(site, "img-src").contains(&"https://px.ads.linkedin.com"));
    for (tracker, hash) in inline_scripts("careers.html") {
        assert!(tracker);
        assert!(directive(site, "script-src").contains(&hash.as_str()));
    }
    assert!(!site.contains("facebook") && !site.contains("googletagmanager"));
    assert!(!site.contains("report-uri"));
    let strict = doc["sensitive"][0]["policy"].as_str().unwrap();
    no_tracker(strict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_form_has_header_trial_nginx_apache_and_reasons() {
    let site = start_site().await;
    let cfg = config();
    let run = audit(
        &site,
        &cfg,
        &[
            "--csp",
            "--report-uri",
            "https://dns.force.test:8443/csp-report",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    for needle in [
        "\nContent-Security-Policy: default-src 'self'; ",
        "\nContent-Security-Policy-Report-Only: default-src 'self'; ",
        "\nReporting-Endpoints: csp-endpoint=\"https://dns.force.test:8443/csp-report\"\n",
        "\nadd_header Content-Security-Policy \"default-src 'self'; ",
        "\nlocation = /report-a-crime.html {\n    add_header Content-Security-Policy \"",
        "\nHeader always set Content-Security-Policy \"default-src 'self'; ",
        "\n<Location \"/report-a-crime.html\">\n    Header always set Content-Security-Policy \"",
        "\nstyle-src https://fonts.fontcdn.test: link fonts.fontcdn.test (not a tracker)\n",
        "\nconnect.facebook.net: Meta Platforms",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_csp_options_are_usage_errors() {
    let site = start_site().await;
    let cfg = config();
    let run = audit(&site, &cfg, &["--report-uri", "https://x.test/r"]).await;
    assert_eq!(run.code, 2, "--report-uri needs --csp: {}", run.stderr);
    let run = audit(&site, &cfg, &["--csp", "--report-uri", "ftp://x.test/r"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("expected an http or https URL"),
        "{}",
        run.stderr
    );
    let run = audit(&site, &cfg, &["--csp", "--csp-allow", "no-such-vendor"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no-such-vendor"), "{}", run.stderr);
}
