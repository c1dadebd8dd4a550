//! `pixelguard report`: turns the query log (the live file and its rotated copies) into the
//! figures a data-protection officer asks for: per zone × vendor × outcome counts, vendors seen
//! for the first time, the top names per vendor, exceptions in force or expired, the lists'
//! health, and how much of the log was read.
//!
//! The command streams every file once ([`read`]), folds each line into a bounded [`tally`]
//! (memory depends on zones × vendors × a capped number of names, never on the log's size),
//! adds what the config and `state_dir` say ([`health`]), and renders Markdown, CSV or JSON
//! ([`render`]). Client pseudonyms appear only with `--clients`.
//!
//! `--monthly` is what the systemd timer runs: the previous calendar month (UTC), written to
//! `state_dir/reports/pixelguard-YYYY-MM.md` and `.json`.

mod health;
mod period;
mod read;
mod render;
mod tally;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, ValueEnum};

use crate::command::CommandError;
use crate::config::{Config, ConfigSource};

pub use health::{ExceptionRow, ListHealth};
pub use period::{Period, parse_bound};
pub use tally::{Counts, Report};

/// Names listed per vendor in "top names" (and clients with `--clients`).
pub const TOP_N: usize = 10;
/// Distinct names (or clients) counted exactly per vendor; beyond it, further names are counted
/// in the vendor's `unranked` figure (memory bound: vendors × this).
pub const NAMES_CAP: usize = 10_000;
/// Longest query-log line read; a longer one is skipped and counted as malformed.
pub const MAX_LINE: usize = 64 * 1024;
/// Days covered when neither `--from` nor `--monthly` is given.
pub const DEFAULT_DAYS: u64 = 30;

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Markdown, for people.
    Md,
    /// CSV: one row per zone × vendor × outcome.
    Csv,
    /// JSON, for machines.
    Json,
}

/// `pixelguard report ...`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Start of the period: YYYY-MM-DD (00:00 UTC) or an RFC 3339 time (default: 30 days
    /// before --to).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// End of the period: YYYY-MM-DD (that whole day, UTC, included) or an RFC 3339 time
    /// (excluded) (default: now).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// Write the report to this file (mode 0640) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Include client pseudonyms (the top clients per vendor, as the query log writes them).
    #[arg(long)]
    pub clients: bool,
    /// The previous calendar month (UTC), written to state_dir/reports/pixelguard-YYYY-MM.md
    /// and .json (what the systemd timer runs).
    #[arg(long, conflicts_with_all = ["from", "to", "out", "format"])]
    pub monthly: bool,
}

/// Runs `pixelguard report`.
pub fn run(source: &ConfigSource, args: &ReportArgs) -> Result<(), CommandError> {
    let config = source.load()?;
    let now = SystemTime::now();
    if args.monthly {
        let (period, month) = period::previous_month(now).map_err(CommandError::Report)?;
        let report = build(&config, &period, args.clients, now)?;
        let dir = config.state_dir.join("reports");
        std::fs::create_dir_all(&dir)
            .map_err(|e| CommandError::ReportOutput(format!("{}: {e}", dir.display())))?;
        for (format, ext) in [(Format::Md, "md"), (Format::Json, "json")] {
            let path = dir.join(format!("pixelguard-{month}.{ext}"));
            write_file(&path, &render::render(&report, format))?;
            println!("{}", path.display());
        }
        return Ok(());
    }
    let period = Period::from_args(args.from.as_deref(), args.to.as_deref(), now)
        .map_err(CommandError::Report)?;
    let report = build(&config, &period, args.clients, now)?;
    let text = render::render(&report, args.format);
    match &args.out {
        Some(path) => write_file(path, &text),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CommandError::ReportOutput(format!("standard output: {e}")))
        }
    }
}

/// Builds the report of `period` from the config's query log and state.
pub fn build(
    config: &Config,
    period: &Period,
    clients: bool,
    now: SystemTime,
) -> Result<Report, CommandError> {
    let Some(ql) = &config.query_log else {
        return Err(CommandError::Report(format!(
            "{}: no [query_log] section: there is no query log to report on",
            config.origin
        )));
    };
    let mut tally = tally::Tally::new(period.clone(), clients);
    let files = read::log_files(&ql.path)
        .map_err(|e| CommandError::ReportOutput(format!("{}: {e}", ql.path.display())))?;
    for file in &files {
        read::read_file(file, &mut tally)
            .map_err(|e| CommandError::ReportOutput(format!("{}: {e}", file.display())))?;
    }
    let exceptions = health::exception_rows(config);
    let lists = health::list_health(config, now);
    Ok(tally.finish(&files, exceptions, lists, now))
}

/// Writes `text` to `path` (created mode 0640, or truncated).
fn write_file(path: &Path, text: &str) -> Result<(), CommandError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| CommandError::ReportOutput(format!("{}: {e}", path.display())))
}
