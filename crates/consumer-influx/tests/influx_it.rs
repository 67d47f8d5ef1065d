//! Integration tests against a real Kafka broker (Tansu) and InfluxDB 1.x.
//!
//! Skipped unless `GPUSTREAM_IT=1`. Then they need `GPUSTREAM_TEST_BROKERS`,
//! `GPUSTREAM_TEST_INFLUX_URL` and (for the v2 write API) `GPUSTREAM_TEST_VM_URL`:
//!
//! ```sh
//! scripts/services.sh start kafka influxdb victoria-metrics
//! source .tools/run/services.env
//! cargo test --workspace --test influx_it
//! ```
//!
//! Every wait is bounded, so a hang fails the test instead of the CI job.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use consumer_influx::{Error, InfluxConfig, RetryPolicy, RunSummary, SinkConfig, SinkMetrics};
use gpustream::{AnomalyEvent, AnomalyState, Metric, Metrics, Sample, Severity, Source, event_id};
use gpustream_runtime::service::Health;
use gpustream_test_kit::{unique, unique_ident};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SAMPLE_PARTITIONS: i32 = 3;
const ROWS_PER_GPU: u64 = 120;
/// Hosts as sent and as InfluxDB 1.x stores them (verbatim except the documented lossy cases).
const HOSTS: &[(&str, &str)] = &[
    ("plain-host", "plain-host"),
    ("host with spaces", "host with spaces"),
    ("comma,host=eq", "comma,host=eq"),
    ("quote\"host", "quote\"host"),
    ("back\\slash", "back\\slash"),
    // InfluxDB 1.x keeps one extra backslash where a backslash precedes an escaped character.
    (
        "back\\,slash\\ before\\=specials\\\"",
        "back\\\\,slash\\\\ before\\\\=specials\\\"",
    ),
    ("ünïcødé 東京 🚀", "ünïcødé 東京 🚀"),
    ("ends-in\\", "ends-in\\_"),
];
const EXTRA_NAMES: &[&str] = &["GPU Clock [MHz]", "Memory Temp [°C]", "odd,name=x \"q\""];

struct Env {
    brokers: String,
    influx_url: String,
}

fn it_env() -> Option<Env> {
    gpustream_runtime::service::init_logging();
    let svc = gpustream_test_kit::services("influx_it")?;
    Some(Env {
        influx_url: svc.influx_url().to_string(),
        brokers: svc.brokers,
    })
}

fn base_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0)
        .single()
        .expect("valid time")
}

/// A sample of GPU `gpu_index` on `host`; three consecutive rows share each timestamp.
fn sample(host: &str, gpu_index: u32, seq: u64) -> Sample {
    let gpu = format!("GPU {gpu_index}");
    let mut metrics = Metrics::default();
    metrics.set(Metric::GpuTemp, 40.0 + (seq % 50) as f64 + 0.125);
    metrics.set(Metric::BoardPower, 100.0 + seq as f64 * 0.1);
    metrics.set(Metric::PState, (seq % 3) as f64);
    metrics.set(Metric::FanRpm, 0.0);
    let mut extra = BTreeMap::new();
    for (i, name) in EXTRA_NAMES.iter().enumerate() {
        extra.insert((*name).to_string(), seq as f64 + i as f64 / 4.0);
    }
    Sample {
        event_id: event_id(Source::Gpuz, host, &gpu, "session-1", seq),
        event_time: base_time() + chrono::Duration::seconds((seq / 3) as i64),
        host: host.to_string(),
        gpu,
        gpu_index,
        gpu_name: Some("NVIDIA GeForce RTX 4090".to_string()),
        source: Source::Gpuz,
        session: "session-1".to_string(),
        seq,
        metrics,
        unsupported: vec![Metric::FanRpm],
        extra,
    }
}

