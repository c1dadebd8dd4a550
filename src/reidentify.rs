//! `pixelguard pseudonym`: controlled re-identification. For each address given, prints
//! `ADDRESS PSEUDONYM` exactly as the query log writes that client (the config's key and the
//! client mode of the address's zone), so an authorised person can search the log, and first
//! appends who asked, when, why and for which addresses to `state_dir/pseudonym-audit.log`.
//!
//! The order is the safeguard: nothing is printed unless the audit line was written (and
//! synced), and nothing happens without a non-empty `--reason`. The audit file is created mode
//! 0600 and only ever opened for appending.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use serde::Serialize;

use crate::command::CommandError;
use crate::config::{ClientMode, Config, ConfigSource};
use crate::querylog::Pseudonymizer;
use crate::zones::ZoneTable;

/// The audit file, in `state_dir`.
pub const AUDIT_FILE: &str = "pseudonym-audit.log";

/// `pixelguard pseudonym ...`.
#[derive(Debug, Clone, Args)]
pub struct PseudonymArgs {
    /// Why (the authorisation, ticket or case); recorded in the audit file. Required.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The client addresses.
    #[arg(value_name = "IP", required = true)]
    pub addresses: Vec<String>,
}

/// One line of the audit file.
#[derive(Debug, Serialize)]
struct AuditLine<'a> {
    ts: String,
    /// The OS user name of the real uid (`uid:N` when it has none in /etc/passwd).
    user: String,
    uid: Option<u32>,
    /// The invoking user when run through sudo (`SUDO_USER`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sudo_user: Option<String>,
    reason: &'a str,
    addresses: Vec<String>,
}

/// Runs `pixelguard pseudonym`: refuses, or audits and prints.
pub fn run(source: &ConfigSource, args: &PseudonymArgs) -> Result<(), CommandError> {
    let refuse = |m: String| CommandError::PseudonymRefused(m);
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            refuse(
                "--reason TEXT is required: say why (authorisation, ticket or case); it is recorded in the audit file"
                    .to_owned(),
            )
        })?;
    let mut ips = Vec::with_capacity(args.addresses.len());
    for a in &args.addresses {
        let ip: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| refuse(format!("{a:?} is not an IP address")))?;
        ips.push(ip.to_canonical());
    }
    let config = source.load()?;
    let lines = pseudonyms(&config, &ips)?;
    let audit = config.state_dir.join(AUDIT_FILE);
    append_audit(&audit, reason, &ips)
        .map_err(|e| CommandError::PseudonymAudit(format!("{}: {e}", audit.display())))?;
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    Ok(())
}

/// `ADDRESS PSEUDONYM` per address, as the query log writes each (`-` where its zone logs no
/// client).
fn pseudonyms(config: &Config, ips: &[IpAddr]) -> Result<Vec<String>, CommandError> {
    let Some(ql) = &config.query_log else {
        return Err(CommandError::PseudonymRefused(format!(
            "{}: no [query_log] section: there are no pseudonyms",
            config.origin
        )));
    };
    // Never create a key here: a new key maps to pseudonyms no log line carries.
    if ql.key.is_none() && !ql.key_file.exists() {
        return Err(CommandError::PseudonymRefused(format!(
            "{}: no query-log key yet (the query log has not run with this config)",
            ql.key_file.display()
        )));
    }
    let key = Pseudonymizer::for_config(ql).map_err(|e| {
        CommandError::PseudonymRefused(format!("{}: query_log key: {e}", ql.key_file.display()))
    })?;
    let table = ZoneTable::new(config.zones.iter().enumerate().flat_map(|(i, z)| {
        let id = u16::try_from(i).unwrap_or(u16::MAX);
        z.networks.iter().map(move |n| (*n, id))
    }));
    Ok(ips
        .iter()
        .map(|ip| {
            let mode = table
                .lookup(*ip)
                .and_then(|id| config.zones.get(usize::from(id)))
                .and_then(|z| z.query_log_client)
                .unwrap_or(ql.client);
            let shown = key.client(*ip, mode).unwrap_or_else(|| "-".to_owned());
            if mode == ClientMode::None {
                format!("{ip} - (its zone logs no client)")
            } else {
                format!("{ip} {shown}")
            }
        })
        .collect())
}

/// Appends one JSON line to the audit file (created 0600), synced before returning.
fn append_audit(path: &Path, reason: &str, ips: &[IpAddr]) -> std::io::Result<()> {
    let (user, uid) = os_user();
    let line = AuditLine {
        ts: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        user,
        uid,
        sudo_user: std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty()),
        reason,
        addresses: ips.iter().map(ToString::to_string).collect(),
    };
    let mut text = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(&text)?;
    f.sync_data()
}

/// The real uid of this process (from /proc/self/status) and its user name (from /etc/passwd;
/// `uid:N` when absent there, e.g. a directory user).
fn os_user() -> (String, Option<u32>) {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|u| u.parse::<u32>().ok())
        });
    let name = uid.and_then(|u| {
        std::fs::read_to_string(PathBuf::from("/etc/passwd"))
            .ok()?
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let uid_field = f.nth(1)?;
                (uid_field.parse::<u32>().ok()? == u).then(|| name.to_owned())
            })
    });
    let user = match (name, uid) {
        (Some(n), _) => n,
        (None, Some(u)) => format!("uid:{u}"),
        (None, None) => "unknown".to_owned(),
    };
    (user, uid)
}
