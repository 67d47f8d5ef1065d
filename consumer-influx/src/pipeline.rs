//! The consume → encode → write → commit loop.
//!
//! Delivery is at least once: offsets are committed only after the batch holding their
//! messages was written (or definitively rejected) by InfluxDB. A crash or rebalance in
//! between makes the next owner of the partition write those messages again, which is
//! harmless because every point's timestamp and tags are derived from the message alone
//! (see [`crate::line_protocol::sample_timestamp_ns`]): InfluxDB overwrites a point with
//! an identical one.
//!
//! Points InfluxDB refuses for good (a 4xx no retry can fix) are found by splitting the
//! refused batch in halves until single points remain; those go to a dead-letter topic
//! with the server's message, and the rest of the batch is written. While InfluxDB is
//! unreachable the sink stops reading once the next batch is full and, if the write is
//! still blocked after [`PAUSE_AFTER`], pauses its partitions while it keeps polling Kafka
//! (so it stays in its group): memory stays bounded, and consumption resumes by itself
//! when a write gets through.

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

use gpustream::AnomalyEvent;
use gpustream::service::Health;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::influx::{InfluxConfig, InfluxWriter, WriteOutcome};
use crate::line_protocol;
use crate::stats::SinkMetrics;

/// How long a write may hold up a full next batch before the partitions are paused.
const PAUSE_AFTER: Duration = Duration::from_secs(2);

/// Default dead-letter topic of points InfluxDB refused.
pub const INFLUX_DLQ_TOPIC: &str = "gpu-influx-dlq";

/// Everything the sink needs to run.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Kafka bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
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
    /// A configuration with the default batching (5 000 messages / 500 ms), topics
    /// (`gpu-samples`, `gpu-anomalies`, `gpu-rollups-1m`, dead letters to
    /// `gpu-influx-dlq`) and a 10 s shutdown grace period.
    pub fn new(brokers: impl Into<String>, group: impl Into<String>, influx: InfluxConfig) -> Self {
        SinkConfig {
            brokers: brokers.into(),
            samples_topic: gpustream::kafka::SAMPLES_TOPIC.to_string(),
            anomalies_topic: Some(gpustream::kafka::ANOMALIES_TOPIC.to_string()),
            rollups_topic: Some(gpustream::kafka::ROLLUPS_TOPIC.to_string()),
            dlq_topic: Some(INFLUX_DLQ_TOPIC.to_string()),
            group: group.into(),
            influx,
            batch_size: 5000,
            batch_timeout: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(10),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            return Err(Error::Config("no Kafka brokers given".into()));
        }
        if self.samples_topic.is_empty() {
            return Err(Error::Config("the samples topic name is empty".into()));
        }
        if self.rollups_topic.as_deref() == Some(self.samples_topic.as_str())
            || (self.rollups_topic.is_some() && self.rollups_topic == self.anomalies_topic)
        {
            return Err(Error::Config(
                "the rollups topic must differ from the other topics".into(),
            ));
        }
        if let Some(dlq) = &self.dlq_topic {
            let inputs = [
                Some(&self.samples_topic),
                self.anomalies_topic.as_ref(),
                self.rollups_topic.as_ref(),
            ];
            if inputs.contains(&Some(dlq)) {
                return Err(Error::Config(
                    "the dead-letter topic must differ from the input topics".into(),
                ));
            }
        }
        if self.anomalies_topic.as_deref() == Some(self.samples_topic.as_str()) {
            return Err(Error::Config(
                "samples and anomalies topics must differ".into(),
            ));
        }
        if self.group.is_empty() {
            return Err(Error::Config("the consumer group name is empty".into()));
        }
        if self.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        if self.batch_timeout.is_zero() {
            return Err(Error::Config("batch timeout must be positive".into()));
        }
        Ok(())
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

/// Consumer callbacks: librdkafka logs and errors go to `tracing`, failed commits are
/// counted, rebalances are logged.
struct SinkContext {
    metrics: SinkMetrics,
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for SinkContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(offsets = %describe(offsets), "offsets committed"),
            // Nothing new to commit: not a failure.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.metrics.commit_errors.inc();
                tracing::warn!(
                    error = %e,
                    offsets = %describe(offsets),
                    "offset commit failed; the messages will be written again after a restart (idempotent)"
                );
            }
        }
    }
}

