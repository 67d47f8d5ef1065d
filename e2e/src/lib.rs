//! Helpers for end-to-end tests against real services.
//!
//! Tests run only when `GPUSTREAM_IT=1` (set by `scripts/services.sh start` in
//! `.tools/run/services.env`); otherwise they print why they were skipped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Addresses of the real services, when integration tests are switched on.
pub struct Services {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// InfluxDB 1.x base URL.
    pub influx_url: Option<String>,
    /// S3 endpoint (moto).
    pub s3_endpoint: Option<String>,
}

/// The services, or `None` (with a message) when integration tests are off.
pub fn services(test: &str) -> Option<Services> {
    if std::env::var("GPUSTREAM_IT").as_deref() != Ok("1") {
        eprintln!(
            "{test}: skipped (set GPUSTREAM_IT=1 and the service addresses: scripts/services.sh start)"
        );
        return None;
    }
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    Some(Services {
        brokers: var("GPUSTREAM_TEST_BROKERS").expect("GPUSTREAM_TEST_BROKERS"),
        influx_url: var("GPUSTREAM_TEST_INFLUX_URL"),
        s3_endpoint: var("GPUSTREAM_TEST_S3_ENDPOINT"),
    })
}

/// A name unique to this process and call, for topics, groups, databases and buckets.
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

/// Reads every message of a topic from the beginning (no consumer group) until `expected`
/// messages were read or `timeout` passed. Counts messages rather than trusting the
/// broker's high watermark (Tansu's under-counts).
pub fn read_topic(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<(i32, i64, Vec<u8>)> {
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
    let deadline = Instant::now() + timeout;
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push((
                m.partition(),
                m.offset(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    // One more short poll: more than expected is a failure the caller must see.
    let extra_deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra_deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push((
                m.partition(),
                m.offset(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    out
}

/// Committed offset per partition of `group` on `topic` (`-1` when none).
pub fn committed(brokers: &str, group: &str, topic: &str) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = gpustream::kafka::consumer_config(brokers, group)
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition(topic, p.id());
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

/// Every Parquet file under a local lake table directory, recursively.
pub fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads all rows of all Parquet files of a table in a local lake.
pub fn read_local_table(dir: &std::path::Path) -> Vec<arrow::array::RecordBatch> {
    let mut out = Vec::new();
    for f in parquet_files(dir) {
        let file = std::fs::File::open(&f).expect("open parquet");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet reader")
            .build()
            .expect("build reader");
        for b in reader {
            out.push(b.expect("batch"));
        }
    }
    out
}
pub mod grafana;
pub mod influxd;
