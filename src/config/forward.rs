//! The typed `[forward.NAME]` sections: forward rules (conditional forwarding). A rule sends the
//! names under its domains to its own servers (the organisation's domain controllers, an
//! internal resolver) instead of `[upstream]`; the longest matching domain over all rules wins.
//! Validation (`validate::forward`) guarantees what the fields below promise.

use std::time::Duration;

use super::{Strategy, UpstreamServer};

/// Longest accepted rule name (it is a metric label value).
pub const MAX_FORWARD_NAME_LEN: usize = 32;
/// Most domains one rule may list.
pub const MAX_FORWARD_DOMAINS: usize = 1024;
/// Most rules in one config.
pub const MAX_FORWARD_RULES: usize = 256;
/// The group name of `[upstream]` in metrics and explain; reserved as a rule name.
pub const DEFAULT_GROUP: &str = "default";

/// One `[forward.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardRule {
    /// The rule's name: `[a-z0-9_-]`, at most [`MAX_FORWARD_NAME_LEN`] characters, never
    /// [`DEFAULT_GROUP`].
    pub name: String,
    /// Domains whose names (the domain itself and every name below it) go to `servers`: lower
    /// case, without the trailing dot, never the root; each in one rule only.
    pub domains: Vec<String>,
    /// Tried as `[upstream] servers` are (same syntax, same strategy choices); never empty.
    pub servers: Vec<UpstreamServer>,
    /// Per try; default `[upstream] timeout`.
    pub timeout: Duration,
    /// For all tries; default `[upstream] deadline`.
    pub deadline: Duration,
    /// How healthy servers are ordered; default `[upstream] strategy`.
    pub strategy: Strategy,
}
