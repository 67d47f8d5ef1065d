//! What every gpustream service runs on:
//!
//! - [`config`]: one configuration model (flags > environment > file sections), durations,
//!   secrets from the environment only;
//! - [`kafka`]: client settings with TLS and SASL, a start-up check with clear errors,
//!   client callbacks, topics and dead-letter headers;
//! - [`consumer`]: the consume → batch → write → commit loop both Kafka sinks run on;
//! - [`service`]: liveness, readiness, the shared metric vocabulary, `/metrics`,
//!   logging and shutdown signals;
//! - [`startup`]: the few lines every binary's `main` is made of.
//!
//! Depends on no other crate of the workspace: the binaries build on it, the libraries
//! below them (model, GPU-Z, lake, simulator) never do.

pub mod config;
pub mod consumer;
pub mod error;
pub mod kafka;
pub mod service;
pub mod startup;

pub use error::{Error, Result};
