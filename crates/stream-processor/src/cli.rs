//! The `stream-processor` command line: flags (each with its `GPUSTREAM_*` variable)
//! over the `[stream_processor]` section of the configuration file over built-in
//! defaults; Kafka connection settings from `--brokers`, `-X` and the file's `[kafka]`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use gpustream_lake::Lake;
use gpustream_runtime::config::{
    ConnectionArgs, parse_duration, resolve, serde_duration, serde_opt_duration,
};
use gpustream_runtime::kafka::KafkaSettings;
use gpustream_runtime::service::{Health, build_info, serve_ops, shutdown_signal};
use serde::{Deserialize, Serialize};

use crate::detect::{Detector, default_rules};
use crate::error::Result;
use crate::metrics::ProcessorMetrics;
use crate::pipeline::{Processor, ProcessorConfig};
use crate::rollups::RollupConfig;

/// The configuration file section of this binary.
pub const SECTION: &str = "stream_processor";
/// Kafka brokers when none are configured.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// Consumes GPU samples, flags anomalies, writes the lake.
///
/// Every flag can also be set by its GPUSTREAM_* environment variable or in the
/// [stream_processor] section of the --config file; Kafka connection settings go in its
/// [kafka] section or -X (secrets only from GPUSTREAM_KAFKA_SASL_PASSWORD and the like).
#[derive(Debug, Clone, Default, Parser, Serialize)]
#[command(name = "stream-processor", version)]
pub struct Args {
    /// What to do instead of running (`config --print`).
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
    /// --config, --brokers and -X (sections [kafka] and [stream_processor] of the file).
    #[command(flatten)]
    #[serde(skip)]
    pub connection: ConnectionArgs,
    /// Topic of samples [default: gpu-samples].
    #[arg(long, env = "GPUSTREAM_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Consumer group [default: stream-processor].
    #[arg(long, env = "GPUSTREAM_GROUP", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Lake location: a local path, file://, s3:// or hdfs:// URL [default: ./lake].
    #[arg(long, env = "GPUSTREAM_LAKE", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lake: Option<String>,
    /// Topic for anomaly events ("" to disable) [default: gpu-anomalies].
    #[arg(long, env = "GPUSTREAM_ANOMALIES_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomalies_topic: Option<String>,
    /// Dead-letter topic for undecodable messages [default: gpu-dlq].
    #[arg(long, env = "GPUSTREAM_DLQ_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_topic: Option<String>,
    /// Topic for 1-minute rollups ("" to disable; they still go to the lake)
    /// [default: gpu-rollups-1m].
    #[arg(long, env = "GPUSTREAM_ROLLUPS_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollups_topic: Option<String>,
    /// Rollup window width [default: 1m].
    #[arg(long, env = "GPUSTREAM_ROLLUP_WINDOW", value_parser = parse_duration, global = true)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub rollup_window: Option<Duration>,
    /// How late (in event time, behind the GPU's newest sample) a sample may arrive and
    /// still count in its rollup [default: 10s].
    #[arg(long, env = "GPUSTREAM_ALLOWED_LATENESS", value_parser = parse_duration, global = true)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub allowed_lateness: Option<Duration>,
    /// Flush to the lake when this many samples are buffered [default: 100000].
    #[arg(long, env = "GPUSTREAM_FLUSH_ROWS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_rows: Option<usize>,
    /// Flush when the buffered messages reach this many payload bytes (files roll by
    /// size; bounds memory) [default: 33554432].
    #[arg(long, env = "GPUSTREAM_FLUSH_BYTES", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_bytes: Option<usize>,
    /// Flush at least this often while data is buffered [default: 10s].
    #[arg(long, env = "GPUSTREAM_FLUSH_INTERVAL", value_parser = parse_duration, global = true)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub flush_interval: Option<Duration>,
    /// Threads that decode messages beside the consumer loop; 0 decodes on the loop
    /// [default: one per core but one, at most 8].
    #[arg(long, env = "GPUSTREAM_DECODE_THREADS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_threads: Option<usize>,
    /// Address of the /metrics and /health endpoint [default: 127.0.0.1:9731].
    #[arg(long, env = "GPUSTREAM_METRICS_ADDR", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    /// Anomaly rules (TOML, see docs/anomaly-rules.md) [default: the built-in
    /// crates/stream-processor/rules.default.toml].
    #[arg(long, env = "GPUSTREAM_RULES", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
    /// Alertmanager base URL: anomaly transitions are posted to <URL>/api/v2/alerts.
    #[arg(long, env = "GPUSTREAM_ALERTMANAGER_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alertmanager_url: Option<String>,
    /// URL that receives anomaly transitions as a JSON array of anomaly events.
    #[arg(long, env = "GPUSTREAM_WEBHOOK_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

/// Subcommands (the default is to run the processor): `config --print`.
pub use gpustream_runtime::config::ConfigCommand as Command;

/// Every key of the `[stream_processor]` section, with its effective value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Topic of samples.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Lake location.
    pub lake: String,
    /// Topic of anomaly events ("" disables).
    pub anomalies_topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Topic of rollups ("" disables).
    pub rollups_topic: String,
    /// Rollup window width.
    #[serde(with = "serde_duration")]
    pub rollup_window: Duration,
    /// Allowed lateness of a sample for its rollup.
    #[serde(with = "serde_duration")]
    pub allowed_lateness: Duration,
    /// Flush at this many samples.
    pub flush_rows: usize,
    /// Flush at this many payload bytes.
    pub flush_bytes: usize,
    /// Flush at least this often.
    #[serde(with = "serde_duration")]
    pub flush_interval: Duration,
    /// Decoding threads beside the consumer loop (0: the loop decodes).
    pub decode_threads: usize,
    /// Ops endpoint.
    pub metrics_addr: SocketAddr,
    /// Rules file ("" = built-in defaults).
    pub rules: String,
    /// Alertmanager base URL ("" = none).
    pub alertmanager_url: String,
    /// Webhook URL ("" = none).
    pub webhook_url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            topic: gpustream_runtime::kafka::SAMPLES_TOPIC.into(),
            group: "stream-processor".into(),
            lake: "./lake".into(),
            anomalies_topic: gpustream_runtime::kafka::ANOMALIES_TOPIC.into(),
            dlq_topic: gpustream_runtime::kafka::DLQ_TOPIC.into(),
            rollups_topic: gpustream_runtime::kafka::ROLLUPS_TOPIC.into(),
            rollup_window: Duration::from_secs(60),
            allowed_lateness: Duration::from_secs(10),
            flush_rows: 100_000,
            flush_bytes: crate::pipeline::DEFAULT_FLUSH_BYTES,
            flush_interval: Duration::from_secs(10),
            decode_threads: crate::pipeline::default_decode_threads(),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9731)),
            rules: String::new(),
            alertmanager_url: String::new(),
            webhook_url: String::new(),
        }
    }
}