fn anomaly(state: AnomalyState, message: &str) -> AnomalyEvent {
    AnomalyEvent {
        event_id: format!("ev-{}", state.as_str()),
        anomaly_id: "anomaly-1".to_string(),
        state,
        rule: "gpu_temp_high".to_string(),
        severity: Severity::Critical,
        host: "comma,host=eq".to_string(),
        gpu: "GPU 0".to_string(),
        gpu_index: 0,
        source: Source::Gpuz,
        session: "session-1".to_string(),
        event_time: base_time()
            + chrono::Duration::seconds(if state == AnomalyState::Firing {
                10
            } else {
                20
            }),
        started_at: base_time() + chrono::Duration::seconds(10),
        metric: Some("gpu_temp_c".to_string()),
        value: Some(91.5),
        threshold: Some(90.0),
        message: message.to_string(),
        sample_event_id: "x".to_string(),
    }
}

/// Enqueues every `(topic, key, payload)` first, then waits for all deliveries.
async fn produce(producer: &FutureProducer, messages: &[(&str, String, Vec<u8>)]) {
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

/// Bounded wait for a future.
async fn bounded<T>(what: &str, secs: u64, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s: {what}"),
    }
}

struct Influx {
    http: reqwest::Client,
    url: String,
    db: String,
}

