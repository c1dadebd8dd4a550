//! Content-Security-Policy parsing: the host sources a policy allows, per directive, from a
//! `Content-Security-Policy` header or a `<meta http-equiv>` tag. A policy that allows a tracker
//! host is evidence that the site deploys (or once deployed) that tracker, often at run time
//! through a tag manager where a static page scan cannot see it.

/// Most host sources kept from one policy.
pub const MAX_SOURCES: usize = 500;

/// A host source in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CspHost {
    /// The directive, e.g. `script-src`.
    pub directive: String,
    /// The source expression as written, e.g. `https://*.facebook.net`.
    pub source: String,
    /// Its host part, lower case, without the `*.` wildcard.
    pub host: String,
    /// True for `*.host` (every subdomain).
    pub wildcard: bool,
}

/// The host sources of a policy (a header value may hold several policies separated by `,`).
/// Keywords (`'self'`, `'nonce-…'`), schemes (`https:`, `data:`) and `*` are not hosts.
pub fn hosts(policy: &str) -> Vec<CspHost> {
    let mut out = Vec::new();
    for directive in policy.split([';', ',']) {
        let mut tokens = directive.split_ascii_whitespace();
        let Some(name) = tokens.next() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        if name == "report-uri" || name == "report-to" || name == "sandbox" {
            continue;
        }
        for source in tokens {
            if out.len() >= MAX_SOURCES {
                return out;
            }
            if let Some((host, wildcard)) = host_of(source) {
                out.push(CspHost {
                    directive: name.clone(),
                    source: source.to_owned(),
                    host,
                    wildcard,
                });
            }
        }
    }
    out
}

/// The host of a host-source expression: `[scheme://]host[:port][/path]`.
fn host_of(source: &str) -> Option<(String, bool)> {
    if source.starts_with('\'') || source == "*" {
        return None;
    }
    let rest = match source.split_once("://") {
        Some((_, r)) => r,
        None if source.ends_with(':') => return None, // a scheme source
        None => source,
    };
    let host = rest.split(['/', ':', '?', '#']).next()?;
    let (host, wildcard) = match host.strip_prefix("*.") {
        Some(h) => (h, true),
        None => (host, false),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty() && host.contains('.') && !host.contains('*')).then_some((host, wildcard))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_directives_and_sources() {
        let p = "default-src 'self'; script-src 'self' 'nonce-abc' https://*.facebook.net connect.facebook.net:443 https: data:; img-src * www.facebook.com/tr; report-uri https://report.example.com/csp";
        let got: Vec<(String, String, bool)> = hosts(p)
            .into_iter()
            .map(|h| (h.directive, h.host, h.wildcard))
            .collect();
        assert_eq!(
            got,
            vec![
                ("script-src".into(), "facebook.net".into(), true),
                ("script-src".into(), "connect.facebook.net".into(), false),
                ("img-src".into(), "www.facebook.com".into(), false),
            ]
        );
        assert!(hosts("").is_empty());
        assert!(hosts(";;; script-src").is_empty());
        assert!(hosts("script-src *.").is_empty());
    }
}
