//! Parsing CSP violation reports, both shapes browsers send: the legacy `report-uri` body
//! (`application/csp-report`: `{"csp-report": {"document-uri": …, "blocked-uri": …}}`) and the
//! Reporting API's (`application/reports+json`: an array of `{"type": "csp-violation", "body":
//! {"documentURL": …, "blockedURL": …}}`). Only what counting needs is kept: the document's host
//! and path (never its query string), the blocked load's host (or `inline` / `eval`), the
//! directive and the disposition. Nothing here keeps a full URL.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

/// Most violations taken from one body.
pub const MAX_REPORTS_PER_BODY: usize = 100;

/// What was blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// A load from this host (lower case).
    Host(String),
    /// An inline script, style or event handler.
    Inline,
    /// `eval` and friends.
    Eval,
    /// Anything else (`data`, `blob`, an empty or unreadable value).
    Other,
}

/// One violation, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The document's host (lower case), when its URL parses.
    pub site: Option<String>,
    /// The document's path, without query string or fragment.
    pub path: String,
    /// What was blocked.
    pub blocked: Blocked,
    /// The effective (or violated) directive, e.g. `script-src-elem`.
    pub directive: String,
    /// True for a `Content-Security-Policy-Report-Only` report (nothing was blocked).
    pub report_only: bool,
    /// The first characters of a blocked inline script (`'report-sample'`), at most
    /// [`MAX_SAMPLE`]: only matched against tracker snippet markers, never kept.
    pub sample: String,
}

/// Longest sample kept for matching (browsers send at most 40 characters).
pub const MAX_SAMPLE: usize = 80;

/// Why a body could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or not a report of either shape.
    Unparseable,
}

#[derive(Deserialize)]
struct Legacy {
    #[serde(rename = "csp-report")]
    report: LegacyBody,
}

#[derive(Deserialize)]
struct LegacyBody {
    #[serde(rename = "document-uri", default)]
    document_uri: String,
    #[serde(rename = "blocked-uri", default)]
    blocked_uri: String,
    #[serde(rename = "effective-directive", default)]
    effective_directive: String,
    #[serde(rename = "violated-directive", default)]
    violated_directive: String,
    #[serde(default)]
    disposition: String,
    #[serde(rename = "script-sample", default)]
    sample: String,
}

#[derive(Deserialize)]
struct ApiReport {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    body: Option<ApiBody>,
}

#[derive(Deserialize)]
struct ApiBody {
    #[serde(rename = "documentURL", default)]
    document_url: String,
    #[serde(rename = "blockedURL", default)]
    blocked_url: String,
    #[serde(rename = "effectiveDirective", default)]
    effective_directive: String,
    #[serde(default)]
    disposition: String,
    #[serde(default)]
    sample: String,
}

fn blocked(raw: &str) -> Blocked {
    let t = raw.trim();
    match t.to_ascii_lowercase().as_str() {
        "inline" => return Blocked::Inline,
        "eval" | "wasm-eval" => return Blocked::Eval,
        _ => {}
    }
    match Url::parse(t) {
        Ok(u) => match u.host_str() {
            Some(h) if matches!(u.scheme(), "http" | "https" | "ws" | "wss") => {
                Blocked::Host(h.trim_end_matches('.').to_ascii_lowercase())
            }
            _ => Blocked::Other,
        },
        Err(_) => Blocked::Other,
    }
}

fn violation(
    document: &str,
    blocked_raw: &str,
    directive: &str,
    disposition: &str,
    sample: &str,
) -> Violation {
    let (site, path) = match Url::parse(document.trim()) {
        Ok(u) => (
            u.host_str()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase()),
            u.path().to_owned(),
        ),
        Err(_) => (None, String::new()),
    };
    // Directives are keywords: keep them short and plain.
    let directive: String = directive
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    Violation {
        site,
        path,
        blocked: blocked(blocked_raw),
        directive,
        report_only: disposition.eq_ignore_ascii_case("report"),
        sample: sample.chars().take(MAX_SAMPLE).collect(),
    }
}

/// Parses a body by its media type (`application/csp-report`, `application/reports+json`, or
/// `application/json` with either shape).
pub fn parse(body: &[u8]) -> Result<Vec<Violation>, ParseError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ParseError::Unparseable)?;
    if v.get("csp-report").is_some() {
        let l: Legacy = serde_json::from_value(v).map_err(|_| ParseError::Unparseable)?;
        let r = l.report;
        let directive = if r.effective_directive.is_empty() {
            &r.violated_directive
        } else {
            &r.effective_directive
        };
        return Ok(vec![violation(
            &r.document_uri,
            &r.blocked_uri,
            directive,
            &r.disposition,
            &r.sample,
        )]);
    }
    let Value::Array(items) = v else {
        return Err(ParseError::Unparseable);
    };
    let mut out = Vec::new();
    for item in items.into_iter().take(MAX_REPORTS_PER_BODY) {
        let Ok(r) = serde_json::from_value::<ApiReport>(item) else {
            return Err(ParseError::Unparseable);
        };
        if r.kind != "csp-violation" {
            continue;
        }
        let Some(b) = r.body else {
            return Err(ParseError::Unparseable);
        };
        out.push(violation(
            &b.document_url,
            &b.blocked_url,
            &b.effective_directive,
            &b.disposition,
            &b.sample,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn legacy_report() {
        let body = br#"{"csp-report":{"document-uri":"https://www.force.test/report?name=Jane#x","referrer":"","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"default-src 'self'","disposition":"enforce","blocked-uri":"https://connect.facebook.net/en_US/fbevents.js?id=1","status-code":200,"script-sample":""}}"#;
        let v = parse(body).unwrap();
        assert_eq!(
            v,
            vec![Violation {
                site: Some("www.force.test".into()),
                path: "/report".into(),
                blocked: Blocked::Host("connect.facebook.net".into()),
                directive: "script-src-elem".into(),
                report_only: false,
                sample: String::new(),
            }]
        );
    }

    #[test]
    fn reporting_api_reports() {
        let body = br#"[{"age":2,"type":"csp-violation","url":"https://www.force.test/","user_agent":"x","body":{"documentURL":"https://www.force.test/news?q=1","blockedURL":"inline","effectiveDirective":"script-src-elem","disposition":"report","sample":"!function(f,b,e,v,n,t,s)"}},{"type":"deprecation","body":{}}]"#;
        let v = parse(body).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].blocked, Blocked::Inline);
        assert_eq!(v[0].path, "/news");
        assert!(v[0].report_only);
    }

    #[test]
    fn garbage_is_unparseable() {
        for b in [
            &b"{"[..],
            b"null",
            b"{}",
            b"42",
            b"[{\"type\":\"csp-violation\"}]",
            b"\xff",
        ] {
            assert_eq!(parse(b), Err(ParseError::Unparseable), "{b:?}");
        }
        assert_eq!(blocked("data"), Blocked::Other);
        assert_eq!(blocked("eval"), Blocked::Eval);
    }
}
