//! Kafka helpers for tests: topics, reading what landed, committed offsets, sending.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::names::unique;

/// One message read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key as text (empty when the message has none).
    pub key: String,
    /// Payload (empty when the message has none).
    pub payload: Vec<u8>,
    /// Headers as text, in order.
    pub headers: Vec<(String, String)>,
}

impl Record {
    fn from_message(m: &BorrowedMessage<'_>) -> Record {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Record {
            partition: m.partition(),
            offset: m.offset(),
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    /// The value of header `key`, if present.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Creates topics (blocking; an existing topic is fine).
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(gpustream_runtime::kafka::ensure_topics(
            brokers,
            &[(topic, partitions)],
        ))
        .expect("create topic");
}

/// Reads every message of a topic from the beginning (no consumer group) until
/// `expected` were read or `timeout` passed, then polls a little longer so that more
/// than expected shows. Counts messages rather than trusting the broker's high
/// watermark (Tansu's under-counts).
pub fn read_topic(brokers: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in partitions(&consumer, topic) {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + timeout;
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(Record::from_message(&m));
        }
    }
    let extra = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(Record::from_message(&m));
        }
    }
    out
}

/// The committed offsets of `group` on `topic` summed over partitions (a partition
/// without a commit counts 0): how many messages the group has taken responsibility for
/// on a topic whose offsets start at 0.
pub fn committed_total(brokers: &str, group: &str, topic: &str) -> i64 {
    committed(brokers, group, topic)
        .values()
        .map(|o| (*o).max(0))
        .sum()
}

/// Committed offset per partition of `group` on `topic` (`-1` when none).
pub fn committed(brokers: &str, group: &str, topic: &str) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = gpustream_runtime::kafka::consumer_config(brokers, group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in partitions(&consumer, topic) {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    got.elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                match e.offset() {
                    Offset::Offset(o) => o,
                    _ => -1,
                },
            )
        })
        .collect()
}

/// The partition ids of `topic`, as the broker's metadata lists them.
fn partitions(consumer: &BaseConsumer, topic: &str) -> Vec<i32> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()[0].partitions().iter().map(|p| p.id()).collect()
}

/// Sends raw payloads or samples to explicit partitions and waits until every one is
/// acknowledged.
pub struct Sender {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl Sender {
    /// A sender to `topic` with the pipeline's producer settings.
    pub fn new(brokers: &str, topic: &str) -> Sender {
        Sender {
            producer: gpustream_runtime::kafka::producer_config(brokers)
                .create()
                .expect("producer"),
            topic: topic.to_string(),
        }
    }

    /// Queues one message for `partition`.
    pub fn send(&self, partition: i32, key: &str, payload: &[u8]) {
        let mut record = BaseRecord::to(&self.topic)
            .partition(partition)
            .key(key)
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((e, r)) => {
                    // Queue full: let deliveries drain, then retry the same record.
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "send: {e}"
                    );
                    record = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// Queues a sample (wire format, keyed like the producer's) for `partition`.
    pub fn send_sample(&self, partition: i32, s: &gpustream::Sample) {
        let payload = gpustream::wire::encode_sample(s).expect("encode");
        self.send(partition, &s.key(), &payload);
    }

    /// Waits until everything queued is acknowledged.
    pub fn flush(&self) {
        self.producer
            .flush(Duration::from_secs(30))
            .expect("flush producer");
        assert_eq!(self.producer.in_flight_count(), 0, "undelivered messages");
    }
}
