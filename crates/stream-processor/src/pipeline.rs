//! The consume → detect → buffer → publish → commit loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use gpustream::AnomalyEvent;
use gpustream::rollup::Rollup;
use gpustream_lake::Lake;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::lake_writer::write_encoded_range;
use crate::metrics::ProcessorMetrics;
use crate::progress::{PartitionProgress, ProgressStore};
use crate::rollups::{RollupConfig, Windower};

/// Settings of one processor instance.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Brokers and client properties (TLS, SASL, ...).
    pub kafka: gpustream_runtime::kafka::KafkaSettings,
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
}

/// What a run did (for logs and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Messages consumed.
    pub consumed: u64,
    /// Sample rows written to new lake files.
    pub rows_written: u64,
    /// Messages sent to the DLQ.
    pub dead_lettered: u64,
    /// Anomaly transitions emitted.
    pub anomalies: u64,
    /// Flushes committed.
    pub flushes: u64,
    /// Rollup windows emitted.
    pub rollups: u64,
    /// Samples that arrived after their rollup window closed (still in the lake).
    pub late: u64,
}

#[derive(Default)]
struct PartitionBuffer {
    first: i64,
    last: i64,
    /// Sample rows as Arrow columns: a decoded `Sample` is ~1 KB, its row far less.
    samples: crate::lake_writer::SampleRows,
    /// The range's sample files once encoded: a retried flush publishes the same bytes.
    encoded: Option<Vec<(String, u64, bytes::Bytes)>>,
    anomalies: Vec<AnomalyEvent>,
    rollups: Vec<Rollup>,
    /// Rollups closed without a new message (idle GPU, shutdown): the range is the last
    /// offset seen, and the file name gets a suffix of its own.
    closing: bool,
    /// Payload bytes of the messages in the range (what bounds memory and file size).
    bytes: usize,
}

/// Raises a flag on every rebalance, so the loop drops what it no longer owns.
///
/// Rebalance callbacks run inside `recv`, and the loop checks the flag after every
/// `recv` before it can flush, so an instance never publishes a partition it lost in a
/// rebalance it took part in. Known limit: an instance stalled in one flush for longer
/// than `max.poll.interval.ms` (librdkafka default 5 min) is expelled without noticing
/// until that flush ends, and the new owner may cut the same offsets differently; the
/// progress record is not fenced by the group generation.
pub struct RebalanceFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl rdkafka::ClientContext for RebalanceFlag {}

impl rdkafka::consumer::ConsumerContext for RebalanceFlag {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        _: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One stream-processor instance.
pub struct Processor {
    cfg: ProcessorConfig,
    consumer: std::sync::Arc<StreamConsumer<RebalanceFlag>>,
    producer: FutureProducer,
    lake: Lake,
    detector: Detector,
    metrics: ProcessorMetrics,
    health: gpustream_runtime::service::Health,
    buffers: BTreeMap<i32, PartitionBuffer>,
    /// When the oldest unflushed message arrived.
    oldest: Option<Instant>,
    buffered: usize,
    /// Payload bytes buffered over all partitions.
    buffered_bytes: usize,
    /// Flush when this many payload bytes are buffered.
    flush_bytes: usize,
    dlq_pending: Vec<rdkafka::producer::DeliveryFuture>,
    windower: Windower,
    closed: Vec<(i32, Rollup)>,
    progress: ProgressStore,
    /// Progress records of the partitions seen since the last rebalance.
    known: BTreeMap<i32, PartitionProgress>,
    rebalanced: std::sync::Arc<std::sync::atomic::AtomicBool>,
    last_offset: BTreeMap<i32, i64>,
    stats: RunStats,
    /// Alert routing (Alertmanager, webhook), when configured.
    alerter: Option<crate::alerting::Alerter>,
}

impl Processor {
    /// Connects to Kafka and subscribes.
    pub fn new(
        cfg: ProcessorConfig,
        lake: Lake,
        detector: Detector,
        metrics: ProcessorMetrics,
        health: gpustream_runtime::service::Health,
    ) -> Result<Self> {
        if cfg.flush_rows == 0 {
            return Err(Error::Config("flush rows must be at least 1".into()));
        }
        let rebalanced = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consumer: StreamConsumer<RebalanceFlag> = cfg
            .kafka
            .consumer_config(&cfg.group)
            // librdkafka prefetches up to 64 MiB by default: more than the buffers
            // themselves. 16 MiB still keeps a fetch ahead of the processor.
            .set("queued.max.messages.kbytes", PREFETCH_KBYTES)
            .create_with_context(RebalanceFlag(rebalanced.clone()))?;
        consumer.subscribe(&[&cfg.topic])?;
        let producer: FutureProducer = cfg.kafka.producer_config().create()?;
        let cfg_rollup = cfg.rollup;
        let progress = ProgressStore::new(lake.clone(), &cfg.topic);
        Ok(Processor {
            cfg,
            consumer: std::sync::Arc::new(consumer),
            producer,
            lake,
            detector,
            metrics,
            health,
            buffers: BTreeMap::new(),
            oldest: None,
            buffered: 0,
            buffered_bytes: 0,
            flush_bytes: DEFAULT_FLUSH_BYTES,
            dlq_pending: Vec::new(),
            windower: Windower::new(cfg_rollup),
            closed: Vec::new(),
            progress,
            known: BTreeMap::new(),
            rebalanced,
            last_offset: BTreeMap::new(),
            stats: RunStats::default(),
            alerter: None,
        })
    }

