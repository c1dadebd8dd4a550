//! pixelguard: a DNS-level privacy filter for organisations.
//!
//! # Layers
//!
//! Each module sits in one layer and imports only modules of its own layer or of layers below
//! it, with no cycle anywhere; `tests/architecture.rs` reads the table below and every
//! `use crate::` line of `src/`, and fails on an import that breaks it.
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | face | `app`, `cli`, `fuzzing` | wiring, signals, the one reload path; arguments (`main.rs` maps results to exit codes); the fuzz targets' entry points (feature `fuzzing`) |
//! | serve | `server`, `admin`, `csp_reports`, `explain`, `check`, `audit`, `command`, `report`, `reidentify` | listeners (bytes in, bytes out); the admin HTTP API; the public CSP report endpoint; the commands and their typed results; query-log reports; audited pseudonym look-up |
//! | path | `pipeline`, `snapshot` | the one chain of stages every reader runs; the immutable state it reads |
//! | parts | `policy`, `lists`, `respond`, `record`, `metrics`, `querylog`, `export` | verdicts; lists; answers and their one encoder; recording; dnstap and syslog export |
//! | ground | `cache`, `upstream`, `wire`, `ratelimit`, `matcher`, `zones`, `outcome`, `config`, `sock` | raw answers; forwarding and forward rules; wire forms; buckets; names; networks; closed sets; typed config; sockets registered for one direction |
//!
//! Rules the table does not show: the cache and the upstreams know nothing of policy (raw
//! answers; policy is applied per request); answer building (`respond`) is separate from sending
//! (`server`); recording never reaches into resolution; config imports nothing of the crate.
//!
//! # Data flow
//!
//! A request enters `server` as bytes, runs through `pipeline`'s chain against the current
//! `snapshot` (zone → rate limit → canaries → name policy → locally served zones → ANY → cache →
//! upstream → answer policy), leaves through `respond::encode`, and `record` sees a copy of the
//! outcome.

pub(crate) mod admin;
pub mod app;
pub mod audit;
pub mod cache;
pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod csp_reports;
pub mod explain;
pub mod export;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod lists;
pub mod matcher;
pub mod metrics;
pub mod outcome;
pub(crate) mod pipeline;
pub mod policy;
pub mod querylog;
pub(crate) mod ratelimit;
pub(crate) mod record;
pub mod reidentify;
pub mod report;
pub mod respond;
pub(crate) mod server;
pub(crate) mod snapshot;
pub(crate) mod sock;
pub mod upstream;
pub mod wire;
pub(crate) mod zones;
