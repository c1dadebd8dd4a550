//! The typed `[query_log]` section: what is recorded ([`RecordMode`]), how clients appear
//! ([`ClientMode`]), and where the file, its key and its rotation limits are.

use std::path::PathBuf;
use std::time::Duration;

use super::Secret;

/// Which answers the query log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    /// Policy hits only: blocked and would-block.
    Policy,
    /// Every answer.
    All,
    /// Nothing.
    None,
}

impl RecordMode {
    /// The config keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::All => "all",
            Self::None => "none",
        }
    }
}

/// How the query log (and the admin API's top clients) identify a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// A keyed hash of the address: the same client gives the same pseudonym until the key
    /// changes.
    Hash,
    /// The address with its host part zeroed: /24 for IPv4, /56 for IPv6.
    Masked,
    /// The address itself (opt-in).
    Full,
    /// Nothing.
    None,
}

impl ClientMode {
    /// The config keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::Masked => "masked",
            Self::Full => "full",
            Self::None => "none",
        }
    }
}

/// `[query_log]`.
#[derive(Debug, Clone)]
pub struct QueryLogConfig {
    /// The JSON-lines file (absolute after validation).
    pub path: PathBuf,
    /// What is recorded (zones may override).
    pub record: RecordMode,
    /// How clients appear (zones may override).
    pub client: ClientMode,
    /// The pseudonym key from the config, if given there.
    pub key: Option<Secret>,
    /// Where the generated key is kept when `key` is not given (default
    /// `state_dir/query-log.key`).
    pub key_file: PathBuf,
    /// Rotate when the file would grow beyond this many bytes.
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: usize,
    /// Upper bound on an entry's age; `0` = unbounded.
    pub max_age: Duration,
    /// Entries waiting for the writer.
    pub buffer: usize,
}
