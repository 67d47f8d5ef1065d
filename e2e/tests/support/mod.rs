//! Helpers shared by the tests that run `stream-processor` as a process of its own and
//! watch it from outside: its `/metrics` and `/health`, its lake, its Kafka group.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use chrono::{DateTime, TimeZone, Utc};
use gpustream::{Metric, Metrics, Sample, Source};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `stream-processor` with its ops endpoint.
pub struct Proc {
    pub child: Child,
    pub ops: String,
}

impl Proc {
    /// Starts the real command line on `topic`/`group`/`lake` with extra flags; anomaly
    /// and rollup topics are off unless `extra` sets them.
    pub fn start(brokers: &str, topic: &str, group: &str, lake: &str, extra: &[&str]) -> Proc {
        let port = free_port();
        let ops = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_stream-processor-under-test"))
            .args(["--brokers", brokers, "--topic", topic, "--group", group])
            .args(["--lake", lake, "--metrics-addr", &ops])
            .args(["--anomalies-topic", "", "--rollups-topic", ""])
            .args(["--dlq-topic", &format!("{topic}-dlq")])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start stream-processor-under-test");
        Proc {
            child,
            ops: format!("http://{ops}"),
        }
    }

    /// `GET path` on the ops endpoint: status and body, `None` while it is not up.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("{}{path}", self.ops))
    }

    /// The text exposition of `/metrics` (empty while the endpoint is not up).
    pub fn metrics(&self) -> String {
        self.get("/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    /// Waits until `/health` answers (any status), at most `timeout`.
    pub fn wait_up(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.get("/health").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{}/health never answered", self.ops);
    }

    /// Polls `/metrics` until `pred` holds for `name`'s value, at most `timeout`; returns
    /// the last value seen.
    pub fn wait_metric(
        &self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = metric(&self.metrics(), name);
            if v.is_some_and(&pred) || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits at most `timeout` for the exit; panics if it did not exit.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("stream-processor did not exit within {timeout:?} of SIGTERM");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed assertion must not leave a processor running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Minimal HTTP/1.0 GET (the ops endpoint speaks HTTP/1.1 and closes after answering).
pub fn http_get(url: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Value of a sample line of the text exposition whose name-with-labels is exactly
/// `series` (e.g. `stream_processor_consumer_lag{partition="0"}`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Every series of the exposition whose name starts with `prefix`, with its value.
pub fn series(text: &str, prefix: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// A GPU sample at `time` with a temperature and a load, id derived like the producer's.
pub fn sample(gpu: &str, seq: u64, time: DateTime<Utc>, temp: f64) -> Sample {
    let mut metrics = Metrics::default();
    metrics.set(Metric::GpuTemp, temp);
    metrics.set(Metric::GpuLoad, 50.0);
    let session = "2025-03-14T10:00:00".to_string();
    Sample {
        event_id: gpustream::event_id(Source::Sim, "ops-host", gpu, &session, seq),
        event_time: time,
        host: "ops-host".into(),
        gpu: gpu.into(),
        gpu_index: 0,
        gpu_name: Some("Test GPU".into()),
        source: Source::Sim,
        session,
        seq,
        metrics,
        unsupported: vec![],
        extra: Default::default(),
    }
}

/// A fixed, whole-minute start time for generated samples.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 10, 0, 0)
        .single()
        .expect("valid time")
}

/// Sends raw payloads to explicit partitions and waits until every one is acknowledged.
pub struct Sender {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl Sender {
    pub fn new(brokers: &str, topic: &str) -> Sender {
        Sender {
            producer: gpustream::kafka::producer_config(brokers)
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

    /// Queues a sample for `partition`.
    pub fn send_sample(&self, partition: i32, s: &Sample) {
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

/// Event ids in a local lake's `samples` table, with how often each appears, and the
/// names of files there that are not Parquet (temporary files must never be visible).
pub fn lake_ids(lake: &std::path::Path) -> (HashMap<String, usize>, Vec<String>) {
    let table = lake.join("samples");
    let mut ids = HashMap::new();
    let mut strays = Vec::new();
    let mut stack = vec![table];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "parquet") {
                strays.push(p.display().to_string());
                continue;
            }
            let file = std::fs::File::open(&p).expect("open parquet");
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .expect("parquet")
                    .build()
                    .expect("reader");
            for b in reader {
                let b = b.expect("batch");
                let col = b
                    .column_by_name("event_id")
                    .expect("event_id column")
                    .as_string::<i32>();
                for i in 0..b.num_rows() {
                    *ids.entry(col.value(i).to_string()).or_default() += 1;
                }
            }
        }
    }
    (ids, strays)
}

/// Polls the lake until it holds at least `n` distinct sample ids, at most `timeout`;
/// returns how long that took (or `None`).
pub fn wait_lake(lake: &std::path::Path, n: usize, timeout: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if lake_ids(lake).0.len() >= n {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
