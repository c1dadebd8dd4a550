//! Entry points for the cargo-fuzz targets under `fuzz/` (cargo feature `fuzzing`, off by
//! default; not part of the supported API). Thin wrappers only: the request path is
//! crate-private, and a fuzz target must run the same code a listener runs, so [`Harness`]
//! builds a real [`Pipeline`] from config text and feeds it bytes the way the UDP receive thread
//! ([`Harness::fast_udp`]) and the full path ([`Harness::full_path`]) do. The list parsers and
//! the config loader are public already and are fuzzed directly.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use hickory_proto::op::Message;

use crate::cache::CacheKey;
use crate::config::{Config, ConfigErrors, Overrides};
use crate::pipeline::chain::{self, Cx, Reader};
use crate::pipeline::decode::{self, Decode};
use crate::pipeline::{FastPath, Pipeline};
use crate::respond::{self, Answer};
use crate::snapshot::Snapshot;

/// A pipeline built from a config, with nothing listening: bytes in, bytes out.
pub struct Harness {
    pipeline: Pipeline,
}

impl Harness {
    /// Validates `text` as the CLI does (relative paths resolved against `base`) and builds the
    /// snapshot and pipeline a server would start with. No upstream is contacted.
    pub fn new(text: &str, base: &Path) -> Result<Self, ConfigErrors> {
        let config = Config::from_str(text, "<fuzz>", base, &Overrides::default())?;
        Ok(Self::from_config(config))
    }

    /// The snapshot and pipeline a server would start with on `config` (remote lists empty:
    /// there is no download and no disk copy).
    pub fn from_config(config: Config) -> Self {
        Self {
            pipeline: Pipeline::new(Snapshot::build(config, None, None)),
        }
    }

    /// Stores an upstream answer in the cache under its first question (as a fresh upstream
    /// answer with DO and CD clear would be), so the cache and answer-policy stages have
    /// something to serve. Returns whether it was stored.
    pub fn seed_cache(&self, answer: &Message) -> bool {
        let Some(q) = answer.queries.first() else {
            return false;
        };
        let lower = q.name().to_ascii().to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        let key = CacheKey::new(
            name,
            u16::from(q.query_type()),
            u16::from(q.query_class()),
            false,
            false,
        );
        self.pipeline.cache.insert(key, answer, Instant::now())
    }

    /// The UDP receive thread's call: the answer in `out` (empty: send nothing) and `true`, or
    /// `false` when the datagram goes on to the full path.
    pub fn fast_udp(&self, raw: &[u8], client: IpAddr, out: &mut Vec<u8>) -> bool {
        out.clear();
        matches!(self.pipeline.fast_udp(raw, client, out), FastPath::Answered)
    }

    /// The full path up to its first wait, as [`Pipeline::answer`] runs it: hickory's decoder,
    /// the codes answered before any stage, then the chain's synchronous stages on the decoded
    /// view. The answer is in `out` (empty: nothing sent yet); returns the size limit it was
    /// encoded for, or `None` when the chain stopped to wait on an upstream.
    pub fn full_path(
        &self,
        raw: &[u8],
        src: SocketAddr,
        tcp: bool,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        out.clear();
        let d = match decode::decode(raw, src, tcp) {
            Decode::Request(d) => d,
            Decode::Reply(bytes) => {
                *out = bytes;
                return Some(usize::from(u16::MAX));
            }
            Decode::Ignore => return Some(0),
        };
        let q = d.view();
        let limit = if tcp {
            usize::from(u16::MAX)
        } else {
            q.udp_limit()
        };
        if let Some(rcode) = d.invalid {
            respond::encode(out, &q, &Answer::Code(rcode), limit);
            return Some(limit);
        }
        let snap = self.pipeline.snapshot.load_full();
        let mut cx = Cx::new(&self.pipeline, &snap, q, src.ip());
        // Synchronous, as on the receive thread: a stage that must wait stops the run here.
        cx.reader = Reader::Fast;
        let done = chain::drive(&mut cx, 0).ok()?;
        respond::encode(out, &q, &done.answer, limit);
        Some(limit)
    }
}
