//! The ops endpoint: `/metrics` (Prometheus text), `/health/live`, `/health/ready`, and
//! `/health` (the same as ready, what load balancers and the compose healthchecks ask).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

use super::Health;
use crate::error::{Error, Result};

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

async fn ready_handler(State(s): State<OpsState>) -> (StatusCode, String) {
    match s.health.problem() {
        None => (StatusCode::OK, "ok\n".into()),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {p}\n")),
    }
}

async fn live_handler(State(s): State<OpsState>) -> (StatusCode, String) {
    if s.health.is_live() {
        (StatusCode::OK, "live\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not live: {}\n", s.health.problem().unwrap_or_default()),
        )
    }
}

/// Serves the ops endpoint on `addr` in the background; returns the bound address
/// (useful with port 0). Process metrics are added to `registry`.
pub async fn serve_ops(addr: SocketAddr, registry: Registry, health: Health) -> Result<SocketAddr> {
    // A second registration (a test starting two services in one process) is harmless.
    if let Ok(c) = super::ProcessCollector::new() {
        let _ = registry.register(Box::new(c));
    }
    let io = |source| Error::Ops {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(io)?;
    let bound = listener.local_addr().map_err(io)?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(ready_handler))
        .route("/health/ready", get(ready_handler))
        .route("/health/live", get(live_handler))
        .with_state(OpsState { registry, health });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "ops endpoint stopped");
        }
    });
    tracing::info!(%bound, "serving /metrics, /health/live and /health/ready");
    Ok(bound)
}
