//! `pixelguard audit`: finds tracking pixels on the organisation's own web pages, before a
//! journalist does. A DNS filter on the staff network cannot stop the Meta Pixel on a public
//! rape-reporting form (it runs in visitors' browsers); the same catalogue can find it.
//!
//! Flow, one way: pages come from the [`crawl`] (same site, bounded, polite) or from saved
//! files ([`input`]: HTML, HAR) → [`extract`] parses each page (HTML parser, inline-script host
//! and snippet-signature scanners, CSP) → [`sensitive`] decides whether the page is sensitive →
//! [`classify`] attributes hosts to catalogue vendors, asks the configured zones' policy whether
//! pixelguard would block them, and rates each finding → [`uncloak`] resolves the first-party
//! hosts the pages use through the configured upstreams and reports CNAME-cloaked trackers →
//! [`report`] renders a table, JSON or SARIF, and [`verdict`] applies `--fail-on`.
//!
//! This module owns the command's options ([`AuditArgs`], [`Options`]), the page hand-off type
//! ([`PageInput`]) and the orchestration ([`audit`], [`run`]).

pub mod classify;
pub mod crawl;
pub mod extract;
pub mod input;
pub mod report;
pub mod sensitive;
pub mod uncloak;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::command::{AuditFailure, CommandError, Outcome};
use crate::config::{Config, ConfigSource};
use crate::snapshot::Snapshot;
use classify::{Draft, Known, PageFindings, registrable};
use crawl::CrawlOptions;
use extract::RefKind;
use report::{Evidence, PageReport, Report, Severity, Tool, UncloakStats};
use sensitive::Terms;

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

/// A page handed from the crawl or an input file to the analysis.
#[derive(Debug, Clone)]
pub struct PageInput {
    /// The URL relative references resolve against (a `file:` URL for saved HTML).
    pub url: Url,
    /// What the report shows: the URL, or the input file's path.
    pub location: String,
    /// `crawl`, `html` or `har`.
    pub source: &'static str,
    /// Link depth (crawl only).
    pub depth: Option<u32>,
    /// HTTP status.
    pub status: Option<u16>,
    /// `Content-Security-Policy` response header values.
    pub csp: Vec<String>,
    /// The HTML (possibly cut at `--max-body`); `None` when the fetch failed.
    pub body: Option<String>,
    /// True when the body was cut.
    pub truncated: bool,
    /// Why the page could not be fetched.
    pub error: Option<String>,
    /// Remarks for the report.
    pub notes: Vec<String>,
    /// Requests the browser made for this page (HAR).
    pub requests: Vec<Url>,
}

impl PageInput {
    /// An empty page at `url`.
    pub fn new(url: Url, location: String, source: &'static str) -> PageInput {
        PageInput {
            url,
            location,
            source,
            depth: None,
            status: None,
            csp: Vec::new(),
            body: None,
            truncated: false,
            error: None,
            notes: Vec::new(),
            requests: Vec::new(),
        }
    }
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
        })
    }
}

/// Why an audit could not run.
#[derive(Debug)]
pub enum AuditError {
    /// The catalogue is invalid (exit 1).
    Config(String),
    /// A bad input file (exit 2).
    Usage(String),
    /// Something else (exit 3).
    Runtime(String),
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditError::Config(s) | AuditError::Usage(s) | AuditError::Runtime(s) => f.write_str(s),
        }
    }
}

/// Shared, read-only analysis context.
struct Ctx {
    known: Known,
    snap: Snapshot,
    terms: Terms,
    site_domains: Vec<String>,
}

/// One page after analysis, before uncloaking.
struct Analysed {
    report: PageReport,
    drafts: Vec<Draft>,
    first_party: BTreeMap<String, Vec<Evidence>>,
}

