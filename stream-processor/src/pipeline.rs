//! The consume → detect → buffer → publish → commit loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use gpustream::lake::Lake;
use gpustream::{AnomalyEvent, Sample};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::detect::Detector;
use crate::error::{Error, Result};
use crate::lake_writer::write_range;
use crate::metrics::ProcessorMetrics;

/// Settings of one processor instance.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic of samples.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Topic anomaly events go to (empty: none).
    pub anomalies_topic: String,
    /// Dead-letter topic for undecodable messages.
    pub dlq_topic: String,
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
}

#[derive(Default)]
struct PartitionBuffer {
    first: i64,
    last: i64,
    samples: Vec<Sample>,
    anomalies: Vec<AnomalyEvent>,
}

/// One stream-processor instance.
pub struct Processor {
    cfg: ProcessorConfig,
    consumer: std::sync::Arc<StreamConsumer>,
    producer: FutureProducer,
    lake: Lake,
    detector: Detector,
    metrics: ProcessorMetrics,
    health: gpustream::service::Health,
    buffers: BTreeMap<i32, PartitionBuffer>,
    /// When the oldest unflushed message arrived.
    oldest: Option<Instant>,
    buffered: usize,
    dlq_pending: Vec<rdkafka::producer::DeliveryFuture>,
    stats: RunStats,
}

impl Processor {
    /// Connects to Kafka and subscribes.
    pub fn new(
        cfg: ProcessorConfig,
        lake: Lake,
        detector: Detector,
        metrics: ProcessorMetrics,
        health: gpustream::service::Health,
    ) -> Result<Self> {
        if cfg.flush_rows == 0 {
            return Err(Error::Config("flush rows must be at least 1".into()));
        }
        let consumer: StreamConsumer = gpustream::kafka::consumer_config(&cfg.brokers, &cfg.group).create()?;
        consumer.subscribe(&[&cfg.topic])?;
        let producer: FutureProducer = gpustream::kafka::producer_config(&cfg.brokers).create()?;
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
            dlq_pending: Vec::new(),
            stats: RunStats::default(),
        })
    }

    /// Runs until `shutdown` resolves, then flushes, commits and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<RunStats> {
        tokio::pin!(shutdown);
        // A handle of our own, so a borrowed message does not borrow `self`.
        let consumer = self.consumer.clone();
        tracing::info!(topic = %self.cfg.topic, group = %self.cfg.group, lake = %self.lake.root_url(), "stream processor started");
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                m = tokio::time::timeout(Duration::from_millis(200), consumer.recv()) => m,
            };
            match next {
                Ok(Ok(msg)) => self.handle(&msg),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consume error");
                    self.health.fail(format!("kafka: {e}"));
                }
                Err(_) => {} // idle: fall through to the age check
            }
            let due = self.buffered >= self.cfg.flush_rows
                || self.oldest.is_some_and(|t| t.elapsed() >= self.cfg.flush_interval);
            if due {
                self.flush_with_retry(&mut shutdown).await?;
            }
        }
        tracing::info!("shutting down: publishing buffered samples and committing");
        self.flush_with_retry(&mut std::pin::pin!(std::future::pending::<()>())).await?;
        tracing::info!(?self.stats, "stream processor stopped");
        Ok(self.stats)
    }

    fn handle(&mut self, msg: &BorrowedMessage<'_>) {
        self.stats.consumed += 1;
        self.metrics.records_in.inc();
        let (partition, offset) = (msg.partition(), msg.offset());
        // A buffer's range starts at the first offset consumed since the last commit.
        let buf = self.buffers.entry(partition).or_insert_with(|| PartitionBuffer { first: offset, last: offset, ..Default::default() });
        buf.last = offset;
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
                    self.metrics.anomalies.with_label_values(&[&a.rule, a.state.as_str()]).inc();
                }
                buf.samples.push(sample);
                self.buffered += 1;
                self.metrics.buffered.set(self.buffered as i64);
            }
            Err(reason) => {
                tracing::warn!(partition, offset, %reason, "undecodable message sent to the dead-letter topic");
                let headers = OwnedHeaders::new()
                    .insert(Header { key: "error", value: Some(reason.as_str()) })
                    .insert(Header { key: "source_topic", value: Some(self.cfg.topic.as_str()) })
                    .insert(Header { key: "source_partition", value: Some(&partition.to_string()) })
                    .insert(Header { key: "source_offset", value: Some(&offset.to_string()) });
                let mut record = FutureRecord::to(&self.cfg.dlq_topic).headers(headers).payload(msg.payload().unwrap_or_default());
                if let Some(k) = msg.key() {
                    record = record.key(k);
                }
                match self.producer.send_result(record) {
                    Ok(f) => self.dlq_pending.push(f),
                    Err((e, _)) => {
                        // Without the DLQ copy we must not commit past it: fail the flush.
                        tracing::error!(error = %e, "cannot queue dead-letter message");
                        self.health.fail(format!("dlq: {e}"));
                    }
                }
                self.stats.dead_lettered += 1;
                self.metrics.dlq.inc();
            }
        }
    }

    async fn flush_with_retry(&mut self, shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> Result<()> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.flush().await {
                Ok(()) => {
                    self.health.ok();
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.flush_errors.inc();
                    self.health.fail(format!("flush: {e}"));
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

    /// Publishes every buffered partition range, then commits their offsets.
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
                Err(_) => return Err(Error::Config("dead-letter delivery cancelled".into())),
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (&partition, buf) in &self.buffers {
            let stats = write_range(&self.lake, &self.cfg.topic, partition, buf.first, buf.last, &buf.samples, &buf.anomalies).await?;
            self.metrics.files.inc_by(stats.files);
            self.metrics.bytes.inc_by(stats.bytes);
            self.metrics.records_out.inc_by(stats.rows);
            self.stats.rows_written += stats.rows;
            if !self.cfg.anomalies_topic.is_empty() {
                for a in &buf.anomalies {
                    let payload = serde_json::to_vec(a).map_err(|e| Error::Config(e.to_string()))?;
                    let key = a.key();
                    let record = FutureRecord::to(&self.cfg.anomalies_topic).key(&key).payload(&payload);
                    self.producer
                        .send(record, Duration::from_secs(30))
                        .await
                        .map_err(|(e, _)| Error::Kafka(e))?;
                }
            }
            self.stats.anomalies += buf.anomalies.len() as u64;
            tpl.add_partition_offset(&self.cfg.topic, partition, Offset::Offset(buf.last + 1))?;
        }
        self.consumer.commit(&tpl, CommitMode::Sync)?;
        self.stats.flushes += 1;
        self.buffers.clear();
        self.buffered = 0;
        self.oldest = None;
        self.metrics.buffered.set(0);
        self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        tracing::debug!(elapsed = ?started.elapsed(), "flushed and committed");
        Ok(())
    }
}
