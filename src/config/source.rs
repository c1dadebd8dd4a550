//! Where a config comes from: a file or the embedded default ([`ConfigSource`]), with the
//! command-line [`Overrides`] on top, and the loader that reads, parses and validates it.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError, ConfigErrors, EMBEDDED_DEFAULT, validate};

/// Overrides from the command line, applied on top of the file (for trials and benchmarks).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replace `server.listen`.
    pub listen: Vec<String>,
    /// Replace `upstream.servers`.
    pub upstream: Vec<String>,
    /// Extra block lists (files); a zone `cli` covering every client blocks them.
    pub block: Vec<PathBuf>,
}

/// Where the config comes from, for the commands and for reloads.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file, or `None` for the embedded default.
    pub path: Option<PathBuf>,
    /// Command-line overrides.
    pub overrides: Overrides,
}

impl ConfigSource {
    /// Loads and validates the config.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        match &self.path {
            Some(p) => Config::load(p, &self.overrides),
            None => Config::embedded(&self.overrides),
        }
    }
}

impl Config {
    /// Loads and validates a config file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            }])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_str(&text, &path.display().to_string(), &base, overrides)
    }

    /// The embedded default config.
    pub fn embedded(overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let base = std::env::current_dir().unwrap_or_default();
        Self::from_str(EMBEDDED_DEFAULT, "<embedded default>", &base, overrides)
    }

    /// Parses and validates config text; `file` names it in errors, `base` resolves relative paths.
    pub fn from_str(
        text: &str,
        file: &str,
        base: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigErrors> {
        validate::validate(text, file, base, overrides)
    }
}
