//! The producer: turns GPU-Z logs (replayed or followed while GPU-Z writes them), live
//! NVML readings and a simulated fleet into samples and publishes them to Kafka.
//!
//! GPU-Z parsing lives in the `gpuz` crate and the simulators in `gpustream-sim`; this
//! crate owns what makes them a service: pacing, replay and follow modes, the NVML
//! sampler, the Kafka sink and the command line with its configuration ([`cli`]).

pub mod cli;
pub mod error;
pub mod follow;
pub mod nvml;
pub mod pacing;
pub mod progress;
pub mod replay;
pub mod simulate_fleet;
pub mod sink;

pub use error::{Error, Result};