/// `topic[partition]@offset, ...` for logs.
fn describe(tpl: &TopicPartitionList) -> String {
    let mut out = String::new();
    for (i, e) in tpl.elements().iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(e.topic());
        out.push('[');
        out.push_str(&e.partition().to_string());
        out.push(']');
        if let Offset::Offset(o) = e.offset() {
            out.push('@');
            out.push_str(&o.to_string());
        }
    }
    out
}

/// Where one point's line ends in [`Batch::lines`], and the message it came from (for
/// the dead-letter record).
struct PointRef {
    end: usize,
    topic: String,
    partition: i32,
    offset: i64,
}

/// Messages accumulated for one write.
#[derive(Default)]
struct Batch {
    /// Line protocol of the decodable messages, one line per point.
    lines: String,
    /// `lines[..compressed]`, gzip-compressed as the lines arrive, so compression overlaps
    /// the previous batch's write instead of delaying this one's.
    gzip: Option<GzEncoder<Vec<u8>>>,
    compressed: usize,
    points: Vec<PointRef>,
    messages: usize,
    /// Per topic partition: offset of the last message + 1 (what to commit).
    /// A linear list: a sink owns a handful of partitions.
    next_offsets: Vec<(String, i32, i64)>,
    opened: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.messages == 0
    }

    fn track(&mut self, topic: &str, partition: i32, offset: i64) {
        if self.opened.is_none() {
            self.opened = Some(Instant::now());
        }
        self.messages += 1;
        let next = offset.saturating_add(1);
        match self
            .next_offsets
            .iter_mut()
            .find(|(t, p, _)| *p == partition && t == topic)
        {
            Some(entry) => entry.2 = entry.2.max(next),
            None => self.next_offsets.push((topic.to_string(), partition, next)),
        }
    }

    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        self.opened.map(|t| t + timeout)
    }

    fn offsets(&self) -> KafkaResult<TopicPartitionList> {
        let mut tpl = TopicPartitionList::with_capacity(self.next_offsets.len());
        for (topic, partition, next) in &self.next_offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        Ok(tpl)
    }

    /// The lines of points `range`.
    fn lines_of(&self, range: std::ops::Range<usize>) -> &str {
        let start = match range.start {
            0 => 0,
            i => self.points[i - 1].end,
        };
        let end = match range.end {
            0 => 0,
            i => self.points[i - 1].end,
        };
        &self.lines[start..end]
    }

    /// Feeds the lines added since the last call to the compressor.
    fn compress_new_lines(&mut self) -> Result<()> {
        let gz = self
            .gzip
            .get_or_insert_with(|| GzEncoder::new(Vec::new(), Compression::fast()));
        gz.write_all(&self.lines.as_bytes()[self.compressed..])
            .map_err(Error::Compress)?;
        self.compressed = self.lines.len();
        Ok(())
    }

    /// The gzip body of every line (finishing the compression started while they arrived).
    fn gzipped(&mut self) -> Result<Bytes> {
        self.compress_new_lines()?;
        let body = match self.gzip.take() {
            Some(gz) => gz.finish().map_err(Error::Compress)?,
            None => Vec::new(),
        };
        // A retried flush of this batch starts compressing from scratch.
        self.compressed = 0;
        Ok(Bytes::from(body))
    }

    fn clear(&mut self) {
        self.lines.clear();
        self.gzip = None;
        self.compressed = 0;
        self.points.clear();
        self.messages = 0;
        self.next_offsets.clear();
        self.opened = None;
    }
}

/// The running sink: one consumer, one writer, one batch.
struct Sink {
    config: SinkConfig,
    consumer: StreamConsumer<SinkContext>,
    writer: InfluxWriter,
    dlq: Option<FutureProducer>,
    metrics: SinkMetrics,
    batch: Batch,
    /// Messages received while `batch` is being written, already encoded: decoding and
    /// encoding overlap the write, and this becomes the next batch.
    next: Batch,
    /// Whether the assigned partitions are paused (`next` full while a write is slow or
    /// failing).
    paused: bool,
    summary: RunSummary,
}

