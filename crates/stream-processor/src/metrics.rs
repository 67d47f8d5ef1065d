//! The stream processor's own Prometheus metrics.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Counters and gauges exposed on `/metrics`.
#[derive(Clone)]
pub struct ProcessorMetrics {
    /// Messages consumed.
    pub records_in: IntCounter,
    /// Sample rows written to the lake.
    pub records_out: IntCounter,
    /// Anomaly transitions, by rule and state.
    pub anomalies: IntCounterVec,
    /// Messages sent to the dead-letter topic.
    pub dlq: IntCounter,
    /// Lake files created.
    pub files: IntCounter,
    /// Bytes of lake files created.
    pub bytes: IntCounter,
    /// Seconds per flush (write + commit).
    pub flush_seconds: Histogram,
    /// Samples held in memory, not yet written.
    pub buffered: IntGauge,
    /// Flush attempts that failed (retried).
    pub flush_errors: IntCounter,
    /// Samples that arrived after their rollup window had closed.
    pub late: IntCounter,
    /// Messages between the consumer's position and the broker's high watermark, per
    /// assigned partition (measured every few seconds).
    pub consumer_lag: IntGaugeVec,
    /// Partitions of the topic assigned to this instance.
    pub assigned_partitions: IntGauge,
}

impl ProcessorMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = ProcessorMetrics {
            records_in: IntCounter::new("stream_processor_records_in_total", "Messages consumed")?,
            records_out: IntCounter::new(
                "stream_processor_records_out_total",
                "Sample rows written to the lake",
            )?,
            anomalies: IntCounterVec::new(
                Opts::new("stream_processor_anomalies_total", "Anomaly transitions"),
                &["rule", "state"],
            )?,
            dlq: IntCounter::new(
                "stream_processor_dlq_total",
                "Messages sent to the dead-letter topic",
            )?,
            files: IntCounter::new("stream_processor_files_written_total", "Lake files created")?,
            bytes: IntCounter::new(
                "stream_processor_bytes_written_total",
                "Bytes of lake files created",
            )?,
            flush_seconds: Histogram::with_opts(HistogramOpts::new(
                "stream_processor_flush_seconds",
                "Time to write a flush to the lake and commit it",
            ))?,
            buffered: IntGauge::new(
                "stream_processor_buffered_samples",
                "Samples held in memory",
            )?,
            flush_errors: IntCounter::new(
                "stream_processor_flush_errors_total",
                "Failed flush attempts",
            )?,
            late: IntCounter::new(
                "stream_processor_late_samples_total",
                "Samples after their rollup window closed (kept in the lake)",
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "stream_processor_consumer_lag",
                    "Messages between the consumer position and the broker high watermark",
                ),
                &["partition"],
            )?,
            assigned_partitions: IntGauge::new(
                "stream_processor_assigned_partitions",
                "Partitions assigned to this instance",
            )?,
        };
        registry.register(Box::new(m.records_in.clone()))?;
        registry.register(Box::new(m.records_out.clone()))?;
        registry.register(Box::new(m.anomalies.clone()))?;
        registry.register(Box::new(m.dlq.clone()))?;
        registry.register(Box::new(m.files.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.flush_seconds.clone()))?;
        registry.register(Box::new(m.buffered.clone()))?;
        registry.register(Box::new(m.flush_errors.clone()))?;
        registry.register(Box::new(m.late.clone()))?;
        registry.register(Box::new(m.consumer_lag.clone()))?;
        registry.register(Box::new(m.assigned_partitions.clone()))?;
        Ok(m)
    }
}
