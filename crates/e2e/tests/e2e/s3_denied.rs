//! The S3 bucket of the lake starts refusing the processor in the middle of a run: first
//! an IAM policy denies its key `s3:PutObject` (reads still work), later every S3
//! action; each time the permission comes back. The processor commits nothing to Kafka
//! past what the lake holds, says why on `/health/ready` and in its log, and carries on
//! by itself once allowed again: at the end every sample is in the lake exactly once.
//!
//! The shared moto server takes any key, so the test starts a private one that enforces
//! IAM: `support/s3_iam.py` (boto3 from moto's venv) creates the bucket, an admin and a
//! `lake-writer` user while authentication is still off, then turns it on; from then on
//! moto checks every request's SigV4 signature and the IAM policies of its key (Deny
//! wins over Allow, as on AWS). The processor holds the writer's key; the test reads
//! the lake with the admin's.

use crate::support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gpustream_lake::Lake;
use gpustream_test_kit::data::workspace_root;
use gpustream_test_kit::http::http_get;
use gpustream_test_kit::kafka::{Sender, committed_total};
use gpustream_test_kit::{free_port, services, unique};
use support::{Proc, send_samples};

/// A moto server of the test's own, enforcing IAM; killed on drop.
struct PrivateS3 {
    child: Child,
    endpoint: String,
    bucket: String,
    admin: (String, String),
    writer: (String, String),
}

