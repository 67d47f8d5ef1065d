//! The stream processor's metrics: the shared vocabulary ([`CommonMetrics`], label
//! `component="stream-processor"`) plus what only the processor has.

use gpustream_runtime::service::CommonMetrics;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Counters and gauges exposed on `/metrics`.
#[derive(Clone)]
pub struct ProcessorMetrics {
    /// Records in/out, dead letters, lag, partitions, commits, write latency and errors.
    pub common: CommonMetrics,
    /// Anomaly transitions, by rule and state.
    pub anomalies: IntCounterVec,
    /// Lake data files committed.
    pub files: IntCounter,
    /// Bytes of those files.
    pub bytes: IntCounter,
    /// Delta commits, by table.
    pub commits: IntCounterVec,
    /// Samples held in memory, not yet written.
    pub buffered: IntGauge,
    /// Samples that arrived after their rollup window had closed.
    pub late: IntCounter,
}

impl ProcessorMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let common = CommonMetrics::new(registry, "stream-processor").map_err(|e| match e {
            gpustream_runtime::Error::Metrics(m) => m,
            other => prometheus::Error::Msg(other.to_string()),
        })?;
        let m = ProcessorMetrics {
            common,
            anomalies: IntCounterVec::new(
                Opts::new("stream_processor_anomalies_total", "Anomaly transitions"),
                &["rule", "state"],
            )?,
            files: IntCounter::new(
                "stream_processor_files_written_total",
                "Lake data files committed",
            )?,
            bytes: IntCounter::new(
                "stream_processor_bytes_written_total",
                "Bytes of lake data files committed",
            )?,
            commits: IntCounterVec::new(
                Opts::new(
                    "stream_processor_delta_commits_total",
                    "Delta commits, by table",
                ),
                &["table"],
            )?,
            buffered: IntGauge::new(
                "stream_processor_buffered_samples",
                "Samples held in memory",
            )?,
            late: IntCounter::new(
                "stream_processor_late_samples_total",
                "Samples after their rollup window closed (kept in the lake)",
            )?,
        };
        registry.register(Box::new(m.anomalies.clone()))?;
        registry.register(Box::new(m.files.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.commits.clone()))?;
        registry.register(Box::new(m.buffered.clone()))?;
        registry.register(Box::new(m.late.clone()))?;
        Ok(m)
    }
}
