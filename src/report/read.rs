//! Reading the query log for a report: which files make it up (the live file, its rotated copies
//! `path.N`, and `path.N.gz` when an operator's logrotate compressed them), and one pass over
//! each, line by line, so a month of log never needs its size in memory.
//!
//! Parsing is lenient: unknown fields are ignored (logs written before and after a field was
//! added read the same); a line that is not JSON, lacks `ts`/`outcome`, or is longer than
//! [`MAX_LINE`](super::MAX_LINE) is skipped and counted in the report's footer.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::MAX_LINE;
use super::tally::Tally;

/// The fields of a query-log line a report reads (see `querylog::writer`'s `Line`).
#[derive(Debug, Deserialize)]
pub(super) struct LogLine<'a> {
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    #[serde(borrow, default)]
    pub zone: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub client: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub qname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub outcome: Cow<'a, str>,
    #[serde(borrow, default)]
    pub vendor: Option<Cow<'a, str>>,
    /// The exception that allowed the answer (its ticket or `exceptions[N]`), when one did.
    #[serde(borrow, default)]
    pub exception: Option<Cow<'a, str>>,
}

/// The files of the log at `live`, oldest first: `live.N` (and `live.N.gz`) from the highest `N`
/// down, then `live` itself. Missing files are simply absent; an unreadable folder is an error.
pub fn log_files(live: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match live.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(stem) = live.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let mut rotated: Vec<(usize, PathBuf)> = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for ent in rd {
        let ent = ent?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let num = rest.strip_suffix(".gz").unwrap_or(rest);
        if let Ok(n) = num.parse::<usize>() {
            rotated.push((n, ent.path()));
        }
    }
    rotated.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if live.is_file() {
        files.push(live.to_path_buf());
    }
    Ok(files)
}

/// Streams one file (gunzipped when its name ends in `.gz`) into the tally.
pub fn read_file(path: &Path, tally: &mut Tally) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        // Rotated away between listing and opening: its lines are in the next file.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let inner: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    read_lines(BufReader::with_capacity(64 * 1024, inner), tally)
}

/// Reads lines of at most [`MAX_LINE`] bytes; longer ones are skipped (and counted) without
/// being held in memory.
pub(super) fn read_lines(mut r: impl BufRead, tally: &mut Tally) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = r.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (part, done) = match memchr_newline(chunk) {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            if !too_long && buf.len() + part.len() <= MAX_LINE {
                buf.extend_from_slice(part);
            } else {
                too_long = true;
                buf.clear();
            }
            let used = done.unwrap_or(chunk.len());
            r.consume(used);
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(());
        }
        if too_long {
            tally.skipped();
            continue;
        }
        let line = buf.strip_suffix(b"\r").unwrap_or(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<LogLine<'_>>(line) {
            Ok(l) => tally.add(&l),
            Err(_) => tally.skipped(),
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::report::period::{Period, parse_bound};

    fn tally() -> Tally {
        let p = Period {
            from: parse_bound("2026-11-01", false).unwrap(),
            to: parse_bound("2026-11-30", true).unwrap(),
        };
        Tally::new(p, false)
    }

    #[test]
    fn lenient_lines_and_long_lines() {
        let mut t = tally();
        let long = format!("{{\"x\":\"{}\"}}\n", "a".repeat(MAX_LINE + 10));
        let text = format!(
            "{{\"ts\":\"2026-11-02T00:00:00.000000Z\",\"zone\":\"k\",\"qname\":\"a.test\",\"outcome\":\"blocked\",\"vendor\":\"meta\",\"new_field\":[1,2]}}\n\
             not json\n\n{long}\
             {{\"ts\":\"2026-11-03T00:00:00Z\",\"zone\":\"k\",\"qname\":\"b.test\",\"outcome\":\"forwarded\",\"vendor\":\"meta\",\"exception\":\"INC-1\"}}\r\n\
             {{\"ts\":\"2026-11-03T00:00:00Z\",\"outcome\":\"blocked\"}}"
        );
        read_lines(io::Cursor::new(text.into_bytes()), &mut t).unwrap();
        let r = t.finish(&[], Vec::new(), Vec::new(), SystemTime::now());
        assert_eq!(r.footer.lines_skipped, 2, "{:?}", r.footer);
        assert_eq!(r.footer.lines_read, 5);
        let k = &r.zones["k"].vendors["meta"];
        assert_eq!((k.blocked, k.excepted), (1, 1));
        assert_eq!(r.zones["none"].vendors["other"].blocked, 1);
    }

    #[test]
    fn files_are_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("q.jsonl");
        for n in [
            "q.jsonl",
            "q.jsonl.1",
            "q.jsonl.2.gz",
            "q.jsonl.10",
            "q.jsonl.x",
            "other",
        ] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let names: Vec<String> = log_files(&live)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["q.jsonl.10", "q.jsonl.2.gz", "q.jsonl.1", "q.jsonl"]
        );
    }
}
