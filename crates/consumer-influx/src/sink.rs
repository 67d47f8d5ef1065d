//! The InfluxDB sink on the shared consumer runtime.
//!
//! Delivery is at least once: offsets are committed only after the batch holding their
//! messages was written (or definitively refused) by InfluxDB. A crash or rebalance in
//! between makes the next owner of the partition write those messages again, which is
//! harmless because every point's timestamp and tags are derived from the message alone
//! (see [`crate::line_protocol::sample_timestamp_ns`]): InfluxDB overwrites a point with
//! an identical one.
//!
//! Points InfluxDB refuses for good (a 4xx no retry can fix) are found by splitting the
//! refused batch in halves until single points remain; those go to the dead-letter
//! topic with the server's message, and the rest of the batch is written. While
//! InfluxDB is unreachable the runtime keeps polling Kafka but pauses the partitions
//! once the next batch is full: memory stays bounded to two batches, and consumption
//! resumes by itself when a write gets through.

use std::time::Duration;

use bytes::Bytes;
use gpustream::AnomalyEvent;
use gpustream_runtime::consumer::{
    self, ConsumerConfig, DeadLetterSource, Record, Take, WriteContext,
};
use gpustream_runtime::kafka::KafkaSettings;
use gpustream_runtime::service::Health;
use tokio_util::sync::CancellationToken;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::influx::{InfluxConfig, InfluxWriter, WriteOutcome};
use crate::line_protocol;
use crate::stats::SinkMetrics;

/// Default dead-letter topic of points InfluxDB refused.
pub const INFLUX_DLQ_TOPIC: &str = "gpu-influx-dlq";

/// Everything the sink needs to run.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Brokers and client properties (TLS, SASL, ...).
    pub kafka: KafkaSettings,
    /// Topic of wire-format samples.
    pub samples_topic: String,
    /// Topic of anomaly events; `None` to not consume anomalies.
    pub anomalies_topic: Option<String>,
    /// Topic of 1-minute rollups; `None` to not consume rollups.
    pub rollups_topic: Option<String>,
    /// Dead-letter topic for points InfluxDB refuses; `None` logs and skips them.
    pub dlq_topic: Option<String>,
    /// Consumer group.
    pub group: String,
    /// InfluxDB target.
    pub influx: InfluxConfig,
    /// A batch is written once it holds this many messages.
    pub batch_size: usize,
    /// ... or once its first message is this old.
    pub batch_timeout: Duration,
    /// After shutdown is requested, how long the last batch may take to be written
    /// (retries included) before the sink gives up on it.
    pub shutdown_grace: Duration,
}

impl SinkConfig {
    /// A configuration for a plaintext broker with the default batching (5 000 messages /
    /// 500 ms), topics (`gpu-samples`, `gpu-anomalies`, `gpu-rollups-1m`, dead letters to
    /// `gpu-influx-dlq`) and a 10 s shutdown grace period.
    pub fn new(brokers: impl Into<String>, group: impl Into<String>, influx: InfluxConfig) -> Self {
        SinkConfig {
            kafka: KafkaSettings::plaintext(&brokers.into()),
            samples_topic: gpustream_runtime::kafka::SAMPLES_TOPIC.to_string(),
            anomalies_topic: Some(gpustream_runtime::kafka::ANOMALIES_TOPIC.to_string()),
            rollups_topic: Some(gpustream_runtime::kafka::ROLLUPS_TOPIC.to_string()),
            dlq_topic: Some(INFLUX_DLQ_TOPIC.to_string()),
            group: group.into(),
            influx,
            batch_size: 5000,
            batch_timeout: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(10),
        }
    }

    fn validate(&self) -> Result<()> {
        let topics = self.topics();
        for (i, t) in topics.iter().enumerate() {
            if topics[..i].contains(t) {
                return Err(Error::Config(format!(
                    "topic `{t}` is given twice: samples, anomalies and rollups topics must differ"
                )));
            }
        }
        Ok(())
    }

    fn topics(&self) -> Vec<String> {
        let mut t = vec![self.samples_topic.clone()];
        t.extend(self.anomalies_topic.clone());
        t.extend(self.rollups_topic.clone());
        t
    }

