//! Private server processes: starting one with its log captured, waiting until it
//! answers, and stopping it gently.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `command` with stdout discarded and stderr written to `log`; panics naming
/// the program when it cannot start.
pub fn spawn_logged(command: &mut Command, log: File) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", Path::new(command.get_program()).display()))
}

/// Polls `ready` every `every` until it holds; panics with `why()` once `within` has
/// passed without it.
pub fn wait_until(
    within: Duration,
    every: Duration,
    mut ready: impl FnMut() -> bool,
    why: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + within;
    while !ready() {
        if Instant::now() >= deadline {
            panic!("{}", why());
        }
        std::thread::sleep(every);
    }
}

/// SIGTERM, then SIGKILL after 10 s; waits until the process is gone.
pub fn terminate(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
