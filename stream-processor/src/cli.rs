//! The `stream-processor` command line: flags (with `GPUSTREAM_*` env fallbacks and a
//! TOML file), the ops endpoint, and the processor's lifecycle.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use gpustream::config::parse_duration;
use gpustream::lake::Lake;
use gpustream::service::{Health, init_logging, serve_ops, shutdown_signal};

use crate::detect::{Detector, default_rules};
use crate::metrics::ProcessorMetrics;
use crate::pipeline::{Processor, ProcessorConfig};
use crate::rollups::RollupConfig;

/// Flags of `stream-processor`.
#[derive(Parser)]
#[command(
    name = "stream-processor",
    version,
    about = "Consumes GPU samples, flags anomalies, writes the Parquet lake"
)]
pub struct Args {
    /// TOML file with defaults for any flag.
    #[arg(long, env = "GPUSTREAM_CONFIG")]
    config: Option<String>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "GPUSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic of samples.
    #[arg(long, env = "GPUSTREAM_TOPIC", default_value = gpustream::kafka::SAMPLES_TOPIC)]
    topic: String,
    /// Consumer group.
    #[arg(long, env = "GPUSTREAM_GROUP", default_value = "stream-processor")]
    group: String,
    /// Lake location: a local path, file:// or s3:// URL.
    #[arg(long, env = "GPUSTREAM_LAKE", default_value = "./lake")]
    lake: String,
    /// Topic for anomaly events ("" to disable).
    #[arg(long, env = "GPUSTREAM_ANOMALIES_TOPIC", default_value = gpustream::kafka::ANOMALIES_TOPIC)]
    anomalies_topic: String,
    /// Dead-letter topic for undecodable messages.
    #[arg(long, env = "GPUSTREAM_DLQ_TOPIC", default_value = gpustream::kafka::DLQ_TOPIC)]
    dlq_topic: String,
    /// Topic for 1-minute rollups ("" to disable; they still go to the lake).
    #[arg(long, env = "GPUSTREAM_ROLLUPS_TOPIC", default_value = gpustream::kafka::ROLLUPS_TOPIC)]
    rollups_topic: String,
    /// Rollup window width.
    #[arg(long, env = "GPUSTREAM_ROLLUP_WINDOW", default_value = "1m", value_parser = parse_duration)]
    rollup_window: Duration,
    /// How late (in event time, behind the GPU's newest sample) a sample may arrive and still count in its rollup.
    #[arg(long, env = "GPUSTREAM_ALLOWED_LATENESS", default_value = "10s", value_parser = parse_duration)]
    allowed_lateness: Duration,
    /// Flush to the lake when this many samples are buffered.
    #[arg(long, env = "GPUSTREAM_FLUSH_ROWS", default_value_t = 100_000)]
    flush_rows: usize,
    /// Flush to the lake when the buffered messages reach this many payload bytes (files
    /// roll by size; bounds memory).
    #[arg(long, env = "GPUSTREAM_FLUSH_BYTES", default_value_t = crate::pipeline::DEFAULT_FLUSH_BYTES)]
    flush_bytes: usize,
    /// Flush at least this often while data is buffered.
    #[arg(long, env = "GPUSTREAM_FLUSH_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    flush_interval: Duration,
    /// Address of the /metrics and /health endpoint.
    #[arg(long, env = "GPUSTREAM_METRICS_ADDR", default_value = "127.0.0.1:9101")]
    metrics_addr: SocketAddr,
    /// Anomaly rules (TOML, see docs/anomaly-rules.md); default: the built-in
    /// stream-processor/rules.default.toml.
    #[arg(long, env = "GPUSTREAM_RULES")]
    rules: Option<String>,
    /// Alertmanager base URL: anomaly transitions are posted to <URL>/api/v2/alerts.
    #[arg(long, env = "GPUSTREAM_ALERTMANAGER_URL")]
    alertmanager_url: Option<String>,
    /// URL that receives anomaly transitions as a JSON array of anomaly events.
    #[arg(long, env = "GPUSTREAM_WEBHOOK_URL")]
    webhook_url: Option<String>,
}

/// Entry point of the binary: config file, logs, then [`run`] on a multi-threaded runtime.
pub fn main() -> anyhow::Result<()> {
    gpustream::config::load_config_file_into_env()?;
    init_logging();
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// Runs the processor until SIGINT/SIGTERM, then publishes what it holds and commits.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let lake = Lake::open(&args.lake)?;
    if !args.anomalies_topic.is_empty() {
        gpustream::kafka::ensure_topics(
            &args.brokers,
            &[(&args.anomalies_topic, 1), (&args.dlq_topic, 1)],
        )
        .await?;
    } else {
        gpustream::kafka::ensure_topics(&args.brokers, &[(&args.dlq_topic, 1)]).await?;
    }
    let rules = match &args.rules {
        Some(path) => crate::rules::RuleSet::load(path)?,
        None => default_rules(),
    };
    let registry = prometheus::Registry::new();
    let metrics = ProcessorMetrics::new(&registry)?;
    let alerter = crate::alerting::Alerter::start(
        crate::alerting::AlertConfig {
            alertmanager_url: args.alertmanager_url.clone(),
            webhook_url: args.webhook_url.clone(),
            ..Default::default()
        },
        Some(&registry),
    )?;
    let health = Health::default();
    serve_ops(args.metrics_addr, registry, health.clone()).await?;
    let cfg = ProcessorConfig {
        brokers: args.brokers,
        topic: args.topic,
        group: args.group,
        anomalies_topic: args.anomalies_topic,
        dlq_topic: args.dlq_topic,
        rollups_topic: args.rollups_topic,
        rollup: RollupConfig {
            width: args.rollup_window,
            allowed_lateness: args.allowed_lateness,
            ..Default::default()
        },
        flush_rows: args.flush_rows,
        flush_interval: args.flush_interval,
    };
    let processor = Processor::new(cfg, lake, Detector::new(rules), metrics, health)?
        .with_flush_bytes(args.flush_bytes)
        .with_alerter(alerter);
    let stats = processor.run(shutdown_signal()).await?;
    println!(
        "consumed {} messages, wrote {} rows, {} anomaly events, {} rollups ({} late samples), {} dead-lettered, {} flushes",
        stats.consumed,
        stats.rows_written,
        stats.anomalies,
        stats.rollups,
        stats.late,
        stats.dead_lettered,
        stats.flushes
    );
    Ok(())
}
