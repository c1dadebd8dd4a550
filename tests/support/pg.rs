//! Starting a real pixelguard in-process for integration tests: a config written to a temp
//! folder (so relative list paths and file:line errors are real), listeners on 127.0.0.1 port 0.

use std::net::SocketAddr;
use std::path::PathBuf;

use pixelguard::app::{App, ConfigSource};
use pixelguard::config::Overrides;

/// A running pixelguard and the folder holding its config and lists.
pub struct Pg {
    /// The app (shut it down with `pg.app.shutdown().await` or just drop the runtime).
    pub app: App,
    /// Its UDP/TCP address.
    pub addr: SocketAddr,
    /// The temp folder (config, lists).
    pub dir: tempfile::TempDir,
}

impl Pg {
    /// Path of a file in the config folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `[server]` + `[upstream]` + `[admin]` (on a free loopback port, so parallel tests never fight
/// over the default 9153) for a test config.
pub fn base(upstreams: &[SocketAddr]) -> String {
    format!(
        "{}[admin]\nlisten = \"127.0.0.1:0\"\n\n",
        base_without_admin(upstreams)
    )
}

/// `[server]` + `[upstream]` only (tests that configure `[admin]` themselves).
pub fn base_without_admin(upstreams: &[SocketAddr]) -> String {
    let ups: Vec<String> = upstreams.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstream]\nservers = [{}]\ntimeout = \"400ms\"\ndeadline = \"1500ms\"\n\n",
        ups.join(", ")
    )
}

/// A config folder with `files` written into it, and the config text as pixelguard.toml.
pub fn folder(config: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write list");
    }
    std::fs::write(dir.path().join("pixelguard.toml"), config).expect("write config");
    dir
}

/// Starts pixelguard on a config text plus list files.
pub async fn start(config: &str, files: &[(&str, &str)]) -> Pg {
    let dir = folder(config, files);
    let app = App::start(ConfigSource {
        path: Some(dir.path().join("pixelguard.toml")),
        overrides: Overrides::default(),
    })
    .await
    .expect("pixelguard starts");
    let addr = app.addrs[0];
    Pg { app, addr, dir }
}
