//! The stream processor's metrics: the shared vocabulary ([`CommonMetrics`], label
//! `component="stream-processor"`) plus what only the processor has.

use gpustream_runtime::service::CommonMetrics;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

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
    /// Seconds of each stage of a flush (`prepare`, `anomalies`, `rollups`, `samples`,
    /// `publish`): where `gpustream_write_seconds` goes.
    pub write_stage_seconds: HistogramVec,
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
            write_stage_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "stream_processor_write_stage_seconds",
                    "Time of each stage of making a batch durable",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ]),
                &["stage"],
            )?,
        };
        registry.register(Box::new(m.anomalies.clone()))?;
        registry.register(Box::new(m.files.clone()))?;
        registry.register(Box::new(m.bytes.clone()))?;
        registry.register(Box::new(m.commits.clone()))?;
        registry.register(Box::new(m.buffered.clone()))?;
        registry.register(Box::new(m.late.clone()))?;
        registry.register(Box::new(m.write_stage_seconds.clone()))?;
        Ok(m)
    }
}