/// A point InfluxDB refused, with the server's answer.
struct Refused {
    point: usize,
    status: u16,
    message: String,
}

/// Runs the sink until `shutdown` is cancelled, then writes what it holds, commits and
/// closes the consumer.
///
/// Returns an error when the configuration is invalid, the consumer cannot be created or
/// subscribed, or the last batch could not be written within
/// [`SinkConfig::shutdown_grace`] (its messages stay uncommitted and are consumed again
/// on the next start). InfluxDB outages while running are retried indefinitely.
pub async fn run(
    config: SinkConfig,
    metrics: SinkMetrics,
    health: Health,
    shutdown: CancellationToken,
) -> Result<RunSummary> {
    config.validate()?;
    let writer = InfluxWriter::new(&config.influx, metrics.clone(), health)?;
    let mut client = gpustream::kafka::consumer_config(&config.brokers, &config.group);
    client.set("client.id", "consumer-influx");
    // What librdkafka prefetches while the sink holds two batches: bounded and modest.
    client.set("queued.max.messages.kbytes", "16384");
    let consumer: StreamConsumer<SinkContext> = client.create_with_context(SinkContext {
        metrics: metrics.clone(),
    })?;
    let mut topics = vec![config.samples_topic.as_str()];
    if let Some(t) = &config.anomalies_topic {
        topics.push(t.as_str());
    }
    if let Some(t) = &config.rollups_topic {
        topics.push(t.as_str());
    }
    consumer.subscribe(&topics)?;
    let dlq = match &config.dlq_topic {
        Some(topic) => {
            gpustream::kafka::ensure_topics(&config.brokers, &[(topic.as_str(), 1)]).await?;
            Some(gpustream::kafka::producer_config(&config.brokers).create::<FutureProducer>()?)
        }
        None => None,
    };
    tracing::info!(
        brokers = %config.brokers,
        group = %config.group,
        topics = ?topics,
        influx = %writer.url(),
        batch_size = config.batch_size,
        batch_timeout_ms = u64::try_from(config.batch_timeout.as_millis()).unwrap_or(u64::MAX),
        "consuming"
    );

    let mut sink = Sink {
        config,
        consumer,
        writer,
        dlq,
        metrics,
        batch: Batch::default(),
        next: Batch::default(),
        paused: false,
        summary: RunSummary::default(),
    };
    let result = sink.run(&shutdown).await;
    let Sink {
        consumer, summary, ..
    } = sink;
    close_consumer(consumer).await;
    result.map(|()| summary)
}

