//! Names no other test (or earlier run against the same services) uses, and free ports.

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn parts() -> (u32, u32, u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos,
    )
}

/// `prefix-PID-N-NANOS`: a topic, group or bucket name unique to this process and call.
///
/// ```
/// let (a, b) = (gpustream_test_kit::unique("t"), gpustream_test_kit::unique("t"));
/// assert_ne!(a, b);
/// assert!(a.starts_with("t-"));
/// ```
pub fn unique(prefix: &str) -> String {
    let (pid, n, nanos) = parts();
    format!("{prefix}-{pid}-{n}-{nanos}")
}

/// `prefix_PID_N_NANOS`: like [`unique`], for identifiers where `-` needs quoting
/// (InfluxDB databases).
pub fn unique_ident(prefix: &str) -> String {
    let (pid, n, nanos) = parts();
    format!("{prefix}_{pid}_{n}_{nanos}")
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
