//! A private Alertmanager whose webhook receiver the test chooses.

use std::time::{Duration, Instant};

use crate::names::free_port;

/// A `prometheus-alertmanager` on 127.0.0.1 (no gossip cluster) with its data in a
/// temporary directory, routing every alert to one webhook with 1-second grouping.
/// Stopped on drop.
pub struct PrivateAlertmanager {
    child: std::process::Child,
    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for PrivateAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrivateAlertmanager {
    /// Starts one that sends notifications (grouped by `anomaly_id`, resolved ones too) to
    /// `receiver_url`, and waits until it is ready. The binary is
    /// `GPUSTREAM_TEST_ALERTMANAGER_BIN` or `prometheus-alertmanager` on the PATH.
    pub fn start(receiver_url: &str) -> PrivateAlertmanager {
        let bin = std::env::var("GPUSTREAM_TEST_ALERTMANAGER_BIN")
            .unwrap_or_else(|_| "prometheus-alertmanager".to_string());
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: test\n  group_by: ['anomaly_id']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    webhook_configs:\n      - url: '{receiver_url}'\n        send_resolved: true\n"
            ),
        )
        .expect("config");
        let port = free_port();
        let child = std::process::Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("am.log")).expect("log"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} (apt install prometheus-alertmanager): {e}")
            });
        let am = PrivateAlertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while crate::http::http_get(&format!("{}/-/ready", am.url))
            .is_none_or(|(status, _)| status != 200)
        {
            assert!(
                Instant::now() < deadline,
                "alertmanager did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }
}
