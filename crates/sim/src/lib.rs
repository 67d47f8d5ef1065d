//! Simulated GPUs, for people without hardware and for tests that need ground truth.
//!
//! - [`fleet`]: a fleet of GPUs with injected faults, each fault labelled
//!   ([`fleet::FaultLabel`]) so detection can be measured against it;
//! - [`gpuz_log`]: one GPU written as a GPU-Z "Log to file" log;
//! - [`lake_day`]: a day of a synthetic fleet written straight into the lake, for
//!   benchmarks of the nightly job;
//! - [`rng`]: the one seeded generator behind all of them.
//!
//! Depends on the model and the lake only; it must not depend on Kafka or any binary.

pub mod fleet;
pub mod gpuz_log;
pub mod lake_day;
pub mod rng;

pub use rng::Rng;
