//! InfluxDB sink benchmarks against real services (`source .tools/run/services.env`):
//!
//! 1. **Throughput vs ceiling.** The ceiling is the same samples, pre-encoded as line
//!    protocol and pre-compressed in batches of the sink's size, POSTed one after another
//!    straight to the same InfluxDB: the fastest a single writer can go. The sink then
//!    consumes the same samples from Kafka, encodes, batches, writes and commits. The
//!    two alternate `ROUNDS` times; the best of each is reported, and their ratio.
//! 2. **Sample-to-visible latency.** Samples are produced at a steady rate while the sink
//!    runs with its default batching; a poller counts the points InfluxDB returns and
//!    timestamps when each becomes queryable. p50/p99 of (visible − produced).
//!
//! ```sh
//! scripts/services.sh start kafka influxdb && source .tools/run/services.env
//! cargo test --workspace --bench sink          # dev profile: deps optimised, see BENCHMARKS.md
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use consumer_influx::line_protocol::encode_sample;
use consumer_influx::{InfluxConfig, SinkConfig, SinkMetrics, influx::gzip};
use gpustream::{Metric, Metrics, Sample, Source, event_id};
use gpustream_runtime::service::Health;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

const GPUS: u32 = 16;
const PER_GPU: u64 = 12_500;
const BATCH: usize = 5_000;
const ROUNDS: usize = 4;
const LATENCY_RATE: u64 = 200;
const LATENCY_SECONDS: u64 = 30;

/// A sample shaped like a GPU-Z row of an NVIDIA card (about 25 sensors).
fn sample(host: &str, gpu_index: u32, seq: u64, at: DateTime<Utc>) -> Sample {
    let gpu = format!("gpu{gpu_index}");
    let x = seq as f64;
    let mut m = Metrics::default();
    let sensors = [
        (Metric::CoreClock, 1500.0 + (x * 7.0) % 300.0),
        (Metric::MemoryClock, 1750.0),
        (Metric::GpuTemp, 40.0 + (x * 0.37) % 45.0),
        (Metric::HotSpotTemp, 50.0 + (x * 0.41) % 45.0),
        (Metric::MemoryTemp, 45.0 + (x * 0.29) % 40.0),
        (Metric::CpuTemp, 35.0 + (x * 0.13) % 40.0),
        (Metric::GpuLoad, (x * 3.0) % 100.0),
        (Metric::MemoryControllerLoad, (x * 2.0) % 100.0),
        (Metric::VideoEngineLoad, 0.0),
        (Metric::BusInterfaceLoad, (x * 5.0) % 40.0),
        (Metric::MemoryUsed, 2048.0 + (x * 11.0) % 8000.0),
        (Metric::MemoryShared, 120.0),
        (Metric::SystemMemoryUsed, 16000.0 + (x * 3.0) % 500.0),
        (Metric::FanPct, 30.0 + (x * 0.5) % 60.0),
        (Metric::FanRpm, 900.0 + (x * 9.0) % 2000.0),
        (Metric::CoreVoltage, 0.9 + (x * 0.001) % 0.2),
        (Metric::BoardPower, 80.0 + (x * 1.3) % 250.0),
        (Metric::ChipPower, 60.0 + (x * 1.1) % 200.0),
        (Metric::PowerTdp, 30.0 + (x * 0.7) % 70.0),
        (Metric::PcieSlotPower, 20.0 + (x * 0.1) % 40.0),
        (Metric::PcieSlotVoltage, 12.1),
        (Metric::PerfCap, ((seq % 5) as f64).exp2()),
        (Metric::PState, 0.0),
    ];
    for (metric, v) in sensors {
        m.set(metric, v);
    }
    Sample {
        event_id: event_id(Source::Gpuz, host, &gpu, "bench", seq),
        event_time: at,
        host: host.to_string(),
        gpu,
        gpu_index,
        gpu_name: Some("NVIDIA GeForce RTX 3080".into()),
        source: Source::Gpuz,
        session: "bench".into(),
        seq,
        metrics: m,
        unsupported: Vec::new(),
        extra: BTreeMap::new(),
    }
}

fn fleet(host: &str) -> Vec<Sample> {
    let t0 = Utc::now() - chrono::Duration::days(1);
    let mut out = Vec::with_capacity((GPUS as u64 * PER_GPU) as usize);
    for seq in 0..PER_GPU {
        for g in 0..GPUS {
            out.push(sample(
                host,
                g,
                seq,
                t0 + chrono::Duration::seconds(seq as i64),
            ));
        }
    }
    out
}

struct Influx {
    http: reqwest::Client,
    url: String,
}

