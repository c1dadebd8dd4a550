//! The stages of the chain, a file each, in the order of [`super::chain::CHAIN`]. Each exports
//! `run(&Cx) -> Flow`; the upstream stage also `wait`, its asynchronous half.

pub mod answer_policy;
pub mod any;
pub mod cache;
pub mod canary;
pub mod local;
pub mod name_policy;
pub mod ratelimit;
pub mod upstream;
pub mod zone;
