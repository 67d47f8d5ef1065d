//! Kafka for the tests: topics, producing, the group's committed offsets, reading a
//! topic back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gpustream::Sample;
use gpustream_test_kit::unique;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::{Env, bounded};

/// A message to produce: topic, key, payload.
pub(crate) type Message<'a> = (&'a str, String, Vec<u8>);

/// A producer on the test broker.
pub(crate) fn producer(env: &Env) -> FutureProducer {
    gpustream_runtime::kafka::producer_config(&env.brokers)
        .create()
        .expect("producer")
}

/// `sample` as the producer sends it to `topic`: keyed by GPU, wire-encoded.
pub(crate) fn sample_message<'a>(topic: &'a str, sample: &Sample) -> Message<'a> {
    (
        topic,
        sample.key(),
        gpustream::wire::encode_sample(sample).expect("encode"),
    )
}

/// Enqueues every `(topic, key, payload)` first, then waits for all deliveries.
pub(crate) async fn produce(producer: &FutureProducer, messages: &[Message<'_>]) {
    let mut pending = Vec::with_capacity(messages.len());
    for (topic, key, payload) in messages {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match producer.send_result(record) {
            Ok(delivery) => pending.push(delivery),
            Err((e, _)) => panic!("enqueue to {topic}: {e}"),
        }
    }
    bounded("deliveries", 60, async {
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => panic!("delivery failed: {e}"),
                Err(_) => panic!("delivery cancelled"),
            }
        }
    })
    .await;
}

pub(crate) async fn create_topics(env: &Env, topics: &[(&str, i32)]) {
    bounded(
        "create topics",
        30,
        gpustream_runtime::kafka::ensure_topics(&env.brokers, topics),
    )
    .await
    .expect("create topics");
}

/// Committed offsets of `group`, per (topic, partition); partitions without a commit are absent.
pub(crate) async fn committed(
    brokers: &str,
    group: &str,
    partitions: &[(&str, i32)],
) -> BTreeMap<(String, i32), i64> {
    let consumer: BaseConsumer = gpustream_runtime::kafka::consumer_config(brokers, group)
        .create()
        .expect("create offset reader");
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition(t, *p);
    }
    let got = tokio::task::spawn_blocking(move || {
        let r = consumer.committed_offsets(tpl, Duration::from_secs(10));
        // Dropped on a detached thread: librdkafka's destroy occasionally hangs.
        std::thread::spawn(move || drop(consumer));
        r
    });
    let tpl = bounded("committed offsets", 20, got)
        .await
        .expect("join")
        .expect("committed offsets");
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

/// Every message of `topic` (one partition) from the beginning, waiting for `want`.
pub(crate) async fn read_all(
    brokers: &str,
    topic: &str,
    want: usize,
) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let read = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut out = Vec::new();
        while out.len() < want && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                out.push(m.detach());
            }
        }
        // A few more polls: anything beyond `want` is a bug the caller should see.
        for _ in 0..5 {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                out.push(m.detach());
            }
        }
        std::thread::spawn(move || drop(consumer));
        out
    });
    bounded("read topic", 40, read).await.expect("join")
}

/// A header's value as text.
pub(crate) fn header(m: &rdkafka::message::OwnedMessage, key: &str) -> Option<String> {
    use rdkafka::message::{Headers as _, Message as _};
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).to_string())
}
