//! `consumer-influx`: Kafka → InfluxDB sink. See the library for the work.

use std::process::ExitCode;

use clap::Parser as _;
use consumer_influx::cli::Command;
use consumer_influx::{Cli, SinkMetrics};
use gpustream_runtime::service::{Health, build_info, serve_ops, shutdown_signal};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    gpustream_runtime::startup::run("consumer-influx", run(cli))
}

async fn run(cli: Cli) -> consumer_influx::Result<()> {
    if let Some(Command::Config { .. }) = cli.command {
        print!("{}", cli.effective()?.to_toml());
        return Ok(());
    }
    let effective = cli.effective()?;
    let config = cli.sink_config()?;
    let registry = prometheus::Registry::new();
    build_info(&registry, "consumer-influx", env!("CARGO_PKG_VERSION"))?;
    let metrics = SinkMetrics::register(&registry)?;
    let health = Health::default();
    serve_ops(effective.settings.metrics_addr, registry, health.clone()).await?;
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
}
