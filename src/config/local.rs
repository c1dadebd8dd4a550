//! The typed `[local]` section: which locally served zones pixelguard answers itself and never
//! forwards (the RFC 6303 reverse zones of private and special address ranges; the special-use
//! names and single-label A/AAAA). Both default on, so a config without the section gets them.

/// `[local]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalConfig {
    /// Answer the reverse zones of private and special ranges (RFC 6303, RFC 7793) locally.
    pub private_reverse: bool,
    /// Answer `localhost.`, `invalid.`, `local.`, `home.arpa.`, `internal.` and A / AAAA
    /// queries for single-label names locally.
    pub special_names: bool,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            private_reverse: true,
            special_names: true,
        }
    }
}

impl LocalConfig {
    /// Either switch is on (the chain stage has something to check).
    pub fn any(&self) -> bool {
        self.private_reverse || self.special_names
    }
}
