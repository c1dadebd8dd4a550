//! The command line of `pixelguard audit`: its options ([`AuditArgs`]), their parsers (sizes,
//! bounded durations, start URLs) and their validation into [`Options`].

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::classify::registrable;
use super::crawl::CrawlOptions;
use super::extract;
use super::sensitive::Terms;

/// Most start URLs and most input files.
pub const MAX_TARGETS: usize = 1_000;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    Table,
    /// JSON (schema `pixelguard.audit/1`).
    Json,
    /// SARIF 2.1.0 for code-scanning dashboards.
    Sarif,
}

/// Which findings make the command fail (exit code 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A tracker on a sensitive page (a critical finding).
    Sensitive,
    /// Any finding.
    Any,
    /// Never (report only).
    None,
}

/// `pixelguard audit` options.
#[derive(Debug, Clone, clap::Args)]
#[command(
    args_override_self = true,
    after_help = "Exit codes: 0 no findings at the --fail-on level; 4 findings at that level; 1 invalid config or catalogue; 2 usage error (bad option, unreadable --input or --terms); 3 nothing could be audited (every page failed).\n\
                  --config gives the upstream resolvers used for uncloaking and the zones whose policy the report shows; without it, the embedded default (system resolvers, the shipped catalogue)."
)]
pub struct AuditArgs {
    /// Start URLs (http or https; `https://` is assumed when no scheme is given).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// A saved page to audit offline: an .html file, or a .har capture saved with content
    /// (repeatable).
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Most pages fetched in all.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_pages: u32,
    /// Most link hops from a start URL (0: the start pages only).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=50))]
    pub depth: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit with code 4 on: a tracker on a sensitive page, any finding, or never.
    #[arg(long, value_enum, default_value_t = FailOn::Sensitive)]
    pub fail_on: FailOn,
    /// Most requests in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub concurrency: u32,
    /// Time allowed per page (headers and body); more than 0, at most 10m.
    #[arg(long, default_value = "15s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Least time between two request starts (politeness); at most 1m.
    #[arg(long, default_value = "100ms", value_parser = parse_delay)]
    pub delay: Duration,
    /// Most bytes read per page; longer pages are audited up to this size, with a note.
    #[arg(long, default_value = "5MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// Sensitive-page terms, one per line (`#` comments; a line `@defaults` keeps the built-in
    /// police and health terms). Replaces the built-in terms.
    #[arg(long, value_name = "FILE")]
    pub terms: Option<PathBuf>,
    /// A registrable domain of the organisation (repeatable): its hosts are first party and
    /// are checked for CNAME cloaking. Default: the start URLs' registrable domains.
    #[arg(long = "site-domain", value_name = "DOMAIN")]
    pub site_domains: Vec<String>,
    /// Do not resolve first-party hosts (no DNS traffic; no cloaking check).
    #[arg(long)]
    pub no_uncloak: bool,
    /// Print a Content-Security-Policy for the crawled site (header, nginx, Apache and
    /// Report-Only forms, each allowed source explained) instead of the report; with
    /// `--format json`, as JSON. Exit code 0 unless nothing could be audited.
    #[arg(long)]
    pub csp: bool,
    /// With `--csp`: the report endpoint (`report-uri` and `report-to`), e.g.
    /// `https://dns.force.example:8443/csp-report`.
    #[arg(long, value_name = "URL", requires = "csp", value_parser = parse_report_uri)]
    pub report_uri: Option<Url>,
    /// With `--csp`: a catalogue vendor id the organisation keeps on ordinary pages
    /// (repeatable, e.g. `linkedin` on recruitment pages); never allowed on sensitive pages.
    #[arg(long = "csp-allow", value_name = "VENDOR", requires = "csp")]
    pub csp_allow: Vec<String>,
    /// A previous JSON report (`--format json`): print only what changed and exit 4 when a
    /// tracker appears on a page where it was not before (a new vendor, a new pixel ID, or an old
    /// tracker on a page now found sensitive).
    #[arg(long, value_name = "FILE", conflicts_with = "csp")]
    pub baseline: Option<PathBuf>,
    /// Also write the JSON report to FILE (e.g. the next `--baseline`, once reviewed).
    #[arg(long, value_name = "FILE")]
    pub write_report: Option<PathBuf>,
}

/// `--csp-allow`: catalogue vendor ids.
fn csp_allow(given: &[String]) -> Result<Vec<String>, String> {
    if given.is_empty() {
        return Ok(Vec::new());
    }
    let cat = crate::lists::catalogue::Catalogue::builtin().map_err(|e| e.to_string())?;
    given
        .iter()
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            if cat.vendors.iter().any(|x| x.id == v) {
                Ok(v)
            } else {
                Err(format!(
                    "--csp-allow {v:?}: not a catalogue vendor id (see `pixelguard catalogue`: meta, google, linkedin, ...)"
                ))
            }
        })
        .collect()
}

