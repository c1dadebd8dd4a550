//! Checks of `[csp_reports]`: the listen address, the site names, the body limit, the rate and
//! burst, and the TLS files (both or neither).

use std::path::Path;

use toml::Spanned;

use super::super::csp_reports::{
    CspReportsConfig, DEFAULT_CSP_BURST, DEFAULT_CSP_MAX_BODY, DEFAULT_CSP_RATE, MAX_CSP_SITES,
    RawCspReports,
};
use super::query_log::parse_size;
use super::{Ctx, parse_socket_addr};

fn rate(cx: &mut Ctx<'_>, key: &str, v: Option<&Spanned<f64>>, default: f32) -> f32 {
    let Some(v) = v else { return default };
    let n = *v.get_ref();
    if !(n.is_finite() && (0.1..=100_000.0).contains(&n)) {
        cx.spanned(
            v,
            format!("csp_reports.{key}: expected a number from 0.1 to 100000, got {n}"),
        );
        return default;
    }
    n as f32
}

/// `[csp_reports]`; `None` when unusable (errors recorded).
pub(super) fn csp_reports(
    cx: &mut Ctx<'_>,
    r: &RawCspReports,
    base: &Path,
) -> Option<CspReportsConfig> {
    let listen = parse_socket_addr(r.listen.get_ref());
    if listen.is_none() {
        cx.spanned(
            &r.listen,
            format!(
                "csp_reports.listen: expected \"IP:PORT\" such as \"0.0.0.0:8443\", got {:?}",
                r.listen.get_ref()
            ),
        );
    }
    if r.sites.len() > MAX_CSP_SITES {
        cx.spanned(
            &r.sites[MAX_CSP_SITES],
            format!("csp_reports.sites: at most {MAX_CSP_SITES} names"),
        );
    }
    let mut sites = Vec::new();
    for s in r.sites.iter().take(MAX_CSP_SITES) {
        let name = s
            .get_ref()
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            cx.spanned(
                s,
                format!(
                    "csp_reports.sites: expected a host name such as \"www.force.example\", got {:?}",
                    s.get_ref()
                ),
            );
        } else if name == "other" {
            cx.spanned(
                s,
                "csp_reports.sites: \"other\" is the label of every other site",
            );
        } else if !sites.contains(&name) {
            sites.push(name);
        }
    }
    let max_body = match &r.max_body {
        None => DEFAULT_CSP_MAX_BODY,
        Some(v) => match parse_size(v.get_ref()) {
            Some(n) if (1024..=1024 * 1024).contains(&n) => {
                usize::try_from(n).unwrap_or(DEFAULT_CSP_MAX_BODY)
            }
            _ => {
                cx.spanned(
                    v,
                    "csp_reports.max_body: expected a size from 1KiB to 1MiB, e.g. \"64KiB\"",
                );
                DEFAULT_CSP_MAX_BODY
            }
        },
    };
    let rate = rate(cx, "rate", r.rate.as_ref(), DEFAULT_CSP_RATE);
    let burst = rate_burst(cx, r, rate);
    let tls = match (&r.tls_cert, &r.tls_key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            if c.get_ref().trim().is_empty() || k.get_ref().trim().is_empty() {
                cx.spanned(c, "csp_reports.tls_cert / tls_key: expected PEM file paths");
                None
            } else {
                Some((base.join(c.get_ref()), base.join(k.get_ref())))
            }
        }
        (Some(v), None) | (None, Some(v)) => {
            cx.spanned(
                v,
                "csp_reports: tls_cert and tls_key go together (both PEM files), or neither for plain HTTP",
            );
            None
        }
    };
    Some(CspReportsConfig {
        listen: listen?,
        sites,
        max_body,
        rate,
        burst,
        tls,
    })
}

fn rate_burst(cx: &mut Ctx<'_>, r: &RawCspReports, rate: f32) -> f32 {
    let burst = self::rate(cx, "burst", r.burst.as_ref(), DEFAULT_CSP_BURST.max(rate));
    if burst < 1.0 {
        if let Some(b) = &r.burst {
            cx.spanned(b, "csp_reports.burst: expected at least 1");
        }
        return 1.0;
    }
    burst
}