impl PrivateS3 {
    fn start() -> PrivateS3 {
        let moto = workspace_root().join(".tools/moto-venv/bin/moto_server");
        assert!(
            moto.exists(),
            "{} missing: run scripts/install-deps.sh",
            moto.display()
        );
        let port = free_port();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut s3 = PrivateS3 {
            child,
            endpoint,
            bucket: unique("denied").to_lowercase(),
            admin: Default::default(),
            writer: Default::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(&format!("{}/moto-api/", s3.endpoint)).map(|(s, _)| s) != Some(200) {
            assert!(Instant::now() < deadline, "private moto never came up");
            std::thread::sleep(Duration::from_millis(200));
        }
        let keys: serde_json::Value =
            serde_json::from_str(&s3.iam(&["setup", &s3.endpoint, &s3.bucket])).expect("keys");
        let pair = |who: &str| {
            let k = |i: usize| keys[who][i].as_str().expect("key").to_string();
            (k(0), k(1))
        };
        s3.admin = pair("admin");
        s3.writer = pair("writer");
        s3
    }

    /// Runs `support/s3_iam.py` with `args`; panics unless it succeeds; its stdout.
    fn iam(&self, args: &[&str]) -> String {
        let root = workspace_root();
        let out = Command::new(root.join(".tools/moto-venv/bin/python"))
            .arg(root.join("crates/e2e/tests/e2e/support/s3_iam.py"))
            .args(args)
            .output()
            .expect("run s3_iam.py");
        assert!(
            out.status.success(),
            "s3_iam.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Denies the writer's key `action` on the bucket.
    fn deny(&self, action: &str) {
        let (id, secret) = &self.admin;
        self.iam(&["deny", &self.endpoint, id, secret, &self.bucket, action]);
    }

    /// Lifts the denial.
    fn allow(&self) {
        let (id, secret) = &self.admin;
        self.iam(&["allow", &self.endpoint, id, secret]);
    }

    fn url(&self) -> String {
        format!("s3://{}/lake", self.bucket)
    }

    /// The processor's environment: `AWS_*` for this server with the writer's key, JSON
    /// logs.
    fn writer_env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", self.writer.0.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.writer.1.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
            // One JSON object a line: S3's XML error bodies span lines.
            ("GPUSTREAM_LOG_FORMAT", "json"),
        ]
    }

    /// The lake as the admin reads it (never denied).
    fn reader(&self) -> Lake {
        Lake::open_with_options(
            &self.url(),
            &[
                ("aws_endpoint", &self.endpoint),
                ("aws_access_key_id", &self.admin.0),
                ("aws_secret_access_key", &self.admin.1),
                ("aws_region", "us-east-1"),
                ("aws_allow_http", "true"),
            ],
        )
        .expect("open the lake")
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sample ids in the lake with how often each appears.
fn lake_ids(lake: &Lake) -> std::collections::HashMap<String, usize> {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(gpustream_test_kit::lake::sample_ids(lake))
}

fn wait_lake(lake: &Lake, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if lake_ids(lake).len() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// Watches a denial for `span`: not ready with the S3 refusal named, the lake does not
/// move, no Kafka commit past what it holds.
fn refused_for(proc: &Proc, span: Duration, lake: &Lake, held: usize, ctx: (&str, &str, &str)) {
    let (brokers, group, topic) = ctx;
    let said = proc
        .unready_during(span)
        .unwrap_or_else(|| panic!("/health/ready stayed 200 while S3 denied writes"));
    eprintln!("/health/ready while denied: {said}");
    assert!(
        said.contains("lake: flush failed")
            && said.contains("403 Forbidden")
            && said.contains("AccessDenied"),
        "/health/ready names the lake and S3's refusal: {said}"
    );
    let in_lake = lake_ids(lake).len();
    assert_eq!(in_lake, held, "nothing reaches the lake while denied");
    let offsets = committed_total(brokers, group, topic);
    eprintln!(
        "denied for {span:?}: {in_lake} samples in the lake, offsets committed through {offsets}"
    );
    assert!(
        offsets <= in_lake as i64,
        "offsets committed past the lake while denied: {offsets} > {in_lake}"
    );
}

#[test]
fn s3_denying_writes_stops_commits_and_recovers_without_loss() {
    let Some(svc) = services("s3_denied") else {
        return;
    };
    let s3 = PrivateS3::start();
    let lake = s3.reader();
    let topic = unique("s3-denied");
    let group = unique("s3-denied-g");
    gpustream_test_kit::kafka::create_topic(&svc.brokers, &topic, 2);
    gpustream_test_kit::kafka::create_topic(&svc.brokers, &format!("{topic}-dlq"), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stream-processor.log");
    let mut proc = Proc::start_with(
        &svc.brokers,
        &topic,
        &group,
        &s3.url(),
        &["--flush-interval", "1s"],
        &s3.writer_env(),
        Some(&log),
    );
    proc.wait_up(Duration::from_secs(30));
    let sender = Sender::new(&svc.brokers, &topic);
    let ctx = (svc.brokers.as_str(), group.as_str(), topic.as_str());

    send_samples(&sender, 0, 2_000);
    assert!(
        wait_lake(&lake, 2_000, Duration::from_secs(60)),
        "first rows, with the writer's key allowed"
    );
    proc.wait_ready(Duration::from_secs(30));

    // Writes are denied; reads still work.
    s3.deny("s3:PutObject");
    send_samples(&sender, 2_000, 5_000);
    refused_for(&proc, Duration::from_secs(10), &lake, 2_000, ctx);
    s3.allow();
    assert!(
        wait_lake(&lake, 7_000, Duration::from_secs(120)),
        "the rows held back land once writes are allowed again"
    );
    proc.wait_ready(Duration::from_secs(30));

    // Every S3 action is denied, reads of the table log too.
    s3.deny("s3:*");
    send_samples(&sender, 7_000, 3_000);
    refused_for(&proc, Duration::from_secs(8), &lake, 7_000, ctx);
    s3.allow();
    assert!(
        wait_lake(&lake, 10_000, Duration::from_secs(120)),
        "the rows held back land once S3 is allowed again"
    );
    proc.wait_ready(Duration::from_secs(30));
    assert!(
        proc.terminate(Duration::from_secs(60)).success(),
        "graceful stop"
    );

    let ids = lake_ids(&lake);
    let dupes: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dupes.is_empty(), "duplicates: {dupes:?}");
    assert_eq!(ids.len(), 10_000, "every sample exactly once");
    assert_eq!(
        committed_total(&svc.brokers, &group, &topic),
        10_000,
        "offsets committed to the end once everything is in"
    );
    // Each refusal is in the log: the failed write (PUT) and the failed read (GET).
    let text = std::fs::read_to_string(&log).expect("read the log");
    let refusals: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("lake write failed"))
        })
        .filter_map(|v| v["fields"]["error"].as_str().map(str::to_string))
        .filter(|e| e.contains("403 Forbidden") && e.contains("AccessDenied"))
        .collect();
    for method in ["PUT", "GET"] {
        assert!(
            refusals
                .iter()
                .any(|e| e.contains(&format!("performing {method}"))),
            "the log names the refused {method} ({} refusals logged); last lines, newest first:\n{}",
            refusals.len(),
            text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
    }
}