    /// Also routes every anomaly transition to `alerter` once its range is published
    /// (never waiting on it: see [`crate::alerting`]).
    pub fn with_alerter(mut self, alerter: Option<crate::alerting::Alerter>) -> Self {
        self.alerter = alerter;
        self
    }

    /// Also flushes when the buffered messages' payloads reach `bytes` (default
    /// [`DEFAULT_FLUSH_BYTES`]): files roll by size as well as by row count and age, and
    /// memory stays bounded whatever the sample width.
    pub fn with_flush_bytes(mut self, bytes: usize) -> Self {
        self.flush_bytes = bytes.max(1);
        self
    }

    /// Runs until `shutdown` resolves, then flushes, commits and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<RunStats> {
        tokio::pin!(shutdown);
        // A handle of our own, so a borrowed message does not borrow `self`.
        let consumer = self.consumer.clone();
        let lag_monitor = spawn_lag_monitor(
            self.consumer.clone(),
            self.cfg.topic.clone(),
            self.metrics.clone(),
            LAG_INTERVAL,
        );
        tracing::info!(topic = %self.cfg.topic, group = %self.cfg.group, lake = %self.lake.root_url(), "stream processor started");
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                m = tokio::time::timeout(Duration::from_millis(200), consumer.recv()) => m,
            };
            // Checked whatever `recv` returned: rebalance callbacks run inside it, and a
            // flush after an idle timeout must not publish partitions this instance lost.
            if self
                .rebalanced
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                self.after_rebalance();
            }
            match next {
                Ok(Ok(msg)) => {
                    let partition = msg.partition();
                    if !self.known.contains_key(&partition) {
                        let p = self.progress.load(partition).await?;
                        tracing::info!(partition, published_through = ?p.published_through, pending = ?p.pending, "partition progress");
                        self.known.insert(partition, p);
                    }
                    self.handle(&msg);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consume error");
                    self.health.fail("kafka", e.to_string());
                }
                Err(_) => {
                    // Idle: close the windows of GPUs that went silent.
                    self.windower.close_idle(&mut self.closed);
                    self.take_closed_rollups();
                }
            }
            let pinned_done = self
                .buffers
                .iter()
                .any(|(p, b)| self.pinned_end(*p) == Some(b.last));
            let due = pinned_done
                || self.buffered >= self.cfg.flush_rows
                || self.buffered_bytes >= self.flush_bytes
                || self
                    .oldest
                    .is_some_and(|t| t.elapsed() >= self.cfg.flush_interval);
            if due {
                self.flush_with_retry(&mut shutdown).await?;
            }
        }
        tracing::info!("shutting down: publishing buffered samples and committing");
        lag_monitor.abort();
        self.windower.close_all(&mut self.closed);
        self.take_closed_rollups();
        self.flush_with_retry(&mut std::pin::pin!(std::future::pending::<()>()))
            .await?;
        if let Some(a) = self.alerter.take() {
            a.finish(Duration::from_secs(5)).await;
        }
        tracing::info!(?self.stats, "stream processor stopped");
        Ok(self.stats)
    }

    /// Forgets progress records and drops buffers of partitions no longer assigned: the
    /// new owner re-reads them from the committed offsets.
    ///
    /// When the assignment cannot be read, everything is dropped: publishing a partition
    /// another instance now owns could cut its offsets differently and duplicate rows,
    /// while dropping only means re-reading from the committed offsets.
    fn after_rebalance(&mut self) {
        self.known.clear();
        let owned: std::collections::HashSet<i32> = match self.consumer.assignment() {
            Ok(tpl) => tpl.elements().iter().map(|e| e.partition()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the assignment after a rebalance; dropping every buffer");
                std::collections::HashSet::new()
            }
        };
        tracing::info!(partitions = ?owned, "partitions assigned after rebalance");
        self.metrics.assigned_partitions.set(owned.len() as i64);
        self.buffers.retain(|p, _| owned.contains(p));
        self.last_offset.retain(|p, _| owned.contains(p));
        self.buffered = self.buffers.values().map(|b| b.samples.len()).sum();
        self.buffered_bytes = self.buffers.values().map(|b| b.bytes).sum();
        if self.buffers.is_empty() {
            self.oldest = None;
        }
        self.metrics.buffered.set(self.buffered as i64);
    }

    /// Replays an already-published message into the detector and windows only, so their
    /// state is rebuilt without writing anything twice.
    fn replay_into_state(&mut self, msg: &BorrowedMessage<'_>) {
        let Some(Ok(sample)) = msg.payload().map(gpustream::wire::decode_sample) else {
            return;
        };
        let mut scratch = Vec::new();
        self.detector.observe(&sample, &mut scratch);
        let mut rollups = Vec::new();
        self.windower
            .observe(&sample, msg.partition(), &mut rollups);
    }

    fn handle(&mut self, msg: &BorrowedMessage<'_>) {
        self.stats.consumed += 1;
        self.metrics.records_in.inc();
        let (partition, offset) = (msg.partition(), msg.offset());
        if self
            .known
            .get(&partition)
            .is_some_and(|p| p.is_published(offset))
        {
            self.replay_into_state(msg);
            return;
        }
        // A buffer's range starts at the first offset consumed since the last commit.
        let buf = self
            .buffers
            .entry(partition)
            .or_insert_with(|| PartitionBuffer {
                first: offset,
                last: offset,
                ..Default::default()
            });
        buf.last = offset;
        let size = msg.payload_len();
        buf.bytes += size;
        self.buffered_bytes += size;
        self.last_offset.insert(partition, offset);
        self.oldest.get_or_insert_with(Instant::now);
        let decoded = match msg.payload() {
            Some(p) => gpustream::wire::decode_sample(p).map_err(|e| e.to_string()),
            None => Err("empty message".to_string()),
        };
        match decoded {
            Ok(sample) => {
                let before = buf.anomalies.len();
                self.detector.observe(&sample, &mut buf.anomalies);
                for a in &buf.anomalies[before..] {
                    self.metrics
                        .anomalies
                        .with_label_values(&[&a.rule, a.state.as_str()])
                        .inc();
                }
                if !self.windower.observe(&sample, partition, &mut self.closed) {
                    self.stats.late += 1;
                    self.metrics.late.inc();
                }
                buf.rollups.extend(self.closed.drain(..).map(|(_, r)| r));
                buf.samples.push(&sample);
                self.buffered += 1;
                self.metrics.buffered.set(self.buffered as i64);
            }
            Err(reason) => {
                tracing::warn!(partition, offset, %reason, "undecodable message sent to the dead-letter topic");
                let headers = gpustream_runtime::kafka::dead_letter_headers(
                    &reason,
                    &self.cfg.topic,
                    partition,
                    offset,
                );
                let mut record = FutureRecord::to(&self.cfg.dlq_topic)
                    .headers(headers)
                    .payload(msg.payload().unwrap_or_default());
                if let Some(k) = msg.key() {
                    record = record.key(k);
                }
                match self.producer.send_result(record) {
                    Ok(f) => self.dlq_pending.push(f),
                    Err((e, _)) => {
                        // Without the DLQ copy we must not commit past it: fail the flush.
                        tracing::error!(error = %e, "cannot queue dead-letter message");
                        self.health.fail("kafka", format!("dead-letter: {e}"));
                    }
                }
                self.stats.dead_lettered += 1;
                self.metrics.dlq.inc();
            }
        }
    }

    /// Moves rollups closed outside a message (idle, shutdown) into their partition's
    /// buffer, opening a closing buffer at the last offset seen when there is none.
    fn take_closed_rollups(&mut self) {
        for (partition, rollup) in self.closed.drain(..) {
            let last = self.last_offset.get(&partition).copied().unwrap_or(0);
            let buf = self
                .buffers
                .entry(partition)
                .or_insert_with(|| PartitionBuffer {
                    first: last,
                    last,
                    closing: true,
                    ..Default::default()
                });
            buf.rollups.push(rollup);
            self.oldest.get_or_insert_with(Instant::now);
        }
    }

    async fn flush_with_retry(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<()> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.flush().await {
                Ok(()) => {
                    self.health.ok("lake");
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.flush_errors.inc();
                    self.health.fail("lake", format!("flush: {e}"));
                    tracing::error!(error = %e, retry_in = ?backoff, "flush failed; nothing committed, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.as_mut() => return Err(e),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// End offset a partition's next flush must stop at, while a pending range recorded
    /// before a crash is being redone.
    fn pinned_end(&self, partition: i32) -> Option<i64> {
        let p = self.known.get(&partition)?;
        p.pinned_end().filter(|end| !p.is_published(*end))
    }

    /// Publishes every buffered partition range that may be cut now, then commits.
    ///
    /// Per partition: record the range as pending, publish its files, record it as
    /// published; then commit the Kafka offsets of every flushed partition.
    async fn flush(&mut self) -> Result<()> {
        if self.buffers.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        // Dead-lettered messages must be in the DLQ before their offsets are committed.
        for f in self.dlq_pending.drain(..) {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(Error::Kafka(e)),
                Err(_) => {
                    return Err(Error::Kafka(rdkafka::error::KafkaError::Canceled));
                }
            }
        }
        let mut tpl = TopicPartitionList::new();
        let ready: Vec<i32> = self
            .buffers
            .iter()
            .filter(|(p, b)| self.pinned_end(**p).is_none_or(|end| b.last >= end))
            .map(|(p, _)| *p)
            .collect();
        for partition in ready {
            if let Some(b) = self.buffers.get_mut(&partition)
                && b.encoded.is_none()
            {
                b.encoded = Some(b.samples.encode()?);
            }
            let Some(buf) = self.buffers.get(&partition) else {
                continue;
            };
            let before = self.known.get(&partition).copied().unwrap_or_default();
            if !buf.closing {
                let pending = PartitionProgress {
                    pending: Some((buf.first, buf.last)),
                    ..before
                };
                self.progress.store(partition, &pending).await?;
            }
            let range = crate::lake_writer::Range {
                topic: &self.cfg.topic,
                partition,
                first: buf.first,
                last: buf.last,
                closing: buf.closing,
            };
            let stats = write_encoded_range(
                &self.lake,
                &range,
                buf.encoded.as_deref().unwrap_or_default(),
                &buf.anomalies,
                &buf.rollups,
            )
            .await?;
            self.metrics.files.inc_by(stats.files);
            self.metrics.bytes.inc_by(stats.bytes);
            self.metrics.records_out.inc_by(stats.rows);
            self.stats.rows_written += stats.rows;
            let anomalies = buf.anomalies.iter().map(|a| (a.key(), a));
            send_json(&self.producer, &self.cfg.anomalies_topic, anomalies).await?;
            if let Some(a) = &self.alerter {
                a.dispatch(&buf.anomalies);
            }
            let rollups = buf.rollups.iter().map(|r| (r.key(), r));
            send_json(&self.producer, &self.cfg.rollups_topic, rollups).await?;
            if !buf.closing {
                let through = before
                    .published_through
                    .map_or(buf.last, |p| p.max(buf.last));
                let done = PartitionProgress {
                    published_through: Some(through),
                    pending: None,
                };
                self.progress.store(partition, &done).await?;
                self.known.insert(partition, done);
            }
            self.stats.anomalies += buf.anomalies.len() as u64;
            self.stats.rollups += buf.rollups.len() as u64;
            if !buf.closing {
                // A closing buffer consumed nothing new: committing it could move the
                // group's offset backwards.
                tpl.add_partition_offset(&self.cfg.topic, partition, Offset::Offset(buf.last + 1))?;
            }
            self.buffers.remove(&partition);
        }
        if tpl.count() > 0 {
            // The lake's progress records are the truth; a failed commit (e.g. the
            // partition moved in a rebalance) only means a longer replay next time.
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(error = %e, "offset commit failed; the lake's progress record stays authoritative");
            }
        }
        self.stats.flushes += 1;
        self.buffered = self.buffers.values().map(|b| b.samples.len()).sum();
        self.buffered_bytes = self.buffers.values().map(|b| b.bytes).sum();
        self.oldest = (!self.buffers.is_empty()).then(Instant::now);
        self.metrics.buffered.set(self.buffered as i64);
        self.metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(elapsed = ?started.elapsed(), "flushed and committed");
        Ok(())
    }
}

/// Default of [`Processor::with_flush_bytes`]: 16 MiB of message payloads, which keeps
/// the process under 150 MB while it catches up on a backlog (see BENCHMARKS.md).
pub const DEFAULT_FLUSH_BYTES: usize = 16 << 20;

/// librdkafka's `queued.max.messages.kbytes` for the processor's consumer.
const PREFETCH_KBYTES: &str = "16384";

/// How often the consumer lag is measured against the broker.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Lag of one partition: messages between the consumer's position and the broker's high
/// watermark, never negative.
///
/// The high watermark comes from the broker's `ListOffsets`; Tansu answers with the base
/// offset of the newest record batch + 1 rather than the end offset (1111 messages in
/// batches of 1, 10, 100 and 1000 gave 924), so there the lag under-reports by up to the
/// newest batch, and a watermark behind the position is clamped to no lag.
///
/// ```
/// use stream_processor::pipeline::partition_lag;
/// assert_eq!(partition_lag(100, 40), 60);
/// assert_eq!(partition_lag(100, 100), 0);
/// assert_eq!(partition_lag(90, 100), 0);
/// ```
pub fn partition_lag(high_watermark: i64, position: i64) -> i64 {
    (high_watermark - position).max(0)
}

/// Measures the lag of every assigned partition every `every`, on a blocking thread
/// (watermark requests wait on the broker), into `stream_processor_consumer_lag`.
fn spawn_lag_monitor(
    consumer: std::sync::Arc<StreamConsumer<RebalanceFlag>>,
    topic: String,
    metrics: ProcessorMetrics,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported = std::collections::HashSet::new();
        loop {
            tick.tick().await;
            let (consumer, topic, metrics) = (consumer.clone(), topic.clone(), metrics.clone());
            let previous = reported.clone();
            let measured = tokio::task::spawn_blocking(move || {
                measure_lag(&consumer, &topic, &metrics, &previous)
            })
            .await;
            match measured {
                Ok(Ok(now)) => reported = now,
                Ok(Err(e)) => tracing::debug!(error = %e, "consumer lag not measured this time"),
                Err(e) => tracing::debug!(error = %e, "consumer lag task failed"),
            }
        }
    })
}

