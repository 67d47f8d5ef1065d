//! Shared model of the GPU telemetry pipeline.
//!
//! Everything the producer, stream processor, InfluxDB sink and batch analytics must
//! agree on lives here, defined once:
//!
//! - [`metric`]: the canonical metric catalogue;
//! - [`sample`]: the sample model and deterministic event ids;
//! - [`wire`]: the versioned JSON Kafka format (`schema/sample.v1.schema.json`);
//! - [`columnar`]: the Arrow schemas of the lake tables;
//! - [`lake`]: lake locations, layout and atomic publishing;
//! - [`anomaly`]: anomaly events;
//! - [`rollup`]: per-GPU event-time window aggregates;
//! - [`config`]: flags / env / TOML configuration conventions;
//! - `kafka` and `service` (features): client settings, `/metrics` and `/health`.

#![warn(missing_docs)]

pub mod anomaly;
pub mod columnar;
pub mod config;
pub mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod lake;
pub mod metric;
pub mod rollup;
pub mod sample;
#[cfg(feature = "service")]
pub mod service;
pub mod wire;

pub use anomaly::{AnomalyEvent, AnomalyState, Severity};
pub use error::{Error, Result};
pub use metric::{Metric, MetricKind};
pub use sample::{Metrics, Sample, Source, event_id};
