//! A private InfluxDB 1.x server a test may stop and start at will, without disturbing
//! the shared instance other tests use.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::names::free_port;
use crate::process::{spawn_logged, terminate, wait_until};

/// An `influxd` on 127.0.0.1 with its data in a temporary directory. Stopped on drop.
pub struct PrivateInflux {
    exe: PathBuf,
    config: PathBuf,
    /// Base URL, e.g. `http://127.0.0.1:PORT`; unchanged across restarts.
    pub url: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl PrivateInflux {
    /// Starts a fresh server with the `influxd` named by `GPUSTREAM_TEST_INFLUXD` (written
    /// by `scripts/services.sh start`), or `influxd` on the PATH.
    pub fn start() -> PrivateInflux {
        PrivateInflux::start_with(false)
    }

    /// Starts a fresh server that requires authentication (`[http] auth-enabled`): the
    /// first request must create an admin user (`CREATE USER ... WITH ALL PRIVILEGES`).
    pub fn start_with_auth() -> PrivateInflux {
        PrivateInflux::start_with(true)
    }

    fn start_with(auth: bool) -> PrivateInflux {
        let exe = std::env::var_os("GPUSTREAM_TEST_INFLUXD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("influxd"));
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, rpc) = (free_port(), free_port());
        let d = |name: &str| dir.path().join(name).display().to_string();
        let config = dir.path().join("influxdb.conf");
        std::fs::write(
            &config,
            format!(
                "reporting-enabled = false\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{}\"\n\
                 [data]\n  dir = \"{}\"\n  wal-dir = \"{}\"\n  query-log-enabled = false\n\
                 [http]\n  enabled = true\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n  auth-enabled = {auth}\n\
                 [monitor]\n  store-enabled = false\n",
                d("meta"),
                d("data"),
                d("wal"),
            ),
        )
        .expect("write influxdb.conf");
        let mut server = PrivateInflux {
            exe,
            config,
            url: format!("http://127.0.0.1:{http}"),
            child: None,
            _dir: dir,
        };
        server.resume();
        server
    }

    /// Whether `/ping` answers 204.
    pub fn is_up(&self) -> bool {
        let Some(addr) = self.url.strip_prefix("http://") else {
            return false;
        };
        ping(addr)
    }

    /// Starts the server again on the same port and data (after [`PrivateInflux::stop`]).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "influxd already running");
        let log = std::fs::File::create(self.config.with_extension("log")).expect("log file");
        let child = spawn_logged(
            Command::new(&self.exe).arg("-config").arg(&self.config),
            log,
        );
        self.child = Some(child);
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(100),
            || self.is_up(),
            || {
                format!(
                    "influxd did not answer /ping within 30 s; see {}",
                    self.config.with_extension("log").display()
                )
            },
        );
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(&mut child);
    }

    /// The configuration file (its directory holds the data and the server log).
    pub fn config(&self) -> &Path {
        &self.config
    }
}

impl Drop for PrivateInflux {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(addr: &str) -> bool {
    crate::http::http_get(&format!("http://{addr}/ping")).is_some_and(|(status, _)| status == 204)
}
