//! Prometheus metrics of the sink.

use gpustream_runtime::service::CommonMetrics;
use prometheus::{IntCounter, Registry};

use crate::error::Result;

/// Counters the sink updates, beside the shared ones (records in, dead letters, lag,
/// commits, pauses, write latency: [`CommonMetrics`]); cheap to clone.
#[derive(Clone)]
pub struct SinkMetrics {
    /// The metrics every service has, with `component="consumer-influx"`.
    pub common: CommonMetrics,
    /// Messages skipped because they could not be decoded or encoded.
    pub decode_errors: IntCounter,
    /// `extra` fields left out of lines (reserved name or non-finite value).
    pub fields_skipped: IntCounter,
    /// Points InfluxDB accepted.
    pub points_written: IntCounter,
    /// Points InfluxDB refused for good (4xx, isolated by splitting the batch).
    pub points_rejected: IntCounter,
    /// Refused points handed to the dead-letter topic (or logged, without one).
    pub points_dead_lettered: IntCounter,
    /// Batches written (fully or partly accepted).
    pub batches_written: IntCounter,
    /// Failed write attempts (any cause, retried or not).
    pub write_errors: IntCounter,
    /// Write attempts that were retried.
    pub write_retries: IntCounter,
}

impl SinkMetrics {
    /// Creates the metrics and registers them in `registry` (prefix `consumer_influx_`).
    pub fn register(registry: &Registry) -> Result<Self> {
        let counter = |name: &str, help: &str| -> Result<IntCounter> {
            let c = IntCounter::new(format!("consumer_influx_{name}"), help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(SinkMetrics {
            common: CommonMetrics::new(registry, "consumer-influx")?,
            decode_errors: counter(
                "decode_errors_total",
                "Messages skipped because they could not be decoded or encoded",
            )?,
            fields_skipped: counter(
                "fields_skipped_total",
                "Extra fields left out (reserved name or non-finite value)",
            )?,
            points_written: counter("points_written_total", "Points accepted by InfluxDB")?,
            points_rejected: counter(
                "points_rejected_total",
                "Points InfluxDB refused for good (4xx)",
            )?,
            points_dead_lettered: counter(
                "points_dead_lettered_total",
                "Refused points sent to the dead-letter topic",
            )?,
            batches_written: counter("batches_written_total", "Batches written to InfluxDB")?,
            write_errors: counter("write_errors_total", "Failed InfluxDB write attempts")?,
            write_retries: counter("write_retries_total", "Retried InfluxDB write attempts")?,
        })
    }

    /// Metrics registered in a private registry: for tests and embedding.
    pub fn unregistered() -> Result<Self> {
        Self::register(&Registry::new())
    }
}