impl Sink {
    async fn run(&mut self, shutdown: &CancellationToken) -> Result<()> {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let deadline = self.batch.deadline(self.config.batch_timeout);
            let due = self.batch.messages >= self.config.batch_size
                || deadline.is_some_and(|d| Instant::now() >= d);
            if !due {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = sleep_until(deadline) => {}
                    received = self.consumer.recv() => match received {
                        Ok(msg) => ingest(&self.config, &self.metrics, &mut self.batch, &mut self.summary, &msg),
                        Err(e) => tracing::warn!(error = %e, "kafka consume error"),
                    },
                }
                continue;
            }
            match self.flush(shutdown, None).await {
                Ok(()) => {}
                // Shutdown while InfluxDB was failing: the last attempt happens below.
                Err(Error::WriteAbandoned { .. }) if shutdown.is_cancelled() => break,
                Err(e) => return Err(e),
            }
        }

        tracing::info!(
            messages = self.batch.messages,
            points = self.batch.points.len(),
            next = self.next.messages,
            "shutting down: writing the last batch"
        );
        let grace_deadline = Instant::now() + self.config.shutdown_grace;
        let never = CancellationToken::new();
        let mut last = self.flush(&never, Some(grace_deadline)).await;
        // A flush starts the next batch with the messages that arrived during the write.
        while last.is_ok() && !self.batch.is_empty() {
            last = self.flush(&never, Some(grace_deadline)).await;
        }
        // Commit synchronously whatever was written, including batches whose asynchronous
        // commit may still be in flight.
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.metrics.commit_errors.inc();
                tracing::warn!(error = %e, "final offset commit failed; messages will be written again after a restart");
            }
        }
        if let Err(e) = &last {
            tracing::error!(
                error = %e,
                "last batch not written; its messages stay uncommitted and will be consumed again"
            );
        }
        last
    }

    /// Writes the batch (refused points to the dead-letter topic), then stores and
    /// commits its offsets and makes what arrived meanwhile the current batch.
    ///
    /// Kafka is polled the whole time, so the group membership survives a long InfluxDB
    /// outage; what arrives is encoded into the next batch. Once that batch is full the
    /// sink stops reading, and pauses the partitions if the write takes longer than
    /// [`PAUSE_AFTER`]: at most two batches (plus librdkafka's bounded prefetch) are held.
    async fn flush(&mut self, abort: &CancellationToken, deadline: Option<Instant>) -> Result<()> {
        if self.batch.is_empty() {
            return self.resume();
        }
        let body = self.batch.gzipped()?;
        let delivered = {
            let Sink {
                config,
                consumer,
                writer,
                dlq,
                metrics,
                batch,
                next,
                paused,
                summary,
            } = &mut *self;
            let work = deliver(
                writer,
                dlq.as_ref().zip(config.dlq_topic.as_deref()),
                metrics,
                batch,
                body,
                abort,
                deadline,
            );
            tokio::pin!(work);
            // Once the next batch is full, stop reading (librdkafka's bounded prefetch
            // queue holds what follows). Only if the write is still not through after
            // PAUSE_AFTER are the partitions paused and polling resumed, to stay in the
            // group: pausing drops the prefetched messages, so doing it on every slow
            // batch would cost a re-fetch each time.
            let mut full_since: Option<Instant> = None;
            loop {
                let full = next.messages >= config.batch_size;
                if full && full_since.is_none() {
                    full_since = Some(Instant::now());
                }
                let pause_at = full_since.map(|t| t + PAUSE_AFTER);
                tokio::select! {
                    result = &mut work => break result,
                    () = sleep_until(pause_at), if full && !*paused => {
                        pause(consumer, metrics, paused);
                    }
                    received = consumer.recv(), if !full || *paused => match received {
                        Ok(msg) => ingest(config, metrics, next, summary, &msg),
                        Err(e) => tracing::warn!(error = %e, "kafka consume error"),
                    },
                }
            }
        };
        // On error both batches are kept: the shutdown path writes them.
        let (written, refused) = delivered?;
        self.summary.points_written += written;
        self.summary.points_rejected += refused;
        self.summary.batches += 1;
        tracing::debug!(
            messages = self.batch.messages,
            points = self.batch.points.len(),
            refused,
            "batch written"
        );
        self.commit_batch();
        self.batch.clear();
        std::mem::swap(&mut self.batch, &mut self.next);
        self.resume()
    }

    /// Resumes consumption if it was paused.
    fn resume(&mut self) -> Result<()> {
        if !self.paused {
            return Ok(());
        }
        let assignment = self.consumer.assignment()?;
        self.consumer.resume(&assignment)?;
        self.paused = false;
        self.metrics.paused.set(0);
        tracing::debug!("batch written: consumption resumed");
        Ok(())
    }

    /// Stores the batch's offsets and starts an asynchronous commit of them.
    fn commit_batch(&self) {
        let tpl = match self.batch.offsets() {
            Ok(tpl) => tpl,
            Err(e) => {
                self.metrics.commit_errors.inc();
                tracing::warn!(error = %e, "cannot build offset list");
                return;
            }
        };
        if let Err(e) = self.consumer.store_offsets(&tpl) {
            self.metrics.commit_errors.inc();
            tracing::warn!(error = %e, offsets = %describe(&tpl), "cannot store offsets");
        }
        // librdkafka reports per partition: a partition revoked since its messages were
        // read refuses the store; its new owner reads (and idempotently rewrites) them.
        for e in tpl.elements() {
            if let Err(err) = e.error() {
                self.metrics.commit_errors.inc();
                tracing::warn!(
                    topic = e.topic(),
                    partition = e.partition(),
                    error = %err,
                    "offset not stored (partition no longer assigned?)"
                );
            }
        }
        match self.consumer.commit_consumer_state(CommitMode::Async) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.metrics.commit_errors.inc();
                tracing::warn!(error = %e, "offset commit failed");
            }
        }
    }
}

