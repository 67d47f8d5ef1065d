//! `stream-processor`: Kafka → anomalies + Parquet lake.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use gpustream::config::parse_duration;
use gpustream::lake::Lake;
use gpustream::service::{Health, init_logging, serve_ops, shutdown_signal};
use stream_processor::detect::{Detector, default_rules};
use stream_processor::metrics::ProcessorMetrics;
use stream_processor::pipeline::{Processor, ProcessorConfig};

#[derive(Parser)]
#[command(name = "stream-processor", version, about = "Consumes GPU samples, flags anomalies, writes the Parquet lake")]
struct Args {
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
    /// Flush to the lake when this many samples are buffered.
    #[arg(long, env = "GPUSTREAM_FLUSH_ROWS", default_value_t = 100_000)]
    flush_rows: usize,
    /// Flush at least this often while data is buffered.
    #[arg(long, env = "GPUSTREAM_FLUSH_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    flush_interval: Duration,
    /// Address of the /metrics and /health endpoint.
    #[arg(long, env = "GPUSTREAM_METRICS_ADDR", default_value = "127.0.0.1:9101")]
    metrics_addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gpustream::config::load_config_file_into_env()?;
    init_logging();
    let args = Args::parse();
    let lake = Lake::open(&args.lake)?;
    if !args.anomalies_topic.is_empty() {
        gpustream::kafka::ensure_topics(&args.brokers, &[(&args.anomalies_topic, 1), (&args.dlq_topic, 1)]).await?;
    } else {
        gpustream::kafka::ensure_topics(&args.brokers, &[(&args.dlq_topic, 1)]).await?;
    }
    let registry = prometheus::Registry::new();
    let metrics = ProcessorMetrics::new(&registry)?;
    let health = Health::default();
    serve_ops(args.metrics_addr, registry, health.clone()).await?;
    let cfg = ProcessorConfig {
        brokers: args.brokers,
        topic: args.topic,
        group: args.group,
        anomalies_topic: args.anomalies_topic,
        dlq_topic: args.dlq_topic,
        flush_rows: args.flush_rows,
        flush_interval: args.flush_interval,
    };
    let processor = Processor::new(cfg, lake, Detector::new(default_rules()), metrics, health)?;
    let stats = processor.run(shutdown_signal()).await?;
    println!(
        "consumed {} messages, wrote {} rows, {} anomaly events, {} dead-lettered, {} flushes",
        stats.consumed, stats.rows_written, stats.anomalies, stats.dead_lettered, stats.flushes
    );
    Ok(())
}
