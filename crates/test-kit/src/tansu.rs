//! A private Kafka-API broker (Tansu) a test may stop and start at will, keeping its
//! data in S3 (the shared moto server) so a restart loses nothing.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::names::free_port;
use crate::process::{spawn_logged, terminate, wait_until};

/// A `tansu broker` on 127.0.0.1 with the `s3://` storage engine. Stopped on drop.
pub struct PrivateBroker {
    exe: PathBuf,
    s3_endpoint: String,
    bucket: String,
    port: u16,
    /// Bootstrap servers, `127.0.0.1:PORT`; unchanged across restarts.
    pub brokers: String,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl PrivateBroker {
    /// Starts a broker whose storage is a new bucket on `s3_endpoint`, with the `tansu`
    /// named by `GPUSTREAM_TEST_TANSU` (written by `scripts/services.sh start`).
    pub fn start(s3_endpoint: &str) -> PrivateBroker {
        let exe = std::env::var_os("GPUSTREAM_TEST_TANSU")
            .map(PathBuf::from)
            .expect("GPUSTREAM_TEST_TANSU (scripts/services.sh start)");
        let bucket = crate::s3::new_bucket(s3_endpoint, "broker");
        let port = free_port();
        let mut broker = PrivateBroker {
            exe,
            s3_endpoint: s3_endpoint.to_string(),
            bucket,
            port,
            brokers: format!("127.0.0.1:{port}"),
            child: None,
            log: tempfile::NamedTempFile::new().expect("log file"),
        };
        broker.resume();
        broker
    }

    /// Whether the listener accepts connections.
    pub fn is_up(&self) -> bool {
        TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_millis(200),
        )
        .is_ok()
    }

    /// Starts the broker again on the same port and storage (after [`PrivateBroker::stop`]).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = self.log.reopen().expect("log");
        let mut command = Command::new(&self.exe);
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .arg("--storage-engine")
            .arg(format!("s3://{}/", self.bucket))
            .env("AWS_ENDPOINT", &self.s3_endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1");
        let child = spawn_logged(&mut command, log);
        self.child = Some(child);
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(50),
            || self.is_up(),
            || {
                format!(
                    "tansu did not listen within 30 s; log: {}",
                    std::fs::read_to_string(self.log.path()).unwrap_or_default()
                )
            },
        );
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 10 s) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let status = Command::new(&self.exe)
            .args(["topic", "create", topic, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://{}", self.brokers))
            .stdout(Stdio::null())
            .status()
            .expect("tansu topic create");
        assert!(status.success(), "tansu topic create {topic}: {status}");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
