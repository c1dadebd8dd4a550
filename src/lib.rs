//! pixelguard: a DNS-level privacy filter for organisations.
//!
//! Module map, in layers (each uses only those below it):
//!
//! - face: `main.rs`, [`cli`], [`app`] — arguments, wiring, signals, the one reload path.
//! - serve / tools: [`server`] (UDP through hickory-server, TCP through our own capped loop),
//!   [`check`] (`check` and `lists` commands), [`explain`], [`audit`], [`admin`] (metrics,
//!   health and admin HTTP API). Commands return a [`command::Outcome`] or a
//!   [`command::CommandError`]; `main.rs` alone turns them into exit codes.
//! - path: [`pipeline`] (the fixed chain of stages), [`snapshot`] (the immutable state it reads).
//! - parts: [`lists`] (parse, catalogue, compile), [`policy`] (verdicts), [`respond`] (answers),
//!   [`record`] (fans each outcome out to [`metrics`], the admin top-k and [`querylog`]).
//! - ground: [`matcher`] (compact suffix sets), [`zones`] (CIDR → zone), [`outcome`],
//!   [`cache`] (raw upstream answers), [`upstream`] (forwarding), [`config`] (typed config).
//!
//! Data flows one way: a request enters `server`, runs through `pipeline` against the current
//! `snapshot`, and leaves as a `respond::Reply`; `record` sees a copy of the outcome.

pub mod admin;
pub mod app;
pub mod audit;
pub mod cache;
pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod explain;
pub mod lists;
pub mod matcher;
pub mod metrics;
pub mod outcome;
pub mod pipeline;
pub mod policy;
pub mod querylog;
pub mod ratelimit;
pub mod record;
pub mod respond;
pub mod server;
pub mod snapshot;
pub mod upstream;
pub mod wire;
pub mod zones;