/// Pauses every assigned partition (again, after a rebalance assigned new ones).
fn pause(consumer: &StreamConsumer<SinkContext>, metrics: &SinkMetrics, paused: &mut bool) {
    let paused_now = consumer
        .assignment()
        .and_then(|assignment| consumer.pause(&assignment));
    match paused_now {
        Ok(()) => {
            // Debug level: during a catch-up this happens on every slow batch; an outage
            // is already reported by the writer's retry warnings and /health.
            if !*paused {
                tracing::debug!("two batches waiting: consumption paused until the write succeeds");
            }
            *paused = true;
            metrics.paused.set(1);
        }
        Err(e) => tracing::warn!(error = %e, "cannot pause consumption"),
    }
}

/// Writes every point of `batch`: a refused batch is split in halves until the points
/// InfluxDB refuses are isolated; those go to the dead-letter topic (or are logged and
/// skipped without one). Returns (points written, points refused).
async fn deliver(
    writer: &InfluxWriter,
    dlq: Option<(&FutureProducer, &str)>,
    metrics: &SinkMetrics,
    batch: &Batch,
    body: Bytes,
    abort: &CancellationToken,
    deadline: Option<Instant>,
) -> Result<(u64, u64)> {
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
            writer
                .write_gzipped(body.clone(), points, abort, deadline)
                .await?
        } else {
            writer
                .write(batch.lines_of(range.clone()), points, abort, deadline)
                .await?
        };
        match outcome {
            WriteOutcome::Accepted => written += points as u64,
            WriteOutcome::Rejected { status, message } if points == 1 => refused.push(Refused {
                point: range.start,
                status,
                message,
            }),
            WriteOutcome::Rejected { .. } => {
                let mid = range.start + points / 2;
                todo.push(mid..range.end);
                todo.push(range.start..mid);
            }
        }
    }
    if refused.is_empty() {
        return Ok((written, 0));
    }
    metrics.points_rejected.inc_by(refused.len() as u64);
    match dlq {
        Some((producer, topic)) => dead_letter(producer, topic, batch, &refused).await?,
        None => {
            for r in &refused {
                tracing::error!(
                    status = r.status,
                    error = %r.message,
                    line = batch.lines_of(r.point..r.point + 1).trim_end(),
                    "InfluxDB refused a point; skipped (no dead-letter topic configured)"
                );
            }
        }
    }
    metrics.points_dead_lettered.inc_by(refused.len() as u64);
    Ok((written, refused.len() as u64))
}

/// Sends refused points to the dead-letter topic and waits until Kafka has them: only
/// then may the batch's offsets be committed.
async fn dead_letter(
    producer: &FutureProducer,
    topic: &str,
    batch: &Batch,
    refused: &[Refused],
) -> Result<()> {
    let mut pending = Vec::with_capacity(refused.len());
    for r in refused {
        let point = &batch.points[r.point];
        let line = batch.lines_of(r.point..r.point + 1).trim_end();
        tracing::error!(
            status = r.status,
            error = %r.message,
            source_topic = %point.topic,
            source_partition = point.partition,
            source_offset = point.offset,
            dlq = topic,
            "InfluxDB refused a point; sent to the dead-letter topic"
        );
        let status = r.status.to_string();
        let headers = gpustream::kafka::dead_letter_headers(
            &r.message,
            &point.topic,
            point.partition,
            point.offset,
        )
        .insert(Header {
            key: "http_status",
            value: Some(status.as_str()),
        });
        let record = FutureRecord::<(), str>::to(topic)
            .payload(line)
            .headers(headers);
        pending.push(producer.send(record, Duration::from_secs(30)));
    }
    for delivery in pending {
        delivery.await.map_err(|(e, _)| Error::Kafka(e))?;
    }
    Ok(())
}

