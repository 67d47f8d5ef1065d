//! What every long-running service exposes and how it starts and stops:
//!
//! - [`health`]: liveness and readiness, each part of the service reporting its own
//!   state (a down InfluxDB makes the sink not ready, never not live);
//! - [`metrics`]: the metric vocabulary shared by every service (one name, a
//!   `component` label), build info and process metrics;
//! - [`serve_ops`]: `/metrics`, `/health/live`, `/health/ready` (and `/health`, the same
//!   as ready);
//! - [`init_logging`] and [`shutdown_signal`].

pub mod health;
pub mod metrics;
mod ops;

pub use health::Health;
pub use metrics::{CommonMetrics, ProcessCollector, build_info};
pub use ops::serve_ops;

/// Log filter when `RUST_LOG` is not set: `info`, but delta-rs and its kernel only from
/// `warn` (at `info` they log every snapshot they build, with the table's schema).
pub const DEFAULT_LOG: &str = "info,buoyant_kernel=warn,delta_kernel=warn,deltalake_core=warn";

/// Structured logs to stderr; `RUST_LOG` overrides [`DEFAULT_LOG`];
/// `GPUSTREAM_LOG_FORMAT=json` writes one JSON object per line.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if std::env::var("GPUSTREAM_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
