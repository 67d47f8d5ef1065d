//! The stream processor: consumes samples from Kafka, flags anomalies and writes the
//! Parquet lake exactly once per sample (deterministic file names, publish then commit).

pub mod alerting;
pub mod cli;
pub mod detect;
pub mod error;
pub mod lake_writer;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod quality;
pub mod rollups;
pub mod rules;
#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
