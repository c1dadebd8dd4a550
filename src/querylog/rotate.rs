//! The query log's file on disk: opening the live file (appending, mode 0640), rotating it by
//! size (`max_size`, `path` → `path.1` → ... → `path.keep`) and by age (after `max_age / 2`),
//! and deleting rotated files that are too old or beyond `keep`.

use std::fs::OpenOptions;
use std::io::{self, BufWriter};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::writer::Writer;
use crate::config::QueryLogConfig;

impl Writer {
    pub(super) fn open(&mut self, cfg: &QueryLogConfig) -> io::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&cfg.path)?;
        let meta = f.metadata()?;
        self.size = meta.len();
        self.opened = if meta.len() == 0 {
            SystemTime::now()
        } else {
            meta.created()
                .or_else(|_| meta.modified())
                .unwrap_or_else(|_| SystemTime::now())
        };
        self.out = Some(BufWriter::with_capacity(64 * 1024, f));
        Ok(())
    }

    /// `path` → `path.1` → ... → `path.keep`; the oldest beyond `keep` is deleted.
    pub(super) fn rotate(&mut self, cfg: &QueryLogConfig) {
        self.flush();
        self.out = None;
        self.size = 0;
        let p = &cfg.path;
        if cfg.keep == 0 {
            let _ = std::fs::remove_file(p);
        } else {
            let _ = std::fs::remove_file(rotated(p, cfg.keep));
            for i in (1..cfg.keep).rev() {
                let _ = std::fs::rename(rotated(p, i), rotated(p, i + 1));
            }
            if let Err(e) = std::fs::rename(p, rotated(p, 1)) {
                tracing::warn!(path = %p.display(), "query log: cannot rotate: {e}");
            }
        }
        self.opened = SystemTime::now();
    }

    /// Age limits and leftover rotated files; at most every few seconds unless `now`.
    pub(super) fn housekeeping(&mut self, now: bool) {
        if !now && self.last_housekeeping.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.last_housekeeping = Instant::now();
        let Some(cfg) = self.cfg.clone() else {
            return;
        };
        let half = cfg.max_age / 2;
        let at = SystemTime::now();
        let older =
            |t: SystemTime| !cfg.max_age.is_zero() && at.duration_since(t).is_ok_and(|d| d > half);
        if self.out.is_some() && self.size > 0 && older(self.opened) {
            self.rotate(&cfg);
        }
        // Rotated files: too old, or beyond `keep` (after `keep` was lowered).
        let Some(dir) = cfg.path.parent() else {
            return;
        };
        let Some(stem) = cfg.path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(n) = name
                .strip_prefix(stem)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|r| r.parse::<usize>().ok())
            else {
                continue;
            };
            let stale = ent.metadata().and_then(|m| m.modified()).is_ok_and(older);
            if n > cfg.keep || stale {
                let _ = std::fs::remove_file(ent.path());
            }
        }
    }
}

/// `queries.jsonl` → `queries.jsonl.N`.
pub fn rotated(p: &Path, n: usize) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;
    use prometheus::IntCounter;

    use super::*;
    use crate::config::ClientMode;
    use crate::outcome::Outcome;
    use crate::querylog::test_config as cfg;
    use crate::querylog::{Entry, Pseudonymizer};

    fn entry(n: usize) -> Box<Entry> {
        Box::new(Entry {
            ts: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            zone: Some(Arc::from("kiosk")),
            client: "10.20.3.7".parse().unwrap(),
            client_mode: ClientMode::Masked,
            qname: format!("n{n}.example.test").into(),
            qtype: RecordType::A,
            outcome: Outcome::Blocked,
            rcode: ResponseCode::NXDomain,
            list: Some(Arc::from("trackers")),
            rule: Some("example.test".into()),
            vendor: Some(Arc::from("meta")),
            category: Some("advertising"),
            cloaked_via: None,
            exception: None,
            upstream: None,
            duration: Duration::from_micros(42),
        })
    }

    #[test]
    fn writes_rotates_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let dropped = IntCounter::new("d", "d").unwrap();
        let mut w = Writer::new(dropped.clone());
        w.configure(Some(c.clone()), Pseudonymizer::random());
        for i in 0..200 {
            w.write(&entry(i));
        }
        w.flush();
        w.housekeeping(true);
        assert_eq!(dropped.get(), 0);
        let live = std::fs::read_to_string(&c.path).unwrap();
        assert!(live.len() <= 4096, "{}", live.len());
        let first: serde_json::Value = serde_json::from_str(live.lines().next().unwrap()).unwrap();
        assert_eq!(first["client"], "10.20.3.0/24");
        assert_eq!(first["rcode"], "NXDOMAIN");
        assert_eq!(first["ts"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(first["duration_us"], 42);
        assert!(first["upstream"].is_null());
        assert!(rotated(&c.path, 1).exists() && rotated(&c.path, 2).exists());
        assert!(!rotated(&c.path, 3).exists(), "keep = 2");
        let last = live.lines().last().unwrap();
        assert!(last.contains("\"n199.example.test\""), "{last}");
    }
}
