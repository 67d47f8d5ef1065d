//! How the consumer runtime consumes and batches: its settings and their checks.

use std::time::Duration;

use crate::error::Error;
use crate::kafka::KafkaSettings;

/// How the runtime consumes and batches.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Brokers and client properties.
    pub kafka: KafkaSettings,
    /// Consumer group.
    pub group: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Dead-letter topic for records the sink refuses; `None` logs and skips them.
    pub dlq_topic: Option<String>,
    /// `client.id` (the component name).
    pub client_id: String,
    /// Seal the open batch at this many records...
    pub batch_records: usize,
    /// ... or this many payload bytes...
    pub batch_bytes: usize,
    /// ... or when its first record is this old (an idle input still flushes).
    pub batch_timeout: Duration,
    /// Batches being written at once (the next one fills meanwhile).
    pub max_in_flight: usize,
    /// How long a full batch may wait for the writer before the partitions are paused.
    pub pause_after: Duration,
    /// On shutdown, how long writing what is held may take.
    pub shutdown_grace: Duration,
    /// librdkafka's prefetch bound (`queued.max.messages.kbytes`).
    pub prefetch_kbytes: usize,
    /// How often the sink's idle work runs while nothing arrives.
    pub idle_tick: Duration,
    /// The start-up connection check's limit.
    pub connect_timeout: Duration,
}

impl ConsumerConfig {
    /// Defaults: batches of 5,000 records / 16 MiB / 500 ms, one in flight, pause after
    /// 2 s, 10 s shutdown grace, 16 MiB prefetch, 200 ms idle tick, 15 s connect check.
    pub fn new(kafka: KafkaSettings, group: &str, topics: Vec<String>, client_id: &str) -> Self {
        ConsumerConfig {
            kafka,
            group: group.to_string(),
            topics,
            dlq_topic: None,
            client_id: client_id.to_string(),
            batch_records: 5000,
            batch_bytes: 16 << 20,
            batch_timeout: Duration::from_millis(500),
            max_in_flight: 1,
            pause_after: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(10),
            prefetch_kbytes: 16 * 1024,
            idle_tick: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(15),
        }
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        let bad = |name: &str, message: &str| {
            Err(Error::Setting {
                name: name.into(),
                message: message.into(),
            })
        };
        if self.group.trim().is_empty() {
            return bad("group", "the consumer group name is empty");
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.is_empty()) {
            return bad("topic", "a topic name is empty");
        }
        if let Some(d) = &self.dlq_topic
            && self.topics.contains(d)
        {
            return bad(
                "dlq_topic",
                "the dead-letter topic must differ from the input topics",
            );
        }
        if self.batch_records == 0 || self.batch_bytes == 0 || self.batch_timeout.is_zero() {
            return bad("batch", "batch size, bytes and timeout must be positive");
        }
        if self.max_in_flight == 0 {
            return bad(
                "max_in_flight",
                "at least one batch must be allowed in flight",
            );
        }
        Ok(())
    }
}
