//! What every long-running service exposes: Prometheus `/metrics`, a `/health`
//! endpoint, and structured logs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

/// Shared health state: healthy until a component reports a problem.
#[derive(Clone, Default)]
pub struct Health(Arc<Mutex<Option<String>>>);

impl Health {
    /// Marks the service unhealthy with a reason (shown by `/health`).
    pub fn fail(&self, reason: impl Into<String>) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(reason.into());
        }
    }

    /// Marks the service healthy again.
    pub fn ok(&self) {
        if let Ok(mut g) = self.0.lock() {
            *g = None;
        }
    }

    /// `None` when healthy, else the reason.
    pub fn problem(&self) -> Option<String> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    health: Health,
}

async fn metrics_handler(State(s): State<OpsState>) -> (StatusCode, String) {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => (StatusCode::OK, String::from_utf8_lossy(&buf).into_owned()),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn health_handler(State(s): State<OpsState>) -> (StatusCode, String) {
    match s.health.problem() {
        None => (StatusCode::OK, "ok\n".into()),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {p}\n")),
    }
}

/// Serves `/metrics` and `/health` on `addr` in the background; returns the bound
/// address (useful with port 0).
pub async fn serve_ops(
    addr: SocketAddr,
    registry: Registry,
    health: Health,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(health_handler))
        .with_state(OpsState { registry, health });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "ops endpoint stopped");
        }
    });
    tracing::info!(%bound, "serving /metrics and /health");
    Ok(bound)
}

/// Structured logs to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
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
