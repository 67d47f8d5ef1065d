//! Kafka for every component: topic names, client settings (with TLS and SASL, see
//! [`KafkaSettings`]), a start-up check that names the setting to fix
//! ([`preflight`]), client callbacks into `tracing` and metrics ([`context`]), topic
//! creation and dead-letter headers.

pub mod context;
mod preflight;
mod settings;

pub use preflight::preflight;
pub use settings::{KafkaSettings, is_secret_property};

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::types::RDKafkaErrorCode;

use crate::error::{Error, Result};

/// Default topic of raw samples.
pub const SAMPLES_TOPIC: &str = "gpu-samples";
/// Default topic of anomaly events.
pub const ANOMALIES_TOPIC: &str = "gpu-anomalies";
/// Default topic of 1-minute rollups.
pub const ROLLUPS_TOPIC: &str = "gpu-rollups-1m";
/// Default dead-letter topic.
pub const DLQ_TOPIC: &str = "gpu-dlq";

/// Headers of a dead-letter record, the same on every dead-letter topic: `error` (why
/// it was refused) and where the original came from (`source_topic`,
/// `source_partition`, `source_offset`).
pub fn dead_letter_headers(
    error: &str,
    source_topic: &str,
    source_partition: i32,
    source_offset: i64,
) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: "error",
            value: Some(error),
        })
        .insert(Header {
            key: "source_topic",
            value: Some(source_topic),
        })
        .insert(Header {
            key: "source_partition",
            value: Some(&source_partition.to_string()),
        })
        .insert(Header {
            key: "source_offset",
            value: Some(&source_offset.to_string()),
        })
}

/// Producer settings for a plaintext broker (tests and tools; the binaries use
/// [`KafkaSettings::producer_config`], which adds security settings).
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = base_config();
    c.set("bootstrap.servers", brokers);
    producer_defaults(&mut c);
    c
}

/// What every producer sets: acknowledged by all in-sync replicas, idempotent, lz4,
/// batched.
fn producer_defaults(c: &mut ClientConfig) {
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000");
}

/// Consumer-group settings for a plaintext broker (tests and tools; the binaries use
/// [`KafkaSettings::consumer_config`]).
pub fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut c = base_config();
    c.set("bootstrap.servers", brokers);
    consumer_defaults(&mut c, group);
    c
}

/// What every group consumer sets: manual commits after durable writes, start from
/// the earliest offset when the group is new, and a session timeout short enough that
/// group joins do not stall (librdkafka's 45 s default holds joins for ~23 s).
fn consumer_defaults(c: &mut ClientConfig, group: &str) {
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "2000")
        .set("fetch.wait.max.ms", "100")
        // Once the prefetch queue is full librdkafka waits this long before it fetches
        // again (default 1 s): a consumer catching up drains 16 MiB in a fraction of
        // that and then sat idle; 10 ms took the processor's catch-up from 55.7k to
        // 87.8k samples/s (BENCHMARKS.md, "The fetch back-off").
        .set("fetch.queue.backoff.ms", "10")
        .set("enable.partition.eof", "false");
}

/// Creates topics on a plaintext broker that do not exist yet (tests and tools).
pub async fn ensure_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    KafkaSettings::plaintext(brokers)
        .ensure_topics(topics)
        .await
}

/// Creates topics that do not exist yet (an existing topic is not an error).
async fn create_topics(config: ClientConfig, brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|source| Error::Kafka {
            context: "admin client".into(),
            source,
        })?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, parts)| NewTopic::new(name, *parts, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(|source| Error::Kafka {
            context: format!("cannot reach brokers {brokers}"),
            source,
        })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(Error::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// An empty client configuration whose log level follows ours: rust-rdkafka derives it
/// from the `log` crate, which nothing here installs, and would pass errors only, so TLS
/// and connection warnings would never reach the context.
pub(crate) fn base_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    let level = if tracing::enabled!(tracing::Level::DEBUG) {
        rdkafka::config::RDKafkaLogLevel::Debug
    } else {
        rdkafka::config::RDKafkaLogLevel::Warning
    };
    c.set_log_level(level);
    c
}
