//! The `pixelguard` binary: parse the command line, set up logging, build the runtime, run the
//! chosen command, and map its result to the documented exit codes (the only place that does).

use std::process::ExitCode;

use clap::Parser;
use pixelguard::app::{App, StartError};
use pixelguard::cli::{CatalogueAction, Cli, Command, ListsAction, exit};
use pixelguard::command::{AuditFailure, CommandError, Outcome};
use pixelguard::config::{ConfigSource, Overrides};
use pixelguard::lists::catalogue::check::CheckOptions;

// mimalloc instead of glibc's malloc: a forwarded query allocates and frees a few dozen small
// blocks across threads (question, upstream message, cache entry, task), and glibc's arenas spent
// a tenth of the miss path's CPU in _int_malloc, consolidation and heap growth (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(level: Option<&str>) {
    // hickory's per-query INFO lines cost ~30% CPU (notes P2): keep them at warn unless asked.
    let default = format!(
        "{},hickory_server=warn,hickory_proto=warn,hickory_net=warn,hickory_resolver=error",
        level.unwrap_or("info")
    );
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Why the process ends unsuccessfully.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// A command (or the daemon's config or runtime) failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The daemon did not start, or stopped on its own.
    #[error("pixelguard: {0}")]
    Start(#[from] StartError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = ConfigSource {
        path: cli.common.config.clone(),
        overrides: Overrides {
            listen: cli.common.listen.clone(),
            upstream: cli.common.upstream.clone(),
            block: cli.common.block.clone(),
        },
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(source),
        Command::Check => done(pixelguard::check::check(&source)),
        Command::Lists { action } => done(pixelguard::check::lists(
            &source,
            matches!(action, ListsAction::Update),
        )),
        Command::Report(args) => done(pixelguard::report::run(&source, &args)),
        Command::Pseudonym(args) => done(pixelguard::reidentify::run(&source, &args)),
        Command::Audit(args) => pixelguard::audit::run(&source, &args).map_err(Failure::from),
        Command::Catalogue {
            action:
                CatalogueAction::Check {
                    against,
                    catalogue,
                    max_age_days,
                    today,
                },
        } => done(catalogue_check(
            catalogue.as_deref(),
            &CheckOptions {
                against,
                max_age_days,
                today,
            },
        )),
        Command::Explain {
            client,
            name,
            qtype,
            resolve,
        } => done(pixelguard::explain::explain(
            &source, client, &name, &qtype, resolve,
        )),
    };
    ExitCode::from(u8::try_from(exit_code(result)).unwrap_or(1))
}

/// `pixelguard catalogue check`: prints the report.
fn catalogue_check(
    catalogue: Option<&std::path::Path>,
    opts: &CheckOptions,
) -> Result<(), CommandError> {
    let report = pixelguard::lists::catalogue::check::run(catalogue, opts)
        .map_err(CommandError::Catalogue)?;
    print!("{report}");
    Ok(())
}

/// A command without findings: done when it did not fail.
fn done(r: Result<(), CommandError>) -> Result<Outcome, Failure> {
    r.map(|()| Outcome::Done).map_err(Failure::from)
}

/// Prints a failure and maps every result to its documented exit code.
fn exit_code(result: Result<Outcome, Failure>) -> i32 {
    let e = match result {
        Ok(Outcome::Done) => return exit::OK,
        Ok(Outcome::Findings) => return exit::FINDINGS,
        Err(e) => e,
    };
    if !matches!(&e, Failure::Command(c) if c.already_reported()) {
        eprintln!("{e}");
    }
    match e {
        Failure::Command(c) => match c {
            CommandError::Config(_) | CommandError::ListsWithoutContent(_) => exit::CONFIG,
            CommandError::UnknownQueryType(_)
            | CommandError::Catalogue(_)
            | CommandError::Report(_)
            | CommandError::PseudonymRefused(_) => exit::USAGE,
            CommandError::Runtime(_)
            | CommandError::NothingAudited
            | CommandError::ReportOutput(_)
            | CommandError::PseudonymAudit(_) => exit::RUNTIME,
            CommandError::Audit { kind, .. } => match kind {
                AuditFailure::Catalogue => exit::CONFIG,
                AuditFailure::Usage => exit::USAGE,
                AuditFailure::Runtime => exit::RUNTIME,
            },
        },
        Failure::Start(StartError::Config(_)) => exit::CONFIG,
        Failure::Start(_) => exit::RUNTIME,
    }
}

/// `pixelguard run`: serves until SIGTERM / SIGINT.
fn run(source: ConfigSource) -> Result<Outcome, Failure> {
    let config = source.load().map_err(CommandError::Config)?;
    init_logging(config.log_level.as_deref());
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if config.server.workers > 0 {
        rt.worker_threads(config.server.workers);
    }
    let rt = rt.build().map_err(CommandError::Runtime)?;
    rt.block_on(async move {
        let app = App::start(source).await?;
        app.run_until_signalled().await?;
        Ok(Outcome::Done)
    })
}