    fn consumer(&self) -> ConsumerConfig {
        let mut c = ConsumerConfig::new(
            self.kafka.clone(),
            &self.group,
            self.topics(),
            "consumer-influx",
        );
        c.dlq_topic = self.dlq_topic.clone();
        c.batch_records = self.batch_size;
        c.batch_timeout = self.batch_timeout;
        c.shutdown_grace = self.shutdown_grace;
        c
    }
}

/// Totals of one [`run`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Kafka messages consumed.
    pub messages: u64,
    /// Points InfluxDB accepted.
    pub points_written: u64,
    /// Points InfluxDB refused for good (sent to the dead-letter topic, or skipped).
    pub points_rejected: u64,
    /// Messages skipped as undecodable.
    pub decode_errors: u64,
    /// Batches flushed (written and committed).
    pub batches: u64,
}

/// Runs the sink until `shutdown` is cancelled, then writes what it holds, commits and
/// leaves the group.
///
/// Returns an error when the configuration is invalid, the brokers cannot be used, or
/// the last batch could not be written within [`SinkConfig::shutdown_grace`] (its
/// messages stay uncommitted and are consumed again on the next start). InfluxDB
/// outages while running are retried indefinitely.
pub async fn run(
    config: SinkConfig,
    metrics: SinkMetrics,
    health: Health,
    shutdown: CancellationToken,
) -> Result<RunSummary> {
    config.validate()?;
    let writer = InfluxWriter::new(&config.influx, metrics.clone(), health.clone())?;
    tracing::info!(influx = %writer.url(), batch_size = config.batch_size, "writing to InfluxDB");
    let sink = InfluxSink {
        samples_topic: config.samples_topic.clone(),
        rollups_topic: config.rollups_topic.clone(),
        metrics: metrics.clone(),
        batch: Batch::default(),
        decode_errors: 0,
    };
    let writer = BatchWriter {
        writer,
        dlq: config.dlq_topic.is_some(),
        metrics: metrics.clone(),
        written: 0,
        rejected: 0,
    };
    let done = consumer::run(
        config.consumer(),
        sink,
        writer,
        metrics.common.clone(),
        health,
        shutdown.cancelled_owned(),
    )
    .await?;
    Ok(RunSummary {
        messages: done.consumed,
        points_written: done.writer.written,
        points_rejected: done.writer.rejected,
        decode_errors: done.sink.decode_errors,
        batches: done.batches,
    })
}

/// Encodes each message as line protocol into the open batch.
struct InfluxSink {
    samples_topic: String,
    rollups_topic: Option<String>,
    metrics: SinkMetrics,
    batch: Batch,
    decode_errors: u64,
}

impl consumer::Sink for InfluxSink {
    type Batch = Batch;
    type Error = Error;

    fn take(&mut self, msg: &Record<'_>) -> Take {
        let outcome = match msg.payload {
            None => Err("empty payload".to_string()),
            Some(payload) if msg.topic == self.samples_topic => {
                gpustream::wire::decode_sample(payload)
                    .map_err(|e| e.to_string())
                    .and_then(|sample| {
                        line_protocol::encode_sample(&mut self.batch.lines, &sample)
                            .map(|enc| enc.skipped_fields)
                            .map_err(|e| e.to_string())
                    })
            }
            Some(payload) if self.rollups_topic.as_deref() == Some(msg.topic) => {
                serde_json::from_slice::<gpustream::rollup::Rollup>(payload)
                    .map_err(|e| format!("invalid rollup: {e}"))
                    .and_then(|rollup| {
                        line_protocol::encode_rollup(&mut self.batch.lines, &rollup)
                            .map(|()| 0)
                            .map_err(|e| e.to_string())
                    })
            }
            Some(payload) => serde_json::from_slice::<AnomalyEvent>(payload)
                .map_err(|e| format!("invalid anomaly event: {e}"))
                .and_then(|event| {
                    line_protocol::encode_anomaly(&mut self.batch.lines, &event)
                        .map(|()| 0)
                        .map_err(|e| e.to_string())
                }),
        };
        match outcome {
            Ok(skipped_fields) => {
                self.batch.push_point(msg.topic, msg.partition, msg.offset);
                if skipped_fields > 0 {
                    self.metrics.fields_skipped.inc_by(skipped_fields as u64);
                }
                Take::Buffered
            }
            Err(reason) => {
                // Undecodable messages are skipped (the raw samples are in the lake,
                // whose processor dead-letters them); their offsets commit with the batch.
                self.batch.truncate_to_points();
                self.metrics.decode_errors.inc();
                self.decode_errors += 1;
                tracing::warn!(
                    topic = msg.topic,
                    partition = msg.partition,
                    offset = msg.offset,
                    reason = %reason,
                    "skipping undecodable message"
                );
                Take::Done
            }
        }
    }

