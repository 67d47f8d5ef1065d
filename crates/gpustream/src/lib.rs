//! The GPU telemetry model: what every component of the pipeline agrees on, defined once.
//!
//! - [`metric`]: the canonical metric catalogue;
//! - [`sample`]: the sample model and deterministic event ids;
//! - [`wire`]: the versioned JSON Kafka format (`schema/sample.v1.schema.json`);
//! - [`anomaly`]: anomaly events;
//! - [`rollup`]: per-GPU event-time window aggregates;
//! - [`throttle`]: clock-throttle reasons, one vocabulary for NVML bits and GPU-Z PerfCap.
//!
//! This crate is the bottom of the workspace: it must not depend on any other crate of
//! it, nor on Kafka, Arrow, object stores or an async runtime. Storage lives in
//! `gpustream-lake`, service plumbing in `gpustream-runtime`.

pub mod anomaly;
pub mod error;
pub mod metric;
pub mod rollup;
pub mod sample;
pub mod throttle;
pub mod wire;

pub use anomaly::{AnomalyEvent, AnomalyState, Severity};
pub use error::{Error, Result};
pub use metric::{Metric, MetricKind};
pub use sample::{Metrics, Sample, Source, event_id};
