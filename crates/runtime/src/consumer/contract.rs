//! What the runtime asks of a sink: the record it hands over, what the sink did with
//! it, the two stages ([`Sink`], [`Writer`]) and what a writer may use while writing
//! (the dead-letter topic, the abandon signal, the shared metrics).

use std::future::Future;

use rdkafka::error::KafkaError;
use rdkafka::message::Header;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::service::CommonMetrics;

/// A consumed record, borrowed from the client.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key, if any.
    pub key: Option<&'a [u8]>,
    /// Payload, if any.
    pub payload: Option<&'a [u8]>,
}

/// What a sink did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Added to the open batch.
    Buffered,
    /// Nothing to write for it (its offset commits with the batch).
    Done,
    /// Refused for good: the record goes to the dead-letter topic with this reason.
    DeadLetter(String),
}

/// The first stage of a sink: takes records into an open batch (decoding, detection,
/// encoding — whatever can be done record by record) and seals it for the [`Writer`].
pub trait Sink: Send {
    /// What a sealed batch hands the writer.
    type Batch: Send + 'static;
    /// The sink's error; the runtime's own errors convert into it.
    type Error: std::error::Error + From<Error> + Send + Sync + 'static;

    /// The last offset of `topic`/`partition` the destination already holds (records up
    /// to it go to [`Sink::replay`] instead of [`Sink::take`]), when the destination
    /// records it (the lake does; InfluxDB does not). Asked once per partition after
    /// every rebalance, before its first record.
    fn durable_through(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> impl Future<Output = Result<Option<i64>, Self::Error>> + Send {
        let _ = (topic, partition);
        async { Ok(None) }
    }

    /// A record already durable: rebuild state from it, write nothing.
    fn replay(&mut self, record: &Record<'_>) {
        let _ = record;
    }

    /// Takes a record into the open batch.
    fn take(&mut self, record: &Record<'_>) -> Take;

    /// Payload bytes held in the open batch.
    fn pending_bytes(&self) -> usize;

    /// Called while nothing arrives; returns whether the sink added something to the
    /// open batch by itself (e.g. windows of GPUs that went silent).
    fn idle(&mut self) -> bool {
        false
    }

    /// Called once at shutdown, before the last batch is sealed: close what only
    /// closes at the end (e.g. open windows); returns whether that added anything.
    fn closing(&mut self) -> bool {
        false
    }

    /// Closes the open batch and returns it.
    fn seal(&mut self) -> Self::Batch;

    /// Drops the open batch (after a rebalance its records are read again).
    fn drop_unsealed(&mut self);
}

/// The second stage: makes sealed batches durable, one after another, on a task of its
/// own. It retries what can be retried (health shows the failure) and gives up only
/// when `ctx` is cancelled (shutdown grace over) or on an error no retry can fix.
pub trait Writer: Send + 'static {
    /// The sealed batch.
    type Batch: Send + 'static;
    /// The writer's error.
    type Error: std::error::Error + From<Error> + Send + Sync + 'static;

    /// Writes one batch; returns once it is durable (dead letters included).
    fn write(
        &mut self,
        batch: Self::Batch,
        ctx: &WriteContext,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Where a dead-lettered record came from.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterSource<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The source record's key, sent on with the dead letter (none for what a writer
    /// made itself, such as a refused line).
    pub key: Option<&'a [u8]>,
}

impl<'a> DeadLetterSource<'a> {
    /// Where `record` came from.
    pub fn of(record: &Record<'a>) -> DeadLetterSource<'a> {
        DeadLetterSource {
            topic: record.topic,
            partition: record.partition,
            offset: record.offset,
            key: record.key,
        }
    }
}

/// What a writer may use while writing: the dead-letter topic and the abandon signal.
#[derive(Clone)]
pub struct WriteContext {
    pub(super) dlq: Option<(FutureProducer, String)>,
    pub(super) cancel: CancellationToken,
    pub(super) metrics: CommonMetrics,
}

impl WriteContext {
    /// Resolves when the runtime gives up on the batch (shutdown grace over).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The abandon signal itself, for writers that select on it.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the runtime gave up on the batch.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The shared metrics (writers count their own write errors).
    pub fn metrics(&self) -> &CommonMetrics {
        &self.metrics
    }

    /// Sends a refused record to the dead-letter topic with the shared headers
    /// (`error`, `source_topic`, `source_partition`, `source_offset`) plus `extra`, and
    /// waits for the broker's acknowledgement. Without a dead-letter topic the record is
    /// logged and skipped.
    pub async fn dead_letter(
        &self,
        payload: &[u8],
        reason: &str,
        source: DeadLetterSource<'_>,
        extra: &[(&str, &str)],
    ) -> Result<(), Error> {
        let deliveries = self.queue_dead_letters([(payload, reason, source, extra)])?;
        self.acknowledged_all(deliveries).await
    }

    /// Sends refused records like [`WriteContext::dead_letter`] (payload, reason, source
    /// each), all queued before the first acknowledgement is awaited: one round trip per
    /// record would hold a batch full of bad input for seconds.
    pub async fn dead_letters<'a>(
        &self,
        letters: impl IntoIterator<Item = (&'a [u8], &'a str, DeadLetterSource<'a>)>,
    ) -> Result<(), Error> {
        let no_extra: &[(&str, &str)] = &[];
        let deliveries = self.queue_dead_letters(
            letters
                .into_iter()
                .map(|(payload, reason, source)| (payload, reason, source, no_extra)),
        )?;
        self.acknowledged_all(deliveries).await
    }

    /// Queues every letter (payload, reason, source, extra headers) on the dead-letter
    /// topic; without one each is logged and skipped. (Not async, so that no future holds
    /// the letters' iterator.)
    fn queue_dead_letters<'a>(
        &self,
        letters: impl IntoIterator<
            Item = (
                &'a [u8],
                &'a str,
                DeadLetterSource<'a>,
                &'a [(&'a str, &'a str)],
            ),
        >,
    ) -> Result<Vec<DeliveryFuture>, Error> {
        let mut deliveries = Vec::new();
        for (payload, reason, source, extra) in letters {
            self.metrics.dead_lettered.inc();
            match &self.dlq {
                Some((producer, topic)) => deliveries.push(queue_dead_letter(
                    producer, topic, payload, reason, &source, extra,
                )?),
                None => skipped(reason, &source),
            }
        }
        Ok(deliveries)
    }

    /// Waits for the broker to acknowledge every queued dead letter.
    async fn acknowledged_all(&self, deliveries: Vec<DeliveryFuture>) -> Result<(), Error> {
        if let Some((_, topic)) = &self.dlq {
            for delivery in deliveries {
                acknowledged(delivery, topic).await?;
            }
        }
        Ok(())
    }
}

/// Logs a refused record that no dead-letter topic takes.
pub(super) fn skipped(reason: &str, source: &DeadLetterSource<'_>) {
    tracing::error!(
        reason,
        source_topic = source.topic,
        source_partition = source.partition,
        source_offset = source.offset,
        "record refused; skipped (no dead-letter topic configured)"
    );
}

/// Queues a refused record on the dead-letter topic with the shared headers (`error`,
/// `source_topic`, `source_partition`, `source_offset`) plus `extra`; the returned
/// future resolves with the broker's acknowledgement.
pub(super) fn queue_dead_letter(
    producer: &FutureProducer,
    topic: &str,
    payload: &[u8],
    reason: &str,
    source: &DeadLetterSource<'_>,
    extra: &[(&str, &str)],
) -> Result<DeliveryFuture, Error> {
    tracing::warn!(reason, source_topic = source.topic, source_partition = source.partition, source_offset = source.offset, dlq = %topic, "record refused; sent to the dead-letter topic");
    let mut headers =
        crate::kafka::dead_letter_headers(reason, source.topic, source.partition, source.offset);
    for (k, v) in extra {
        headers = headers.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    let mut record = FutureRecord::to(topic).payload(payload).headers(headers);
    if let Some(key) = source.key {
        record = record.key(key);
    }
    producer
        .send_result(record)
        .map_err(|(source, _)| Error::Kafka {
            context: format!("dead-letter to {topic}"),
            source,
        })
}

/// Waits for the broker to acknowledge a dead letter.
pub(super) async fn acknowledged(delivery: DeliveryFuture, topic: &str) -> Result<(), Error> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(Error::Kafka {
            context: format!("dead-letter to {topic}"),
            source,
        }),
        Err(_) => Err(Error::Kafka {
            context: format!("dead-letter to {topic}"),
            source: KafkaError::Canceled,
        }),
    }
}