/// `--report-uri`: an absolute http(s) URL.
fn parse_report_uri(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{s:?}: expected an http or https URL"));
    }
    if u.as_str().contains([';', ',', '"', ' ']) {
        return Err(format!(
            "{s:?}: a report URL cannot hold ';', ',', '\"' or spaces"
        ));
    }
    Ok(u)
}

/// `--timeout`: more than 0, at most 10 minutes (no `Instant` overflow, no endless page).
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s, Duration::from_secs(600), "10m")?;
    if d.is_zero() {
        return Err("must be more than 0".to_owned());
    }
    Ok(d)
}

/// `--delay`: at most one minute.
fn parse_delay(s: &str) -> Result<Duration, String> {
    parse_duration(s, Duration::from_secs(60), "1m")
}

fn parse_duration(s: &str, max: Duration, max_text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d > max {
        return Err(format!("at most {max_text}, got {}", s.trim()));
    }
    Ok(d)
}

/// A size: a number with an optional unit (`k`/`KiB`/`KB` = 1024, `m`/`MiB`/`MB` = 1024²).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("unknown size unit in {s:?} (use KiB or MiB)")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))?;
    if !(1024..=1024 * 1024 * 1024).contains(&v) {
        return Err("must be between 1 KiB and 1 GiB".to_owned());
    }
    Ok(v)
}

/// Validated options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Start URLs.
    pub urls: Vec<Url>,
    /// Input files.
    pub inputs: Vec<PathBuf>,
    /// Crawl limits.
    pub crawl: CrawlOptions,
    /// Sensitive-page terms.
    pub terms: Terms,
    /// First-party registrable domains.
    pub site_domains: Vec<String>,
    /// Whether to resolve first-party hosts.
    pub uncloak: bool,
    /// `--csp-allow`: vendors kept on ordinary pages.
    pub csp_allow: Vec<String>,
}

fn parse_start(raw: &str) -> Result<Url, String> {
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    let u = Url::parse(&with_scheme).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{raw:?}: only http and https URLs can be crawled"));
    }
    Ok(u)
}

impl Options {
    /// Validates the command line.
    pub fn from_args(a: &AuditArgs) -> Result<Options, String> {
        if a.urls.is_empty() && a.inputs.is_empty() {
            return Err("give at least one URL or --input FILE".to_owned());
        }
        if a.urls.len() > MAX_TARGETS || a.inputs.len() > MAX_TARGETS {
            return Err(format!(
                "at most {MAX_TARGETS} URLs and {MAX_TARGETS} input files"
            ));
        }
        let urls = a
            .urls
            .iter()
            .map(|u| parse_start(u))
            .collect::<Result<Vec<_>, _>>()?;
        let terms = match &a.terms {
            Some(p) => Terms::load(p)?,
            None => Terms::defaults(),
        };
        let mut site_domains: Vec<String> = Vec::new();
        for d in &a.site_domains {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() || !extract::script::plausible_host(&d) {
                return Err(format!("--site-domain {d:?} is not a domain name"));
            }
            let r = registrable(&d);
            if !site_domains.contains(&r) {
                site_domains.push(r);
            }
        }
        if a.site_domains.is_empty() {
            for u in &urls {
                if let Some(url::Host::Domain(h)) = u.host()
                    && h.contains('.')
                {
                    let r = registrable(h);
                    if !site_domains.contains(&r) {
                        site_domains.push(r);
                    }
                }
            }
        }
        Ok(Options {
            urls,
            inputs: a.inputs.clone(),
            crawl: CrawlOptions {
                max_pages: a.max_pages as usize,
                depth: a.depth,
                concurrency: a.concurrency as usize,
                timeout: a.timeout,
                delay: a.delay,
                max_body: a.max_body,
            },
            terms,
            site_domains,
            uncloak: !a.no_uncloak,
            csp_allow: csp_allow(&a.csp_allow)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5MiB").unwrap(), 5 * 1024 * 1024);
        assert_eq!(parse_size("64k").unwrap(), 64 * 1024);
        assert_eq!(parse_size("2048").unwrap(), 2048);
        assert!(parse_size("10").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("2GiB").is_err());
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_timeout("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(
            parse_timeout("400000000000y"),
            Err("at most 10m, got 400000000000y".to_owned())
        );
        assert!(parse_timeout("0s").is_err());
        assert_eq!(parse_delay("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_delay("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_delay("61s"), Err("at most 1m, got 61s".to_owned()));
    }

    #[test]
    fn start_urls() {
        assert_eq!(
            parse_start("www.force.test").unwrap().as_str(),
            "https://www.force.test/"
        );
        assert!(parse_start("ftp://x.test/").is_err());
        assert!(parse_start("http://").is_err());
    }
}