impl Influx {
    async fn query(&self, db: &str, q: &str) -> serde_json::Value {
        let text = self
            .http
            .post(format!("{}/query", self.url))
            .query(&[("db", db)])
            .form(&[("q", q)])
            .send()
            .await
            .expect("query")
            .text()
            .await
            .expect("query body");
        serde_json::from_str(&text).expect("query JSON")
    }

    async fn count(&self, db: &str, host: &str) -> u64 {
        let v = self
            .query(
                db,
                &format!("SELECT count(seq) FROM gpu_samples WHERE host = '{host}'"),
            )
            .await;
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0)
    }
}

async fn produce(brokers: &str, topic: &str, samples: &[Sample]) {
    let producer: FutureProducer = gpustream_runtime::kafka::producer_config(brokers)
        .create()
        .expect("producer");
    let mut pending = Vec::with_capacity(samples.len());
    for s in samples {
        let payload = gpustream::wire::encode_sample(s).expect("encode");
        let key = s.key();
        loop {
            match producer.send_result(FutureRecord::to(topic).key(&key).payload(&payload)) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((e, _)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "{e}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    for f in pending {
        f.await.expect("delivery").expect("delivered");
    }
}

/// Rows/s of pre-encoded, pre-compressed batches POSTed straight to InfluxDB.
async fn ceiling(influx: &Influx, db: &str, samples: &[Sample]) -> f64 {
    let bodies: Vec<Vec<u8>> = samples
        .chunks(BATCH)
        .map(|chunk| {
            let mut lines = String::new();
            for s in chunk {
                encode_sample(&mut lines, s).expect("encode");
            }
            gzip(lines.as_bytes()).expect("gzip")
        })
        .collect();
    let url = format!("{}/write?db={db}&precision=ns", influx.url);
    let started = Instant::now();
    for body in bodies {
        let resp = influx
            .http
            .post(&url)
            .header("Content-Encoding", "gzip")
            .body(body)
            .send()
            .await
            .expect("write");
        assert_eq!(resp.status().as_u16(), 204, "ceiling write");
    }
    samples.len() as f64 / started.elapsed().as_secs_f64()
}

fn sink_config(brokers: &str, topic: &str, url: &str, db: &str) -> SinkConfig {
    let mut c = SinkConfig::new(
        brokers,
        format!("bench-{topic}"),
        InfluxConfig::new(url, db),
    );
    c.samples_topic = topic.to_string();
    c.anomalies_topic = None;
    c.rollups_topic = None;
    c.dlq_topic = None;
    c.batch_size = BATCH;
    c
}

/// Messages/s a bare consumer (same client settings, no group) reads `n` messages of
/// `topic` at: the most the broker lets any sink consume.
fn bare_read(brokers: &str, topic: &str, n: usize) -> f64 {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = gpustream_runtime::kafka::consumer_config(brokers, "bench-bare")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut read = 0;
    let mut started = None;
    while read < n {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            read += 1;
        }
    }
    n as f64 / started.map_or(f64::NAN, |s| s.elapsed().as_secs_f64())
}

/// Rows/s of the sink from its first consumed message to its last written point, and
/// what a bare consumer reads the same topic at.
async fn sink(brokers: &str, influx: &Influx, db: &str, samples: &[Sample]) -> (f64, f64) {
    let topic = format!("bench-sink-{}", Utc::now().timestamp_micros());
    gpustream_runtime::kafka::ensure_topics(brokers, &[(&topic, 4)])
        .await
        .expect("topic");
    produce(brokers, &topic, samples).await;
    let bare = tokio::task::spawn_blocking({
        let (brokers, topic, n) = (brokers.to_string(), topic.clone(), samples.len());
        move || bare_read(&brokers, &topic, n)
    })
    .await
    .expect("bare read");
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(consumer_influx::run(
        sink_config(brokers, &topic, &influx.url, db),
        metrics.clone(),
        Health::default(),
        shutdown.clone(),
    ));
    while metrics.common.records_in_total() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let n = samples.len() as u64;
    while metrics.points_written.get() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    run.await.expect("join").expect("sink run");
    (n as f64 / elapsed.as_secs_f64(), bare)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// p50 and p99 (ms) of produce → queryable, at LATENCY_RATE samples/s, default batching.
async fn latency(brokers: &str, influx: &Influx, db: &str) -> (f64, f64, usize) {
    let topic = format!("bench-latency-{}", Utc::now().timestamp_micros());
    gpustream_runtime::kafka::ensure_topics(brokers, &[(&topic, 1)])
        .await
        .expect("topic");
    let host = "latency-host";
    let mut config = sink_config(brokers, &topic, &influx.url, db);
    // The shipped defaults (5 000 messages / 500 ms).
    let defaults = SinkConfig::new("x", "x", InfluxConfig::new("http://x", "x"));
    config.batch_size = defaults.batch_size;
    config.batch_timeout = defaults.batch_timeout;
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(consumer_influx::run(
        config,
        metrics.clone(),
        Health::default(),
        shutdown.clone(),
    ));
    // Let the consumer join its group before the clock starts.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let total = (LATENCY_RATE * LATENCY_SECONDS) as usize;
    let producer: FutureProducer = gpustream_runtime::kafka::producer_config(brokers)
        .create()
        .expect("producer");
    let producing = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let step = Duration::from_secs(1) / LATENCY_RATE as u32;
        let mut sent_at = Vec::with_capacity(total);
        let mut pending = Vec::with_capacity(total);
        for seq in 0..total as u64 {
            tokio::time::sleep_until(start + step * seq as u32).await;
            let s = sample(host, 0, seq, Utc::now());
            let payload = gpustream::wire::encode_sample(&s).expect("encode");
            sent_at.push(Instant::now());
            let record = FutureRecord::to(&topic).key(&s.gpu).payload(&payload);
            pending.push(
                producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .expect("queue"),
            );
        }
        for f in pending {
            f.await.expect("delivery").expect("delivered");
        }
        sent_at
    });
    // Poll the point count; each increase makes points [previous, count) visible now.
    let mut visible_at: Vec<Instant> = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(LATENCY_SECONDS + 30);
    while visible_at.len() < total && Instant::now() < deadline {
        let c = influx.count(db, host).await as usize;
        let now = Instant::now();
        while visible_at.len() < c.min(total) {
            visible_at.push(now);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent_at = producing.await.expect("producer task");
    shutdown.cancel();
    run.await.expect("join").expect("sink run");
    assert_eq!(visible_at.len(), total, "every point became visible");
    let mut ms: Vec<f64> = sent_at
        .iter()
        .zip(&visible_at)
        .map(|(s, v)| v.saturating_duration_since(*s).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99), total)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (Ok(brokers), Ok(url)) = (
        std::env::var("GPUSTREAM_TEST_BROKERS"),
        std::env::var("GPUSTREAM_TEST_INFLUX_URL"),
    ) else {
        eprintln!(
            "sink bench skipped: needs GPUSTREAM_TEST_BROKERS and GPUSTREAM_TEST_INFLUX_URL (source .tools/run/services.env)"
        );
        return;
    };
    let influx = Influx {
        http: reqwest::Client::new(),
        url,
    };
    let db = format!("bench_{}", Utc::now().timestamp());
    influx.query(&db, &format!("CREATE DATABASE {db}")).await;

    let mut best_ceiling: f64 = 0.0;
    let mut best_sink: f64 = 0.0;
    for round in 0..ROUNDS {
        // Distinct hosts: each run writes new series, as the other did. The order
        // alternates: InfluxDB slows down a little as the database grows.
        let ceiling_rows = fleet(&format!("ceiling-{round}"));
        let sink_rows = fleet(&format!("sink-{round}"));
        let (c, (s, bare)) = if round % 2 == 0 {
            let c = ceiling(&influx, &db, &ceiling_rows).await;
            (c, sink(&brokers, &influx, &db, &sink_rows).await)
        } else {
            let s = sink(&brokers, &influx, &db, &sink_rows).await;
            (ceiling(&influx, &db, &ceiling_rows).await, s)
        };
        println!(
            "round {round}: ceiling {c:>9.0} rows/s   sink {s:>9.0} rows/s   ratio {:.2}   (bare Kafka read {bare:.0} msg/s)",
            s / c
        );
        best_ceiling = best_ceiling.max(c);
        best_sink = best_sink.max(s);
    }
    println!(
        "throughput ({} rows, batches of {BATCH}): ceiling {best_ceiling:.0} rows/s, sink {best_sink:.0} rows/s, ratio {:.2}",
        GPUS as u64 * PER_GPU,
        best_sink / best_ceiling
    );
    for host in ["ceiling-0", "sink-0"] {
        assert_eq!(
            influx.count(&db, host).await,
            GPUS as u64 * PER_GPU,
            "{host}: every row is a point"
        );
    }

    let (p50, p99, n) = latency(&brokers, &influx, &db).await;
    println!(
        "sample-to-visible latency ({n} samples at {LATENCY_RATE}/s, default batching 5000/500 ms): p50 {p50:.0} ms, p99 {p99:.0} ms"
    );
    influx.query(&db, &format!("DROP DATABASE {db}")).await;
}