impl Influx {
    async fn query(&self, q: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}/query", self.url))
            .query(&[("db", self.db.as_str()), ("epoch", "ns")])
            .form(&[("q", q)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("query {q}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "query {q}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("query {q}: {e}: {text}"))
    }

    /// `values` of the first series of the first statement (empty when no data).
    async fn rows(&self, q: &str) -> Vec<Vec<Value>> {
        let v = self.query(q).await;
        if let Some(err) = v["results"][0]["error"].as_str() {
            panic!("query {q}: {err}");
        }
        v["results"][0]["series"][0]["values"]
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r.as_array().cloned()).collect())
            .unwrap_or_default()
    }

    async fn count(&self, q: &str) -> u64 {
        self.rows(q)
            .await
            .first()
            .and_then(|r| r.get(1))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    async fn wait_count(&self, q: &str, want: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.count(q).await;
            if got == want {
                return;
            }
            assert!(got < want, "{q}: {got} > {want}");
            assert!(
                Instant::now() < deadline,
                "{q}: {got} after {secs} s, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// InfluxQL single-quoted string literal.
fn ql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn sink_config(
    env: &Env,
    influx_url: &str,
    db: &str,
    group: &str,
    topic: &str,
    anomalies: Option<&str>,
) -> SinkConfig {
    let mut influx = InfluxConfig::new(influx_url, db);
    influx.request_timeout = Duration::from_secs(5);
    influx.retry = RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    let mut c = SinkConfig::new(&env.brokers, group, influx);
    c.samples_topic = topic.to_string();
    c.anomalies_topic = anomalies.map(str::to_string);
    c.batch_size = 200;
    c.batch_timeout = Duration::from_millis(200);
    c.shutdown_grace = Duration::from_secs(2);
    c
}

fn start(
    config: SinkConfig,
    metrics: SinkMetrics,
) -> (
    CancellationToken,
    JoinHandle<consumer_influx::Result<RunSummary>>,
) {
    let token = CancellationToken::new();
    let handle = tokio::spawn(consumer_influx::run(
        config,
        metrics,
        Health::default(),
        token.clone(),
    ));
    (token, handle)
}

async fn stop(
    token: CancellationToken,
    handle: JoinHandle<consumer_influx::Result<RunSummary>>,
) -> consumer_influx::Result<RunSummary> {
    token.cancel();
    match bounded("sink shutdown", 30, handle).await {
        Ok(r) => r,
        Err(e) => panic!("sink task panicked: {e}"),
    }
}

/// Committed offsets of `group`, per (topic, partition); partitions without a commit are absent.
async fn committed(
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

async fn create_topics(env: &Env, topics: &[(&str, i32)]) {
    bounded(
        "create topics",
        30,
        gpustream_runtime::kafka::ensure_topics(&env.brokers, topics),
    )
    .await
    .expect("create topics");
}

/// Creates database `db` on the test InfluxDB and returns a client for it.
async fn new_database(env: &Env, db: &str) -> Influx {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    create_database(&http, &env.influx_url, db).await;
    Influx {
        http,
        url: env.influx_url.clone(),
        db: db.to_string(),
    }
}

async fn create_database(http: &reqwest::Client, url: &str, db: &str) {
    let resp = http
        .post(format!("{url}/query"))
        .form(&[("q", format!("CREATE DATABASE \"{db}\""))])
        .send()
        .await
        .expect("create database");
    assert!(
        resp.status().is_success(),
        "create database: {}",
        resp.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_and_anomalies_reach_influxdb_and_offsets_follow_writes() {
    let Some(env) = it_env() else { return };
    let topic = unique("it-samples");
    let anomalies_topic = unique("it-anomalies");
    let group = unique("it-group");
    let db = unique_ident("it_db");
    create_topics(&env, &[(&topic, SAMPLE_PARTITIONS), (&anomalies_topic, 1)]).await;
    let influx = new_database(&env, &db).await;

    // Produce: samples of two GPUs per tricky host, garbage, anomalies.
    let producer: FutureProducer = gpustream_runtime::kafka::producer_config(&env.brokers)
        .create()
        .expect("producer");
    let mut expected = Vec::new();
    for (host, _) in HOSTS {
        for gpu_index in 0..2 {
            for seq in 0..ROWS_PER_GPU {
                expected.push(sample(host, gpu_index, seq));
            }
        }
    }
    let mut messages: Vec<(&str, String, Vec<u8>)> = expected
        .iter()
        .map(|s| {
            (
                topic.as_str(),
                s.key(),
                gpustream::wire::encode_sample(s).expect("encode"),
            )
        })
        .collect();
    let garbage: &[&[u8]] = &[b"not json", b"{\"schema_version\":99}", b""];
    for g in garbage {
        messages.push((topic.as_str(), "garbage".to_string(), g.to_vec()));
    }
    let message = "GPU \"hot\" at C:\\temp, 91.5 °C\nsecond line";
    for ev in [
        anomaly(AnomalyState::Firing, message),
        anomaly(AnomalyState::Resolved, "cleared"),
    ] {
        messages.push((
            anomalies_topic.as_str(),
            ev.key(),
            serde_json::to_vec(&ev).expect("json"),
        ));
    }
    messages.push((
        anomalies_topic.as_str(),
        "garbage".to_string(),
        b"{\"state\":\"firing\"}".to_vec(),
    ));
    produce(&producer, &messages).await;
    let n = expected.len() as u64;
    let sample_messages = n + garbage.len() as u64;

    // First run: everything lands, then shut down.
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let config = sink_config(
        &env,
        &env.influx_url,
        &db,
        &group,
        &topic,
        Some(&anomalies_topic),
    );
    let (token, handle) = start(config, metrics.clone());
    influx
        .wait_count("SELECT count(seq) FROM gpu_samples", n, 90)
        .await;
    influx
        .wait_count("SELECT count(anomaly_id) FROM gpu_anomalies", 2, 30)
        .await;
    let summary = stop(token, handle).await.expect("first run");
    assert_eq!(summary.messages, sample_messages + 3, "{summary:?}");
    assert_eq!(summary.decode_errors, 4, "{summary:?}");
    assert_eq!(summary.points_written, n + 2, "{summary:?}");
    assert_eq!(summary.points_rejected, 0, "{summary:?}");
    assert_eq!(metrics.points_written.get(), n + 2);
    assert_eq!(metrics.decode_errors.get(), 4);

    // Every point is there exactly once (rows sharing a timestamp included).
    assert_eq!(influx.count("SELECT count(seq) FROM gpu_samples").await, n);
    assert_eq!(
        influx
            .count("SELECT count(seq) FROM gpu_samples WHERE time = 1700000000000000000")
            .await,
        HOSTS.len() as u64 * 2,
        "seq 0 of each GPU at the exact event time"
    );

    // Host names survive escaping in real InfluxDB 1.x.
    let stored: BTreeSet<String> = influx
        .rows("SHOW TAG VALUES FROM gpu_samples WITH KEY = \"host\"")
        .await
        .iter()
        .filter_map(|r| r.get(1).and_then(Value::as_str).map(str::to_string))
        .collect();
    let want: BTreeSet<String> = HOSTS
        .iter()
        .map(|(_, stored)| (*stored).to_string())
        .collect();
    assert_eq!(stored, want);

    // Spot check one row completely.
    let probe = &expected[expected.len() / 2 + 7];
    let stored_host = HOSTS
        .iter()
        .find(|(h, _)| *h == probe.host)
        .map(|(_, s)| *s)
        .expect("host");
    let q = format!(
        "SELECT seq, gpu_index, gpu_temp_c, board_power_w, pstate, fan_rpm, \"unsupported\", \"GPU Clock [MHz]\", \"Memory Temp [°C]\", \"odd,name=x \\\"q\\\"\", \"gpu_name\" FROM gpu_samples WHERE \"host\" = {} AND \"gpu\" = {} AND seq = {}",
        ql_str(stored_host),
        ql_str(&probe.gpu),
        probe.seq
    );
    let rows = influx.rows(&q).await;
    assert_eq!(rows.len(), 1, "{q}: {rows:?}");
    let row = &rows[0];
    let expected_ts =
        probe.event_time.timestamp_nanos_opt().expect("ns") + (probe.seq % 1_000_000) as i64;
    assert_eq!(row[0].as_i64(), Some(expected_ts));
    assert_eq!(row[1].as_u64(), Some(probe.seq));
    assert_eq!(row[2].as_u64(), Some(u64::from(probe.gpu_index)));
    assert_eq!(row[3].as_f64(), probe.metrics.get(Metric::GpuTemp));
    assert_eq!(row[4].as_f64(), probe.metrics.get(Metric::BoardPower));
    assert_eq!(
        row[5].as_i64(),
        probe.metrics.get(Metric::PState).map(|v| v as i64)
    );
    assert_eq!(row[6].as_f64(), Some(0.0));
    assert_eq!(row[7].as_str(), Some("fan_rpm"));
    for (i, name) in EXTRA_NAMES.iter().enumerate() {
        assert_eq!(
            row[8 + i].as_f64(),
            probe.extra.get(*name).copied(),
            "{name}"
        );
    }
    assert_eq!(row[11].as_str(), Some("NVIDIA GeForce RTX 4090"));

    // Field types: integers stay integers.
    let types: BTreeMap<String, String> = influx
        .rows("SHOW FIELD KEYS FROM gpu_samples")
        .await
        .iter()
        .filter_map(|r| {
            Some((
                r.first()?.as_str()?.to_string(),
                r.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect();
    for (field, ty) in [
        ("seq", "integer"),
        ("gpu_index", "integer"),
        ("pstate", "integer"),
        ("gpu_temp_c", "float"),
        ("unsupported", "string"),
        ("Memory Temp [°C]", "float"),
    ] {
        assert_eq!(
            types.get(field).map(String::as_str),
            Some(ty),
            "{field}: {types:?}"
        );
    }

    // Anomalies, message verbatim.
    let rows = influx
        .rows("SELECT message, anomaly_id, value, threshold, started_at_ms, \"metric\", \"state\", \"host\" FROM gpu_anomalies WHERE \"state\" = 'firing'")
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1].as_str(), Some(message));
    assert_eq!(rows[0][2].as_str(), Some("anomaly-1"));
    assert_eq!(rows[0][3].as_f64(), Some(91.5));
    assert_eq!(rows[0][4].as_f64(), Some(90.0));
    assert_eq!(rows[0][5].as_i64(), Some(1_700_000_010_000));
    assert_eq!(rows[0][6].as_str(), Some("gpu_temp_c"));
    assert_eq!(rows[0][7].as_str(), Some("firing"));
    assert_eq!(rows[0][8].as_str(), Some("comma,host=eq"));

    // Offsets: committed past every message, garbage included.
    let mut partitions: Vec<(&str, i32)> = (0..SAMPLE_PARTITIONS)
        .map(|p| (topic.as_str(), p))
        .collect();
    partitions.push((anomalies_topic.as_str(), 0));
    let offsets = committed(&env.brokers, &group, &partitions).await;
    let sum = |t: &str| -> u64 {
        offsets
            .iter()
            .filter(|((topic, _), _)| topic == t)
            .map(|(_, o)| u64::try_from(*o).unwrap_or(0))
            .sum()
    };
    assert_eq!(sum(&topic), sample_messages, "{offsets:?}");
    assert_eq!(sum(&anomalies_topic), 3, "{offsets:?}");

    // Second run of the same group resumes at the committed offsets: only the new
    // message is consumed.
    let extra_sample = sample("late-host", 0, 0);
    let payload = gpustream::wire::encode_sample(&extra_sample).expect("encode");
    produce(&producer, &[(topic.as_str(), extra_sample.key(), payload)]).await;
    let config = sink_config(
        &env,
        &env.influx_url,
        &db,
        &group,
        &topic,
        Some(&anomalies_topic),
    );
    let (token, handle) = start(config, SinkMetrics::unregistered().expect("metrics"));
    influx
        .wait_count("SELECT count(seq) FROM gpu_samples", n + 1, 60)
        .await;
    // Give a wrongly re-read backlog time to show up in the summary.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let summary = stop(token, handle).await.expect("second run");
    assert_eq!(summary.messages, 1, "{summary:?}");
    assert_eq!(
        influx.count("SELECT count(seq) FROM gpu_samples").await,
        n + 1
    );

    let _ = influx.query(&format!("DROP DATABASE \"{db}\"")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_committed_while_influxdb_is_down() {
    let Some(env) = it_env() else { return };
    let topic = unique("it-down");
    let group = unique("it-down-group");
    let db = unique_ident("it_down_db");
    create_topics(&env, &[(&topic, 1)]).await;
    let influx = new_database(&env, &db).await;
    let producer: FutureProducer = gpustream_runtime::kafka::producer_config(&env.brokers)
        .create()
        .expect("producer");
    let messages: Vec<(&str, String, Vec<u8>)> = (0..50)
        .map(|seq| {
            let s = sample("down-host", 0, seq);
            (
                topic.as_str(),
                s.key(),
                gpustream::wire::encode_sample(&s).expect("encode"),
            )
        })
        .collect();
    produce(&producer, &messages).await;

    // A port nothing listens on: connection refused, retried until shutdown.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let (token, handle) = start(
        sink_config(&env, &dead, &db, &group, &topic, None),
        metrics.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while metrics.write_retries.get() < 3 {
        assert!(Instant::now() < deadline, "no retries seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match stop(token, handle).await {
        Err(Error::WriteAbandoned { points, .. }) => {
            assert!(points > 0 && points <= 50, "{points}")
        }
        other => panic!("expected WriteAbandoned, got {other:?}"),
    }
    assert_eq!(metrics.points_written.get(), 0);
    let offsets = committed(&env.brokers, &group, &[(&topic, 0)]).await;
    assert!(offsets.is_empty(), "nothing may be committed: {offsets:?}");

    // InfluxDB back: the same group writes everything.
    let (token, handle) = start(
        sink_config(&env, &env.influx_url, &db, &group, &topic, None),
        SinkMetrics::unregistered().expect("metrics"),
    );
    influx
        .wait_count("SELECT count(seq) FROM gpu_samples", 50, 60)
        .await;
    let summary = stop(token, handle).await.expect("recovery run");
    assert_eq!(summary.points_written, 50);
    let offsets = committed(&env.brokers, &group, &[(&topic, 0)]).await;
    assert_eq!(offsets.get(&(topic.clone(), 0)), Some(&50));
    let _ = influx.query(&format!("DROP DATABASE \"{db}\"")).await;
}

/// Every message of `topic` (one partition) from the beginning, waiting for `want`.
async fn read_all(brokers: &str, topic: &str, want: usize) -> Vec<rdkafka::message::OwnedMessage> {
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
fn header(m: &rdkafka::message::OwnedMessage, key: &str) -> Option<String> {
    use rdkafka::message::{Headers as _, Message as _};
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).to_string())
}

/// Points InfluxDB refuses for good (a field-type conflict) are isolated by splitting the
/// batch: they land in the dead-letter topic with InfluxDB's message and their source
/// offset, every other point of the same batches is written, and the offsets move past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_points_go_to_the_dead_letter_topic_and_the_rest_is_written() {
    let Some(env) = it_env() else { return };
    let topic = unique("it-refused");
    let dlq = unique("it-refused-dlq");
    let group = unique("it-refused-group");
    let db = unique_ident("it_refused_db");
    create_topics(&env, &[(&topic, 1), (&dlq, 1)]).await;
    let influx = new_database(&env, &db).await;
    // `conflict` exists as a string field in the samples' shard: float values are refused.
    let seed = format!(
        "gpu_samples,host=seed conflict=\"text\" {}\n",
        base_time().timestamp_nanos_opt().expect("ns")
    );
    // InfluxDB 1.6 occasionally answers "database not found" for a moment after CREATE
    // DATABASE while another test drops a database: retry briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = influx
            .http
            .post(format!("{}/write", env.influx_url))
            .query(&[("db", db.as_str())])
            .body(seed.clone())
            .send()
            .await
            .expect("seed write");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if status == 404 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(status, 204, "seed write: {body}");
        break;
    }

    const N: u64 = 300;
    let bad: BTreeSet<u64> = [7, 8, 150, 299].into_iter().collect();
    let producer: FutureProducer = gpustream_runtime::kafka::producer_config(&env.brokers)
        .create()
        .expect("producer");
    let messages: Vec<(&str, String, Vec<u8>)> = (0..N)
        .map(|seq| {
            let mut s = sample("refused-host", 0, seq);
            if bad.contains(&seq) {
                s.extra.insert("conflict".into(), 1.5);
            }
            (
                topic.as_str(),
                s.key(),
                gpustream::wire::encode_sample(&s).expect("encode"),
            )
        })
        .collect();
    produce(&producer, &messages).await;

    let mut config = sink_config(&env, &env.influx_url, &db, &group, &topic, None);
    config.dlq_topic = Some(dlq.clone());
    config.rollups_topic = None;
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let (token, handle) = start(config, metrics.clone());
    influx
        .wait_count(
            "SELECT count(seq) FROM gpu_samples WHERE host = 'refused-host'",
            N - bad.len() as u64,
            60,
        )
        .await;
    let dead = read_all(&env.brokers, &dlq, bad.len()).await;
    let summary = stop(token, handle).await.expect("run");
    assert_eq!(summary.points_written, N - bad.len() as u64, "{summary:?}");
    assert_eq!(summary.points_rejected, bad.len() as u64, "{summary:?}");
    assert_eq!(metrics.points_dead_lettered.get(), bad.len() as u64);

    use rdkafka::message::Message as _;
    let mut dead_offsets = BTreeSet::new();
    for m in &dead {
        let line = std::str::from_utf8(m.payload().unwrap_or_default()).expect("utf8 line");
        assert!(line.starts_with("gpu_samples,"), "{line}");
        assert!(line.contains("conflict=1.5"), "{line}");
        let error = header(m, "error").unwrap_or_default();
        assert!(error.contains("field type conflict"), "{error}");
        assert_eq!(header(m, "http_status").as_deref(), Some("400"));
        assert_eq!(header(m, "source_topic").as_deref(), Some(topic.as_str()));
        let offset: u64 = header(m, "source_offset")
            .and_then(|o| o.parse().ok())
            .expect("source_offset header");
        dead_offsets.insert(offset);
        // The line names its own sample: seq=<offset> because one message per seq.
        assert!(line.contains(&format!("seq={offset}i")), "{line}");
    }
    assert_eq!(
        dead_offsets, bad,
        "exactly the refused samples are dead-lettered"
    );
    let offsets = committed(&env.brokers, &group, &[(&topic, 0)]).await;
    assert_eq!(offsets.get(&(topic.clone(), 0)), Some(&(N as i64)));
    let _ = influx.query(&format!("DROP DATABASE \"{db}\"")).await;
}

/// The v2 write API (`/api/v2/write?org=&bucket=`, token header) against the one local
/// server that speaks it, VictoriaMetrics: every sample arrives as a series point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_write_api_reaches_victoria_metrics() {
    let Some(env) = it_env() else { return };
    let vm = gpustream_test_kit::services("influx_it")
        .map(|s| s.vm_url().to_string())
        .unwrap_or_default();
    let topic = unique("it-v2");
    let group = unique("it-v2-group");
    let host = unique_ident("v2host");
    create_topics(&env, &[(&topic, 1)]).await;
    const N: u64 = 90;
    let producer: FutureProducer = gpustream_runtime::kafka::producer_config(&env.brokers)
        .create()
        .expect("producer");
    // One sample per second (VictoriaMetrics keeps millisecond timestamps), within its
    // retention period (it silently drops older points).
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    let at = |seq: u64| {
        let mut s = sample(&host, 0, seq * 3);
        s.seq = seq;
        s.event_time = t0 + chrono::Duration::seconds(seq as i64);
        s
    };
    let messages: Vec<(&str, String, Vec<u8>)> = (0..N)
        .map(|seq| {
            let s = at(seq);
            (
                topic.as_str(),
                s.key(),
                gpustream::wire::encode_sample(&s).expect("encode"),
            )
        })
        .collect();
    produce(&producer, &messages).await;

    let mut influx = InfluxConfig::v2(&vm, "gpu-org", "gpu-bucket");
    influx.token = Some(consumer_influx::Token("not-logged-token".into()));
    influx.retry = RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    let mut config = SinkConfig::new(&env.brokers, &group, influx);
    config.samples_topic = topic.clone();
    config.anomalies_topic = None;
    config.rollups_topic = None;
    config.dlq_topic = None;
    config.batch_size = 50;
    config.batch_timeout = Duration::from_millis(200);
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let (token, handle) = start(config, metrics.clone());

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let selector = format!("{{__name__=\"gpu_samples_gpu_temp_c\",host=\"{host}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (values, timestamps) = loop {
        let text = http
            .get(format!("{vm}/api/v1/export"))
            .query(&[("match[]", selector.as_str())])
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        let mut values = Vec::new();
        let mut timestamps = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("export line is JSON");
            assert_eq!(v["metric"]["gpu"], "GPU 0", "{line}");
            values.extend(v["values"].as_array().cloned().unwrap_or_default());
            timestamps.extend(v["timestamps"].as_array().cloned().unwrap_or_default());
        }
        if values.len() as u64 >= N || Instant::now() > deadline {
            break (values, timestamps);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let summary = stop(token, handle).await.expect("run");
    assert_eq!(summary.points_written, N, "{summary:?}");
    assert_eq!(
        values.len() as u64,
        N,
        "every sample is a point in VictoriaMetrics"
    );
    let mut got: Vec<(i64, f64)> = timestamps
        .iter()
        .zip(&values)
        .map(|(t, v)| (t.as_i64().expect("ms"), v.as_f64().expect("value")))
        .collect();
    got.sort_by_key(|(t, _)| *t);
    for (i, (t, v)) in got.iter().enumerate() {
        let s = at(i as u64);
        assert_eq!(*t, s.event_time.timestamp_millis(), "point {i}");
        assert_eq!(Some(*v), s.metrics.get(Metric::GpuTemp), "point {i}");
    }
}