    fn pending_bytes(&self) -> usize {
        self.batch.lines.len()
    }

    fn seal(&mut self) -> Batch {
        std::mem::take(&mut self.batch)
    }

    fn drop_unsealed(&mut self) {
        self.batch = Batch::default();
    }
}

/// Writes sealed batches: the whole gzip body first, and on a refusal halves until the
/// refused points are isolated; those go to the dead-letter topic.
struct BatchWriter {
    writer: InfluxWriter,
    dlq: bool,
    metrics: SinkMetrics,
    written: u64,
    rejected: u64,
}

impl consumer::Writer for BatchWriter {
    type Batch = Batch;
    type Error = Error;

    async fn write(&mut self, mut batch: Batch, ctx: &WriteContext) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = batch.gzipped()?;
        let (written, refused) = self.deliver(&batch, body, ctx).await?;
        self.written += written;
        self.rejected += refused;
        tracing::debug!(points = batch.points.len(), refused, "batch written");
        Ok(())
    }
}

/// A point InfluxDB refused, with the server's answer.
struct Refused {
    point: usize,
    status: u16,
    message: String,
}

impl BatchWriter {
    /// Writes every point of `batch`; returns (points written, points refused).
    async fn deliver(&self, batch: &Batch, body: Bytes, ctx: &WriteContext) -> Result<(u64, u64)> {
        let abort = ctx.cancel_token();
        let mut refused: Vec<Refused> = Vec::new();
        let mut written = 0u64;
        // Ranges still to write, last = next; halves pushed right first keep line order.
        let mut todo: Vec<std::ops::Range<usize>> = Vec::with_capacity(32);
        todo.push(0..batch.points.len());
        while let Some(range) = todo.pop() {
            if range.is_empty() {
                continue;
            }
            let points = range.len();
            let outcome = if points == batch.points.len() {
                // The whole batch: its body was compressed while it filled.
                self.writer
                    .write_gzipped(body.clone(), points, abort, None)
                    .await?
            } else {
                self.writer
                    .write(batch.lines_of(range.clone()), points, abort, None)
                    .await?
            };
            match outcome {
                WriteOutcome::Accepted => written += points as u64,
                WriteOutcome::Rejected { status, message } if points == 1 => {
                    refused.push(Refused {
                        point: range.start,
                        status,
                        message,
                    })
                }
                WriteOutcome::Rejected { .. } => {
                    let mid = range.start + points / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
            }
        }
        self.metrics.points_rejected.inc_by(refused.len() as u64);
        for r in &refused {
            let point = &batch.points[r.point];
            let line = batch.lines_of(r.point..r.point + 1).trim_end();
            let status = r.status.to_string();
            ctx.dead_letter(
                line.as_bytes(),
                &r.message,
                DeadLetterSource {
                    topic: &point.topic,
                    partition: point.partition,
                    offset: point.offset,
                    key: None,
                },
                &[("http_status", status.as_str())],
            )
            .await?;
            if self.dlq {
                self.metrics.points_dead_lettered.inc();
            }
        }
        Ok((written, refused.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        let base = SinkConfig::new(
            "127.0.0.1:9092",
            "g",
            InfluxConfig::new("http://127.0.0.1:8086", "db"),
        );
        assert!(base.validate().is_ok());
        let mut c = base.clone();
        c.anomalies_topic = Some(c.samples_topic.clone());
        assert!(c.validate().is_err());
        let mut c = base;
        c.rollups_topic = c.anomalies_topic.clone();
        assert!(c.validate().is_err());
    }
}
