//! Prometheus metrics of the sink.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

use crate::error::Result;

/// Counters and histograms the sink updates; cheap to clone (shared handles).
#[derive(Clone)]
pub struct SinkMetrics {
    /// Kafka messages received (samples and anomalies, decodable or not).
    pub messages_consumed: IntCounter,
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
    /// 1 while consumption is paused because writes are not getting through.
    pub paused: IntGauge,
    /// Batches written (fully or partly accepted).
    pub batches_written: IntCounter,
    /// Failed write attempts (any cause, retried or not).
    pub write_errors: IntCounter,
    /// Write attempts that were retried.
    pub write_retries: IntCounter,
    /// Offset commits (or offset stores) that failed.
    pub commit_errors: IntCounter,
    /// Duration of successful batch writes, retries included.
    pub write_seconds: Histogram,
}

impl SinkMetrics {
    /// Creates the metrics and registers them in `registry` (prefix `consumer_influx_`).
    pub fn register(registry: &Registry) -> Result<Self> {
        let counter = |name: &str, help: &str| -> Result<IntCounter> {
            let c = IntCounter::new(format!("consumer_influx_{name}"), help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "consumer_influx_write_seconds",
                "Duration of successful InfluxDB batch writes, retries included",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        registry.register(Box::new(write_seconds.clone()))?;
        Ok(SinkMetrics {
            messages_consumed: counter("messages_consumed_total", "Kafka messages received")?,
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
            paused: {
                let g = IntGauge::new(
                    "consumer_influx_paused",
                    "1 while consumption is paused because InfluxDB writes are failing",
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            batches_written: counter("batches_written_total", "Batches written to InfluxDB")?,
            write_errors: counter("write_errors_total", "Failed InfluxDB write attempts")?,
            write_retries: counter("write_retries_total", "Retried InfluxDB write attempts")?,
            commit_errors: counter(
                "commit_errors_total",
                "Failed Kafka offset stores or commits",
            )?,
            write_seconds,
        })
    }

    /// Metrics registered in a private registry: for tests and embedding.
    pub fn unregistered() -> Result<Self> {
        Self::register(&Registry::new())
    }
}
