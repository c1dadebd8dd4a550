//! Config errors: [`ConfigError`] (one problem, located at `file:line:column`), [`ConfigErrors`]
//! (every problem of one file), and the small typed errors of the value parsers that validation
//! turns into located messages.

use std::fmt;

/// A config problem, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or "<embedded default>").
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one file (validation keeps going to report them all at once).
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why an upstream server string (`upstream.servers`, `--upstream`) is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamSyntaxError {
    /// No scheme, and not an address.
    #[error("expected \"IP:PORT\" or \"IP\"")]
    NotAnAddress,
    /// A scheme other than `tls://` or `https://`.
    #[error("unknown scheme {0:?}; expected tls:// (DNS over TLS) or https:// (DNS over HTTPS)")]
    UnknownScheme(String),
    /// A host name (or garbage) where the IP address belongs.
    #[error(
        "expected an IP address (and port) after {scheme}://, such as \"9.9.9.9\" or \"[2620:fe::fe]:{default_port}\"; host names cannot be used (pixelguard would need a resolver to find its resolver)"
    )]
    NotAnIp {
        /// `tls` or `https`.
        scheme: String,
        /// The scheme's default port, for the example.
        default_port: u16,
    },
    /// `#` with nothing after it.
    #[error("empty TLS name after '#'")]
    EmptyTlsName,
    /// A TLS name that is not a DNS name.
    #[error("invalid TLS name {0:?} after '#'; expected a DNS name such as dns.quad9.net")]
    InvalidTlsName(String),
    /// A DoH path with a query or a space.
    #[error("invalid DoH path {0:?}")]
    InvalidDohPath(String),
}