/// The effective configuration of one run.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Brokers and client properties.
    pub kafka: KafkaSettings,
    /// The `[stream_processor]` settings.
    pub settings: Settings,
}

impl Effective {
    /// As TOML, secrets redacted.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(&self.settings).unwrap_or_default();
        format!("{}\n[{SECTION}]\n{body}", self.kafka.to_toml_redacted())
    }
}

impl Args {
    /// Layers flags and environment over the configuration file and the defaults.
    pub fn effective(&self) -> Result<Effective> {
        let file = self.connection.file()?;
        let settings: Settings = resolve(file.as_ref(), SECTION, self)?;
        let kafka = self.connection.kafka(file.as_ref(), DEFAULT_BROKERS)?;
        Ok(Effective { kafka, settings })
    }
}

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    gpustream_runtime::startup::run("stream-processor", run(args))
}

/// Runs the processor until SIGINT/SIGTERM, then publishes what it holds and commits.
pub async fn run(args: Args) -> Result<()> {
    let Effective { kafka, settings: s } = args.effective()?;
    if let Some(Command::Config { .. }) = args.command {
        print!("{}", Effective { kafka, settings: s }.to_toml());
        return Ok(());
    }
    let lake = Lake::open(&s.lake)?;
    gpustream_runtime::kafka::preflight(&kafka, Duration::from_secs(15)).await?;
    let mut topics = vec![(s.dlq_topic.as_str(), 1)];
    if !s.anomalies_topic.is_empty() {
        topics.push((s.anomalies_topic.as_str(), 1));
    }
    kafka.ensure_topics(&topics).await?;
    let rules = if s.rules.is_empty() {
        default_rules()
    } else {
        crate::rules::RuleSet::load(&s.rules)?
    };
    let registry = prometheus::Registry::new();
    build_info(&registry, "stream-processor", env!("CARGO_PKG_VERSION"))?;
    let metrics = ProcessorMetrics::new(&registry)?;
    let alerter = crate::alerting::Alerter::start(
        crate::alerting::AlertConfig {
            alertmanager_url: Some(s.alertmanager_url.clone()).filter(|u| !u.is_empty()),
            webhook_url: Some(s.webhook_url.clone()).filter(|u| !u.is_empty()),
            ..Default::default()
        },
        Some(&registry),
    )?;
    let health = Health::default();
    serve_ops(s.metrics_addr, registry, health.clone()).await?;
    let cfg = ProcessorConfig {
        kafka,
        topic: s.topic,
        group: s.group,
        anomalies_topic: s.anomalies_topic,
        dlq_topic: s.dlq_topic,
        rollups_topic: s.rollups_topic,
        rollup: RollupConfig {
            width: s.rollup_window,
            allowed_lateness: s.allowed_lateness,
            ..Default::default()
        },
        flush_rows: s.flush_rows,
        flush_interval: s.flush_interval,
        flush_bytes: s.flush_bytes,
        decode_threads: s.decode_threads,
    };
    let processor =
        Processor::new(cfg, lake, Detector::new(rules), metrics, health)?.with_alerter(alerter);
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