/// Sets the lag of each assigned partition and removes the series of partitions in
/// `previous` that are no longer assigned; returns the partitions reported.
fn measure_lag(
    consumer: &StreamConsumer<RebalanceFlag>,
    topic: &str,
    metrics: &ProcessorMetrics,
    previous: &std::collections::HashSet<i32>,
) -> std::result::Result<std::collections::HashSet<i32>, rdkafka::error::KafkaError> {
    let timeout = Duration::from_secs(5);
    let assigned = consumer.assignment()?;
    metrics.assigned_partitions.set(assigned.count() as i64);
    let positions = consumer.position()?;
    // Before the first fetch the position is unknown: the committed offset is where the
    // consumer will start.
    let mut committed = None;
    let mut seen = std::collections::HashSet::new();
    for e in assigned.elements_for_topic(topic) {
        let partition = e.partition();
        seen.insert(partition);
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let position = match positions
            .find_partition(topic, partition)
            .map(|p| p.offset())
        {
            Some(Offset::Offset(o)) => o,
            _ => {
                if committed.is_none() {
                    committed = Some(consumer.committed(timeout)?);
                }
                match committed
                    .as_ref()
                    .and_then(|c| c.find_partition(topic, partition))
                    .map(|p| p.offset())
                {
                    Some(Offset::Offset(o)) => o,
                    _ => low,
                }
            }
        };
        metrics
            .consumer_lag
            .with_label_values(&[&partition.to_string()])
            .set(partition_lag(high, position));
    }
    // Partitions that moved to another instance are that instance's to report.
    for gone in previous.difference(&seen) {
        let _ = metrics
            .consumer_lag
            .remove_label_values(&[&gone.to_string()]);
    }
    Ok(seen)
}

/// Sends keyed JSON records to `topic` and waits for every acknowledgement (nothing when
/// the topic is disabled with an empty name).
///
/// All records are queued before the first acknowledgement is awaited: one round trip
/// per record would cap a flush at a few hundred records per second.
async fn send_json<T: serde::Serialize>(
    producer: &FutureProducer,
    topic: &str,
    records: impl Iterator<Item = (String, T)>,
) -> Result<()> {
    if topic.is_empty() {
        return Ok(());
    }
    let encoded = records
        .map(|(key, value)| {
            serde_json::to_vec(&value)
                .map(|payload| (key, payload))
                .map_err(Error::from)
        })
        .collect::<Result<Vec<_>>>()?;
    let deliveries = encoded.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(30),
        )
    });
    futures::future::try_join_all(deliveries)
        .await
        .map_err(|(e, _)| Error::Kafka(e))?;
    Ok(())
}
