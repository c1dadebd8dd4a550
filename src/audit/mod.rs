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

mod args;
pub mod baseline;
pub mod classify;
pub mod crawl;
pub mod csp;
pub mod extract;
pub mod input;
pub mod report;
pub mod sensitive;
pub mod uncloak;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use url::Url;

use crate::command::{AuditFailure, CommandError, Outcome};
use crate::config::{Config, ConfigSource};
use crate::snapshot::Snapshot;
use classify::{Draft, Known, PageFindings};
use extract::RefKind;
use report::{Evidence, PageReport, Report, Severity, Tool, UncloakStats};
use sensitive::Terms;

pub use args::{AuditArgs, FailOn, Format, MAX_TARGETS, Options, parse_size};

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
    loads: csp::PageUse,
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
                loads: csp::PageUse::default(),
            },
            Vec::new(),
        );
    };
    let ex = extract::extract(&body, &page.url);
    let loads = csp::PageUse::new(&page.url, &ex);
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
            loads,
        },
        ex.links,
    )
}

fn finish(a: Analysed, keep: &[String]) -> (PageReport, csp::PageCsp) {
    let Analysed {
        mut report,
        drafts,
        loads,
        ..
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
    let policy = csp::PageCsp::decide(loads, &report, keep);
    (report, policy)
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
        pages: Vec::new(),
        csp: Vec::new(),
    };
    for a in analysed {
        let (page, policy) = finish(a, &opts.csp_allow);
        report.pages.push(page);
        report.csp.push(policy);
    }
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

/// `pixelguard audit`: runs the audit, prints the report (or, with `--csp`, the policies; with
/// `--baseline`, the differences) on stdout, returns its [`verdict`].
pub fn run(source: &ConfigSource, args: &AuditArgs) -> Result<Outcome, CommandError> {
    let usage = |message: String| CommandError::Audit {
        kind: AuditFailure::Usage,
        message,
    };
    let opts = Options::from_args(args).map_err(usage)?;
    let baseline = match &args.baseline {
        Some(p) => Some(baseline::Baseline::load(p).map_err(usage)?),
        None => None,
    };
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
    if let Some(path) = &args.write_report {
        write_report(path, &report).map_err(|message| CommandError::Audit {
            kind: AuditFailure::Runtime,
            message,
        })?;
    }
    let json = args.format == Format::Json;
    let (out, outcome) = if args.csp {
        let doc = csp::build(&report, &report.csp, args.report_uri.as_ref());
        let out = if json {
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
        } else {
            csp::text(&doc)
        };
        (out, verdict(&report, FailOn::None)?)
    } else if let Some(b) = &baseline {
        let d = baseline::diff(b, &report);
        let out = if json {
            serde_json::to_string_pretty(&d).unwrap_or_default() + "\n"
        } else {
            baseline::text(&d)
        };
        verdict(&report, FailOn::None)?;
        let outcome = if d.alerts.is_empty() {
            Outcome::Done
        } else {
            Outcome::Findings
        };
        (out, outcome)
    } else {
        let out = match args.format {
            Format::Table => report::table(&report),
            Format::Json => report::json(&report) + "\n",
            Format::Sarif => {
                serde_json::to_string_pretty(&report::sarif(&report)).unwrap_or_default() + "\n"
            }
        };
        (out, verdict(&report, args.fail_on)?)
    };
    {
        use std::io::Write as _;
        // A closed pipe (`| head`) ends the output quietly.
        let _ = std::io::stdout().write_all(out.as_bytes());
    }
    Ok(outcome)
}

/// `--write-report`: the JSON report, written to a temporary file and renamed into place (a
/// reader never sees half a report).
fn write_report(path: &std::path::Path, report: &Report) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, report::json(report) + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("--write-report {}: {e}", path.display()))
}