fn analyse(ctx: &Ctx, page: PageInput) -> (Analysed, Vec<Url>) {
    let mut report = PageReport {
        url: page.location,
        source: page.source.to_owned(),
        depth: page.depth,
        status: page.status,
        title: None,
        sensitive: false,
        sensitive_reasons: Vec::new(),
        error: page.error,
        notes: page.notes,
        findings: Vec::new(),
    };
    let Some(body) = page.body else {
        return (
            Analysed {
                report,
                drafts: Vec::new(),
                first_party: BTreeMap::new(),
            },
            Vec::new(),
        );
    };
    let ex = extract::extract(&body, &page.url);
    let sens = sensitive::assess(&page.url, &ex, &ctx.terms);
    let mut pf = PageFindings::new(&ctx.known, &ctx.snap, &page.url, &ctx.site_domains);
    pf.add_extracted(&ex);
    for c in &page.csp {
        pf.add_csp(c, RefKind::CspHeader);
    }
    for r in &page.requests {
        pf.add_request(r);
    }
    let first_party = std::mem::take(&mut pf.first_party);
    let drafts = pf.into_drafts(Some(&body));
    report.title = ex.title;
    report.sensitive = sens.sensitive;
    report.sensitive_reasons = sens.reasons;
    (
        Analysed {
            report,
            drafts,
            first_party,
        },
        ex.links,
    )
}

fn finish(a: Analysed) -> PageReport {
    let Analysed {
        mut report, drafts, ..
    } = a;
    let sensitive = report.sensitive;
    let mut findings: Vec<_> = drafts.into_iter().map(|d| d.finish(sensitive)).collect();
    findings.sort_by(|x, y| {
        y.severity
            .cmp(&x.severity)
            .then_with(|| x.vendor_id.cmp(&y.vendor_id))
            .then_with(|| x.host.cmp(&y.host))
    });
    if report.source != "har" {
        let gtm: BTreeSet<&str> = findings
            .iter()
            .flat_map(|f| f.ids.iter())
            .filter(|i| i.kind == "gtm_container")
            .map(|i| i.id.as_str())
            .collect();
        if !gtm.is_empty() {
            let list: Vec<&str> = gtm.into_iter().collect();
            report.notes.push(format!(
                "tag manager container {} can load more tags at run time, which a scan of the HTML cannot see: review the container, or audit a HAR capture (--input FILE.har)",
                list.join(", ")
            ));
        }
    }
    report.findings = findings;
    report
}

/// Runs an audit: inputs first, then the crawl, then uncloaking. `config` supplies the
/// upstreams (uncloaking) and the zones (the policy shown per finding).
pub async fn audit(opts: &Options, config: Config) -> Result<Report, AuditError> {
    let known = Known::builtin().map_err(|e| AuditError::Config(e.to_string()))?;
    // Remote lists come from their last downloaded copy in state_dir (no download here).
    let supply = crate::lists::supply::ListSupply::new(&config.state_dir);
    let snap = Snapshot::build(config, None, Some(&supply));
    let ctx = Arc::new(Ctx {
        known,
        snap,
        terms: opts.terms.clone(),
        site_domains: opts.site_domains.clone(),
    });
    let mut analysed: Vec<Analysed> = Vec::new();
    for path in &opts.inputs {
        let pages = input::load(path, opts.crawl.max_body).map_err(AuditError::Usage)?;
        for p in pages {
            let c = ctx.clone();
            let (a, _) = tokio::task::spawn_blocking(move || analyse(&c, p))
                .await
                .map_err(|e| AuditError::Runtime(format!("analysis failed: {e}")))?;
            analysed.push(a);
        }
    }
    let mut crawl_stats = report::CrawlStats {
        max_pages: opts.crawl.max_pages,
        depth: opts.crawl.depth,
        ..report::CrawlStats::default()
    };
    if !opts.urls.is_empty() {
        let c = ctx.clone();
        let f: crawl::Analyze<Analysed> = Arc::new(move |p| analyse(&c, p));
        let (pages, stats) = crawl::crawl(&opts.urls, &opts.crawl, f)
            .await
            .map_err(AuditError::Runtime)?;
        analysed.extend(pages);
        crawl_stats = stats;
    }
    let uncloak_stats = uncloak_pages(opts, &ctx, &mut analysed).await;
    let mut report = Report {
        schema: report::SCHEMA,
        tool: Tool {
            name: "pixelguard",
            version: env!("CARGO_PKG_VERSION"),
        },
        start_urls: opts.urls.iter().map(Url::to_string).collect(),
        inputs: opts
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        site_domains: opts.site_domains.clone(),
        summary: report::Summary::default(),
        crawl: crawl_stats,
        uncloak: uncloak_stats,
        vendors: Vec::new(),
        pages: analysed.into_iter().map(finish).collect(),
    };
    report.tally();
    Ok(report)
}