/// Decodes one message into the batch; undecodable messages are counted, logged and
/// skipped (their offset still advances with the batch).
fn ingest(
    config: &SinkConfig,
    metrics: &SinkMetrics,
    batch: &mut Batch,
    summary: &mut RunSummary,
    msg: &impl Message,
) {
    metrics.messages_consumed.inc();
    summary.messages += 1;
    batch.track(msg.topic(), msg.partition(), msg.offset());
    let outcome = match msg.payload() {
        None => Err("empty payload".to_string()),
        Some(payload) if msg.topic() == config.samples_topic => {
            gpustream::wire::decode_sample(payload)
                .map_err(|e| e.to_string())
                .and_then(|sample| {
                    line_protocol::encode_sample(&mut batch.lines, &sample)
                        .map(|enc| enc.skipped_fields)
                        .map_err(|e| e.to_string())
                })
        }
        Some(payload) if config.rollups_topic.as_deref() == Some(msg.topic()) => {
            serde_json::from_slice::<gpustream::rollup::Rollup>(payload)
                .map_err(|e| format!("invalid rollup: {e}"))
                .and_then(|rollup| {
                    line_protocol::encode_rollup(&mut batch.lines, &rollup)
                        .map(|()| 0)
                        .map_err(|e| e.to_string())
                })
        }
        Some(payload) => serde_json::from_slice::<AnomalyEvent>(payload)
            .map_err(|e| format!("invalid anomaly event: {e}"))
            .and_then(|event| {
                line_protocol::encode_anomaly(&mut batch.lines, &event)
                    .map(|()| 0)
                    .map_err(|e| e.to_string())
            }),
    };
    match outcome {
        Ok(skipped_fields) => {
            batch.points.push(PointRef {
                end: batch.lines.len(),
                topic: msg.topic().to_string(),
                partition: msg.partition(),
                offset: msg.offset(),
            });
            if let Err(e) = batch.compress_new_lines() {
                // In-memory compression does not fail in practice; if it ever does, the
                // flush compresses the whole batch again from scratch.
                tracing::warn!(error = %e, "gzip");
                batch.gzip = None;
                batch.compressed = 0;
            }
            if skipped_fields > 0 {
                metrics.fields_skipped.inc_by(skipped_fields as u64);
            }
        }
        Err(reason) => {
            metrics.decode_errors.inc();
            summary.decode_errors += 1;
            tracing::warn!(
                topic = msg.topic(),
                partition = msg.partition(),
                offset = msg.offset(),
                reason = %reason,
                "skipping undecodable message"
            );
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Leaves the group and destroys the consumer on a separate thread, waiting at most 10 s:
/// librdkafka's destroy occasionally hangs, and shutdown must not.
async fn close_consumer<C: ConsumerContext + 'static>(consumer: StreamConsumer<C>) {
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
    consumer.unsubscribe();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = tx.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to close the Kafka consumer");
        return;
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, rx).await.is_err() {
        tracing::warn!("Kafka consumer did not close within 10 s; leaving it behind");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_tracks_highest_offset_per_partition() {
        let mut b = Batch::default();
        b.track("t", 0, 5);
        b.track("t", 1, 2);
        b.track("t", 0, 7);
        b.track("u", 0, 1);
        b.track("t", 0, 6);
        assert_eq!(b.messages, 5);
        assert_eq!(
            b.next_offsets,
            vec![
                ("t".to_string(), 0, 8),
                ("t".to_string(), 1, 3),
                ("u".to_string(), 0, 2)
            ]
        );
        let tpl = b.offsets().expect("valid offsets");
        assert_eq!(tpl.count(), 3);
        b.clear();
        assert!(b.is_empty());
        assert!(b.deadline(Duration::from_secs(1)).is_none());
    }

    #[test]
    fn config_is_validated() {
        let base = SinkConfig::new(
            "127.0.0.1:9092",
            "g",
            InfluxConfig::new("http://127.0.0.1:8086", "db"),
        );
        assert!(base.validate().is_ok());
        let mut c = base.clone();
        c.batch_size = 0;
        assert!(c.validate().is_err());
        let mut c = base.clone();
        c.anomalies_topic = Some(c.samples_topic.clone());
        assert!(c.validate().is_err());
        let mut c = base;
        c.brokers = " ".into();
        assert!(c.validate().is_err());
    }
}
