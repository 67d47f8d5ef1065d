//! The producer: turns GPU-Z logs (replayed or followed while GPU-Z writes them), live
//! NVML readings and a simulated fleet into samples and publishes them to Kafka.

pub mod error;
pub mod fleet;
pub mod follow;
pub mod gpuz;
pub mod nvml;
pub mod pacing;
pub mod progress;
pub mod replay;
pub mod simulate;
pub mod sink;
pub mod throttle;

pub use error::{Error, Result};
