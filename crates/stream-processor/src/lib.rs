//! The stream processor: consumes samples from Kafka, flags anomalies, closes rollup
//! windows and writes the lake's Delta tables exactly once per sample.
//!
//! It owns the detectors and rules ([`detect`], [`rules`]), the windows ([`rollups`]),
//! alert routing ([`alerting`]), and its two stages on the shared consumer runtime
//! ([`sink`], [`lake_writer`], wired in [`pipeline`]). It must not depend on another
//! binary's crate; Kafka plumbing comes from `gpustream-runtime`, storage from
//! `gpustream-lake`.

pub mod alerting;
pub mod buffer;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod error;
pub mod lake_writer;
pub mod metrics;
pub mod pipeline;
pub mod quality;
pub mod rollups;
pub mod rules;
pub mod sink;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