async fn uncloak_pages(opts: &Options, ctx: &Ctx, analysed: &mut [Analysed]) -> UncloakStats {
    let mut stats = UncloakStats {
        upstreams: ctx
            .snap
            .upstreams
            .servers()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..UncloakStats::default()
    };
    if !opts.uncloak {
        stats.note = Some("off (--no-uncloak)".to_owned());
        return stats;
    }
    if opts.site_domains.is_empty() {
        stats.note = Some("off: no site domain (the start URL is an IP address or a single label; give --site-domain)".to_owned());
        return stats;
    }
    if stats.upstreams.is_empty() {
        stats.note = Some("off: no upstream resolver in the config".to_owned());
        return stats;
    }
    stats.enabled = true;
    let hosts: BTreeSet<String> = analysed
        .iter()
        .flat_map(|a| a.first_party.keys().cloned())
        .collect();
    if hosts.len() > uncloak::MAX_HOSTS {
        stats.note = Some(format!(
            "{} first-party hosts found; only the first {} were resolved",
            hosts.len(),
            uncloak::MAX_HOSTS
        ));
    }
    let resolutions = uncloak::resolve_all(
        &ctx.snap.upstreams,
        hosts.into_iter().collect(),
        opts.crawl.concurrency,
    )
    .await;
    stats.checked = resolutions.len();
    let mut by_host = BTreeMap::new();
    for r in resolutions {
        if let Some(e) = &r.error {
            stats.failed.push(format!("{}: {e}", r.host));
        }
        by_host.insert(r.host.clone(), r);
    }
    let mut cloaked: BTreeSet<String> = BTreeSet::new();
    for a in analysed.iter_mut() {
        for (host, evidence) in &a.first_party {
            let Some(r) = by_host.get(host) else { continue };
            if let Some(d) = classify::cloaked(&ctx.known, &ctx.snap, host, &r.chain, evidence) {
                cloaked.insert(host.clone());
                a.drafts.push(d);
            }
        }
    }
    stats.cloaked = cloaked.len();
    stats
}

/// What a finished audit comes to: [`CommandError::NothingAudited`] when no page could be
/// audited, [`Outcome::Findings`] when findings reach `fail_on`, else [`Outcome::Done`].
pub fn verdict(r: &Report, fail_on: FailOn) -> Result<Outcome, CommandError> {
    if r.summary.pages == r.summary.pages_failed {
        return Err(CommandError::NothingAudited);
    }
    let fail = match fail_on {
        FailOn::None => false,
        FailOn::Any => r.summary.findings > 0,
        FailOn::Sensitive => r.summary.worst == Some(Severity::Critical),
    };
    Ok(if fail {
        Outcome::Findings
    } else {
        Outcome::Done
    })
}

/// `pixelguard audit`: runs the audit, prints the report on stdout, returns its [`verdict`].
pub fn run(source: &ConfigSource, args: &AuditArgs) -> Result<Outcome, CommandError> {
    let opts = Options::from_args(args).map_err(|message| CommandError::Audit {
        kind: AuditFailure::Usage,
        message,
    })?;
    let config = source.load()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CommandError::Audit {
            kind: AuditFailure::Runtime,
            message: format!("cannot start the runtime: {e}"),
        })?;
    let report = rt.block_on(audit(&opts, config)).map_err(|e| {
        let kind = match &e {
            AuditError::Config(_) => AuditFailure::Catalogue,
            AuditError::Usage(_) => AuditFailure::Usage,
            AuditError::Runtime(_) => AuditFailure::Runtime,
        };
        CommandError::Audit {
            kind,
            message: e.to_string(),
        }
    })?;
    let out = match args.format {
        Format::Table => report::table(&report),
        Format::Json => report::json(&report) + "\n",
        Format::Sarif => {
            serde_json::to_string_pretty(&report::sarif(&report)).unwrap_or_default() + "\n"
        }
    };
    {
        use std::io::Write as _;
        // A closed pipe (`| head`) ends the output quietly.
        let _ = std::io::stdout().write_all(out.as_bytes());
    }
    verdict(&report, args.fail_on)
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
