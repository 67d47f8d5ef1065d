//! The stream processor on the shared consumer runtime: [`crate::sink::ProcessorSink`]
//! decodes (on threads of its own), detects and buffers on the consumer loop; [`crate::lake_writer::LakeWriter`]
//! commits sealed batches to the lake's Delta tables on a task of its own while the next
//! batch fills; the runtime commits Kafka offsets once a batch is durable.
//!
//! Delivery into the lake is exactly once per sample: each Delta commit carries the
//! last offset per partition it includes, a restart resumes after the `samples` table's
//! offsets (records up to them are replayed into detector and window state, not
//! written), and a batch read again is cut down to what the tables do not hold.
//! Anomalies and rollups closed by a sample are deduplicated the same way; rollups
//! closed by silence or shutdown are at least once.

use std::future::Future;
use std::time::Duration;

use gpustream_lake::Lake;
use gpustream_runtime::consumer::{self, ConsumerConfig};
use gpustream_runtime::kafka::KafkaSettings;
use gpustream_runtime::service::Health;
use rdkafka::producer::FutureProducer;

use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::lake_writer::LakeWriter;
use crate::metrics::ProcessorMetrics;
use crate::rollups::{RollupConfig, Windower};
use crate::sink::ProcessorSink;

/// Settings of one processor instance.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Brokers and client properties (TLS, SASL, ...).
    pub kafka: KafkaSettings,
    /// Topic of samples.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Topic anomaly events go to (empty: none).
    pub anomalies_topic: String,
    /// Dead-letter topic for undecodable messages.
    pub dlq_topic: String,
    /// Topic rollups go to (empty: none; they still go to the lake).
    pub rollups_topic: String,
    /// Rollup windows.
    pub rollup: RollupConfig,
    /// Flush when this many samples are buffered.
    pub flush_rows: usize,
    /// Flush at least this often while data is buffered (an idle input still flushes).
    pub flush_interval: Duration,
    /// Flush when the buffered messages' payloads reach this many bytes.
    pub flush_bytes: usize,
    /// Threads that decode messages beside the consumer loop (0: the loop decodes).
    pub decode_threads: usize,
}

impl ProcessorConfig {
    /// Defaults for `brokers` (plaintext), `topic` and `group`: anomalies, rollups and
    /// dead letters to `gpu-anomalies`, `gpu-rollups-1m`, `gpu-dlq`; flushes at 100,000
    /// samples, [`DEFAULT_FLUSH_BYTES`] or 10 s.
    pub fn new(brokers: &str, topic: &str, group: &str) -> ProcessorConfig {
        ProcessorConfig {
            kafka: KafkaSettings::plaintext(brokers),
            topic: topic.to_string(),
            group: group.to_string(),
            anomalies_topic: gpustream_runtime::kafka::ANOMALIES_TOPIC.to_string(),
            dlq_topic: gpustream_runtime::kafka::DLQ_TOPIC.to_string(),
            rollups_topic: gpustream_runtime::kafka::ROLLUPS_TOPIC.to_string(),
            rollup: RollupConfig::default(),
            flush_rows: 100_000,
            flush_interval: Duration::from_secs(10),
            flush_bytes: DEFAULT_FLUSH_BYTES,
            decode_threads: default_decode_threads(),
        }
    }
}

/// Decoding threads when none are configured: one per core beside the consumer loop
/// (at most 8, where the loop's own work is the limit), none on a single core.
pub fn default_decode_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .min(8)
}

/// What a run did (for logs and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Messages consumed.
    pub consumed: u64,
    /// Sample rows committed to the lake.
    pub rows_written: u64,
    /// Messages sent to the DLQ.
    pub dead_lettered: u64,
    /// Anomaly transitions committed.
    pub anomalies: u64,
    /// Batches committed.
    pub flushes: u64,
    /// Rollup windows committed.
    pub rollups: u64,
    /// Samples that arrived after their rollup window closed (still in the lake).
    pub late: u64,
}

