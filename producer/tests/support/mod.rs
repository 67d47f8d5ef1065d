//! Helpers shared by the producer's integration tests (real Kafka-API broker).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The broker of the real services, or `None` (with a message) when they are off.
pub fn brokers(test: &str) -> Option<String> {
    if std::env::var("GPUSTREAM_IT").as_deref() != Ok("1") {
        eprintln!(
            "{test}: skipped (set GPUSTREAM_IT=1 and the service addresses: source .tools/run/services.env)"
        );
        return None;
    }
    Some(std::env::var("GPUSTREAM_TEST_BROKERS").expect("GPUSTREAM_TEST_BROKERS"))
}

/// A name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a topic.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(gpustream::kafka::ensure_topics(
            brokers,
            &[(topic, partitions)],
        ))
        .expect("create topic");
}

/// Every message of a topic from the beginning (key, payload), until `expected` were read
/// or `timeout` passed, plus a short extra poll so surplus messages show.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<(String, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(expected);
    let take = |m: &rdkafka::message::BorrowedMessage<'_>| {
        (
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            m.payload().unwrap_or_default().to_vec(),
        )
    };
    let deadline = Instant::now() + timeout;
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(take(&m));
        }
    }
    let extra = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(take(&m));
        }
    }
    out
}

/// The producer binary built for these tests.
pub fn producer_bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_producer"));
    // The tests pass every setting as a flag; keep the caller's GPUSTREAM_* out.
    for (k, _) in std::env::vars() {
        if k.starts_with("GPUSTREAM_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

/// A real GPU-Z log from the shared data set.
pub fn shared_log(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/gpuz")
        .join(name)
}
