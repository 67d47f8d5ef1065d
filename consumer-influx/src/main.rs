//! `consumer-influx`: Kafka → InfluxDB sink. See the library for the work.

use anyhow::Context as _;
use clap::Parser as _;
use consumer_influx::{Cli, SinkMetrics};
use gpustream::service::{Health, init_logging, serve_ops, shutdown_signal};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    // Before any thread exists: the file's values become env fallbacks for clap.
    let config_file =
        gpustream::config::load_config_file_into_env().context("reading the configuration file")?;
    let cli = Cli::parse();
    init_logging();
    if let Some(path) = &config_file {
        tracing::info!(path = %path, "configuration file loaded");
    }
    let config = cli.sink_config().context("invalid configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = prometheus::Registry::new();
        let metrics = SinkMetrics::register(&registry)?;
        let health = Health::default();
        serve_ops(cli.metrics_addr, registry, health.clone())
            .await
            .with_context(|| format!("serving /metrics on {}", cli.metrics_addr))?;

        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            trigger.cancel();
        });

        let summary = consumer_influx::run(config, metrics, health, shutdown).await?;
        tracing::info!(
            messages = summary.messages,
            points_written = summary.points_written,
            points_rejected = summary.points_rejected,
            decode_errors = summary.decode_errors,
            batches = summary.batches,
            "stopped"
        );
        Ok(())
    })
}
