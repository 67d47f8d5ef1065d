//! Helpers shared by the tests that run `stream-processor` as a process of its own and
//! watch it from outside: its `/metrics` and `/health`, its lake, its Kafka group.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gpustream::{Metric, Sample};
use gpustream_test_kit::SampleBuilder;
use gpustream_test_kit::free_port;
use gpustream_test_kit::http::{http_get, metric};
use gpustream_test_kit::lake::lake_ids;

/// A running `stream-processor` with its ops endpoint.
pub mod influx_sink;

pub struct Proc {
    pub child: Child,
    pub ops: String,
}

impl Proc {
    /// Starts the real command line on `topic`/`group`/`lake` with extra flags; anomaly
    /// and rollup topics are off unless `extra` sets them.
    pub fn start(brokers: &str, topic: &str, group: &str, lake: &str, extra: &[&str]) -> Proc {
        Proc::start_with(brokers, topic, group, lake, extra, &[], None)
    }

    /// Like [`Proc::start`], with extra environment variables (e.g. the `AWS_*` settings
    /// of a private S3 server) and, when `log` is given, its log (stderr) written to
    /// that file instead of the test's stderr.
    pub fn start_with(
        brokers: &str,
        topic: &str,
        group: &str,
        lake: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Proc {
        let port = free_port();
        let ops = format!("127.0.0.1:{port}");
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::inherit(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_stream-processor-under-test"))
            .args(["--brokers", brokers, "--topic", topic, "--group", group])
            .args(["--lake", lake, "--metrics-addr", &ops])
            .args(["--anomalies-topic", "", "--rollups-topic", ""])
            .args(["--dlq-topic", &format!("{topic}-dlq")])
            .args(extra)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
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

    /// Watches `/health/ready` for `span`; the body of the last answer that was not 200
    /// (`None`: ready all along).
    pub fn unready_during(&self, span: Duration) -> Option<String> {
        let start = Instant::now();
        let mut said = None;
        while start.elapsed() < span {
            if let Some((status, body)) = self.get("/health/ready")
                && status != 200
            {
                said = Some(body);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        said
    }

    /// Waits until `/health/ready` answers 200; panics after `timeout`.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.get("/health/ready").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "not ready again within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
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

/// Sends samples `first..first + n` of four GPUs, 100 ms apart from the test kit's `t0`,
/// alternately to partitions 0 and 1, and waits until they are delivered.
pub fn send_samples(sender: &gpustream_test_kit::kafka::Sender, first: u64, n: u64) {
    for i in first..first + n {
        let gpu = format!("gpu{}", i % 4);
        let t = gpustream_test_kit::samples::t0() + chrono::Duration::milliseconds(i as i64 * 100);
        sender.send_sample((i % 2) as i32, &sample(&gpu, i, t, 60.0 + (i % 7) as f64));
    }
    sender.flush();
}

/// A GPU sample at `time` with a temperature and a load, id derived like the producer's.
pub fn sample(gpu: &str, seq: u64, time: DateTime<Utc>, temp: f64) -> Sample {
    SampleBuilder::new("ops-host", gpu)
        .session("2025-03-14T10:00:00")
        .seq(seq)
        .at(time)
        .name("Test GPU")
        .metric(Metric::GpuTemp, temp)
        .metric(Metric::GpuLoad, 50.0)
        .build()
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
