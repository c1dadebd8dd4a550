//! What a command (`check`, `lists`, `explain`, `audit`, `report`, `pseudonym`) hands back to `main.rs`: an [`Outcome`]
//! when it ran to the end, a [`CommandError`] when it could not. Commands print their reports
//! on stdout; `main.rs` alone prints the error and maps both to the documented exit codes.

use crate::config::ConfigErrors;

/// How a command that ran to the end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; nothing to flag (exit 0).
    Done,
    /// `audit` found trackers at the `--fail-on` level (exit 4).
    Findings,
}

/// Why a command failed. `Display` is the message for stderr.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The config does not load or validate (exit 1).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// `lists update` left these remote lists without any content (exit 1); the per-list report
    /// on stdout already says why.
    #[error("remote list(s) without content: {}", .0.join(", "))]
    ListsWithoutContent(Vec<String>),
    /// `explain`: not a DNS query type (exit 2).
    #[error("unknown query type {0:?}")]
    UnknownQueryType(String),
    /// The async runtime could not be built (exit 3).
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `audit` could not run (exit by [`AuditFailure`]: 1, 2 or 3).
    #[error("pixelguard audit: {message}")]
    Audit {
        /// Which kind of failure (the exit code).
        kind: AuditFailure,
        /// What went wrong.
        message: String,
    },
    /// `catalogue check`: a catalogue or list file that cannot be used, or a bad `--today`
    /// (exit 2).
    #[error("pixelguard catalogue check: {0}")]
    Catalogue(String),
    /// `audit` ran, but no page could be audited (exit 3); the report on stdout says why.
    #[error("pixelguard audit: no page could be audited")]
    NothingAudited,
    /// `report`: a bad period or no query log to read (exit 2).
    #[error("pixelguard report: {0}")]
    Report(String),
    /// `report`: the log could not be read or the report not written (exit 3).
    #[error("pixelguard report: {0}")]
    ReportOutput(String),
    /// `pseudonym` refused: no reason, a bad address, no key (exit 2); nothing was printed.
    #[error("pixelguard pseudonym: refused: {0}")]
    PseudonymRefused(String),
    /// `pseudonym`: the audit line could not be written, so no pseudonym was printed (exit 3).
    #[error(
        "pixelguard pseudonym: refused: cannot write the audit line ({0}); no pseudonym printed"
    )]
    PseudonymAudit(String),
}

/// The kind of an `audit` failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFailure {
    /// The catalogue is invalid (exit 1).
    Catalogue,
    /// Bad arguments or input files (exit 2).
    Usage,
    /// Something else: no runtime, no network (exit 3).
    Runtime,
}

impl CommandError {
    /// True when the command's own output already told the user (nothing more for stderr).
    pub fn already_reported(&self) -> bool {
        matches!(self, Self::ListsWithoutContent(_) | Self::NothingAudited)
    }
}

/// The query-log pseudonym key could neither be read nor created.
#[derive(Debug, thiserror::Error)]
#[error("{}: query_log key: {source}", path.display())]
pub struct QueryLogKeyError {
    /// The key file.
    pub path: std::path::PathBuf,
    /// Why it failed.
    #[source]
    pub source: std::io::Error,
}

/// Why a reload (or rebuild) did not happen; the running snapshot stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config does not load or validate.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The new config's query-log key.
    #[error(transparent)]
    QueryLogKey(#[from] QueryLogKeyError),
    /// Building the new snapshot failed (the builder panicked).
    #[error("building the new snapshot: {0}")]
    Snapshot(#[source] tokio::task::JoinError),
}

impl ReloadError {
    /// One message per problem (a config error: one per located error).
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Config(e) => e.0.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}