/// Default flush size: 32 MiB of message payloads (~60,000 samples). Each flush pays a
/// fixed Delta cost per table (commit, snapshot update, ~40 ms here), so larger flushes
/// catch up faster: 32 MiB consumed a backlog 1.2–1.3× as fast as 16 MiB for ~6 % more
/// peak RSS, 64 MiB little faster again for a third more (BENCHMARKS.md, "Flush size
/// against the writer's fixed cost"). Smaller flushes lower the heap held for rows but
/// not the peak RSS ("Smaller flushes move the heap, not the peak RSS").
pub const DEFAULT_FLUSH_BYTES: usize = 32 << 20;

/// One stream-processor instance.
pub struct Processor {
    cfg: ProcessorConfig,
    lake: Lake,
    detector: Detector,
    metrics: ProcessorMetrics,
    health: Health,
    alerter: Option<crate::alerting::Alerter>,
}

impl Processor {
    /// A processor writing to `lake`.
    pub fn new(
        cfg: ProcessorConfig,
        lake: Lake,
        detector: Detector,
        metrics: ProcessorMetrics,
        health: Health,
    ) -> Result<Self> {
        if cfg.flush_rows == 0 || cfg.flush_bytes == 0 || cfg.flush_interval.is_zero() {
            return Err(Error::Config(
                "flush rows, bytes and interval must be positive".into(),
            ));
        }
        Ok(Processor {
            cfg,
            lake,
            detector,
            metrics,
            health,
            alerter: None,
        })
    }

    /// Also routes every committed anomaly transition to `alerter` (never waiting on
    /// it: see [`crate::alerting`]).
    pub fn with_alerter(mut self, alerter: Option<crate::alerting::Alerter>) -> Self {
        self.alerter = alerter;
        self
    }

    /// Runs until `shutdown` resolves, then commits what it holds and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<RunStats> {
        let cfg = self.cfg;
        let producer: FutureProducer = cfg.kafka.producer_config().create()?;
        let sink = ProcessorSink::new(
            &self.lake,
            self.detector,
            Windower::new(cfg.rollup),
            self.metrics.clone(),
            cfg.decode_threads,
        )?;
        let mut writer = LakeWriter::new(
            &self.lake,
            &cfg.topic,
            producer,
            &cfg.anomalies_topic,
            &cfg.rollups_topic,
            self.metrics.clone(),
            self.health.clone(),
        );
        writer.alerter = self.alerter;
        let mut consumer = ConsumerConfig::new(
            cfg.kafka.clone(),
            &cfg.group,
            vec![cfg.topic.clone()],
            "stream-processor",
        );
        consumer.dlq_topic = Some(cfg.dlq_topic.clone()).filter(|t| !t.is_empty());
        consumer.batch_records = cfg.flush_rows;
        consumer.batch_bytes = cfg.flush_bytes;
        consumer.batch_timeout = cfg.flush_interval;
        // What is held is written at shutdown; a lake outage then cannot keep the
        // process alive forever (the rows stay uncommitted and are read again).
        consumer.shutdown_grace = Duration::from_secs(60);
        tracing::info!(topic = %cfg.topic, group = %cfg.group, lake = %self.lake.root_url(), "stream processor started");
        let done = consumer::run(
            consumer,
            sink,
            writer,
            self.metrics.common.clone(),
            self.health,
            shutdown,
        )
        .await?;
        let mut writer = done.writer;
        if let Some(a) = writer.alerter.take() {
            a.finish(Duration::from_secs(5)).await;
        }
        let stats = RunStats {
            consumed: done.consumed,
            rows_written: writer.stats.rows,
            dead_lettered: done.dead_lettered + writer.stats.dead_lettered,
            anomalies: writer.stats.anomalies,
            flushes: writer.stats.flushes,
            rollups: writer.stats.rollups,
            late: done.sink.late(),
        };
        tracing::info!(?stats, "stream processor stopped");
        Ok(stats)
    }
}
