//! Command-line interface (clap): `run` (default), `check`, `explain`, `report`, `pseudonym`,
//! and the quick overrides
//! for trials and benchmarks.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit codes, documented in `--help`; `main.rs` alone maps command results to them.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// The config (or a list) is invalid.
    pub const CONFIG: i32 = 1;
    /// Usage error (clap's own code).
    pub const USAGE: i32 = 2;
    /// Runtime failure (e.g. a listen address in use).
    pub const RUNTIME: i32 = 3;
    /// `audit` found trackers at the `--fail-on` level.
    pub const FINDINGS: i32 = 4;
}

/// pixelguard: a DNS-level privacy filter for organisations.
#[derive(Debug, Parser)]
#[command(
    name = "pixelguard",
    version,
    about = "A DNS-level privacy filter: resolves normally, refuses or logs lookups of tracking domains per network zone.",
    after_help = "Exit codes: 0 success; 1 invalid config or list; 2 usage error; 3 runtime failure (e.g. address in use); 4 audit findings at the --fail-on level.\n\
                  Without --config, pixelguard runs its embedded default: 127.0.0.1:5353 and [::1]:5353, forwarding to /etc/resolv.conf, blocking the shipped tracker catalogue."
)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the default `run` command.
    #[command(flatten)]
    pub common: Common,
}

/// Options every command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// Config file (TOML). Without it, the embedded default is used.
    #[arg(long, short = 'c', global = true)]
    pub config: Option<PathBuf>,
    /// Listen address, replacing server.listen (repeatable).
    #[arg(long, value_name = "ADDR", global = true)]
    pub listen: Vec<String>,
    /// Upstream, replacing upstream.servers (repeatable).
    #[arg(long, value_name = "ADDR", global = true)]
    pub upstream: Vec<String>,
    /// Block list file for every client (repeatable; adds a zone covering all addresses).
    #[arg(long, value_name = "FILE", global = true)]
    pub block: Vec<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the resolver (the default).
    Run,
    /// Load the config and every list, print a summary, exit 0 if valid, 1 otherwise.
    Check,
    /// Explain what a client would get for a name, and why.
    Explain {
        /// The client address.
        #[arg(long)]
        client: IpAddr,
        /// The query name.
        name: String,
        /// The query type.
        #[arg(default_value = "A")]
        qtype: String,
        /// Also resolve the name through the configured upstream and check the answer's
        /// CNAME / HTTPS / SVCB targets (CNAME uncloaking), as the daemon would.
        #[arg(long)]
        resolve: bool,
    },
    /// Manage list sources.
    Lists {
        /// What to do.
        #[command(subcommand)]
        action: ListsAction,
    },
    /// Find tracking pixels on the organisation's own web pages (crawl, or saved HTML / HAR).
    Audit(Box<crate::audit::AuditArgs>),
    /// Report on the query log for a period: per zone × vendor × outcome counts, new vendors,
    /// top names, exceptions, lists' health (default: the last 30 days, Markdown).
    Report(crate::report::ReportArgs),
    /// Print the query-log pseudonym of client addresses (audited: needs --reason).
    Pseudonym(crate::reidentify::PseudonymArgs),
    /// Work with the tracker catalogue.
    Catalogue {
        /// What to do.
        #[command(subcommand)]
        action: CatalogueAction,
    },
}

/// `pixelguard catalogue ...`.
#[derive(Debug, Subcommand)]
pub enum CatalogueAction {
    /// Report catalogue hosts that ownership lists give to another owner, tracker domains of
    /// catalogue vendors missing from the catalogue, and vendors with old or undated sources.
    Check {
        /// A Disconnect services.json or Tracker Radar JSON file (repeatable).
        #[arg(long, value_name = "FILE")]
        against: Vec<PathBuf>,
        /// Check this catalogue file instead of the built-in one.
        #[arg(long, value_name = "FILE")]
        catalogue: Option<PathBuf>,
        /// A vendor is stale when its newest dated source is older than this.
        #[arg(long, default_value_t = 365)]
        max_age_days: u32,
        /// Today's date, YYYY-MM-DD (default: the system clock).
        #[arg(long, value_name = "DATE")]
        today: Option<String>,
    },
}

/// `pixelguard lists ...`.
#[derive(Debug, Subcommand)]
pub enum ListsAction {
    /// Download every remote list once into state_dir and report per list (cron, offline prep).
    Update,
    /// Show every list's entries, source, last success, last failure and staleness.
    Status,
}
