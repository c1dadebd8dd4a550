//! The raw (serde) shape of the governance keys: `[[exceptions]]` entries and the entries of a
//! zone's `block` (a list name, or a list on trial). Kept beside `raw` (which re-exports them) so
//! that file stays one screenful per section; `validate::exceptions` and `validate::zones` check
//! them.

use serde::Deserialize;
use toml::Spanned;

/// One `[[exceptions]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawException {
    /// Zones it applies in.
    #[serde(default)]
    pub zones: Vec<Spanned<String>>,
    /// Catalogue vendor ids.
    #[serde(default)]
    pub vendors: Vec<Spanned<String>>,
    /// Names (and their subdomains).
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
    /// Required: a date (end of that day, UTC) or an RFC 3339 time.
    #[serde(default)]
    pub until: Option<Spanned<String>>,
    /// Required: why.
    #[serde(default)]
    pub reason: Option<Spanned<String>>,
    /// The ticket (it labels the exception's hits).
    #[serde(default)]
    pub ticket: Option<Spanned<String>>,
}

/// One entry of a zone's `block`: a list name, or `{ list = "NAME", mode = "log" }` (a trial).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBlockEntry {
    /// `"NAME"`: the list blocks.
    Name(String),
    /// `{ list = "NAME", mode = "log" | "enforce" }`.
    Table {
        /// The list.
        list: String,
        /// `log`: a trial (would-block only); `enforce`: the same as a plain name.
        mode: String,
    },
}
