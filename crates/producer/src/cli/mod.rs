//! The `producer` command line and its configuration.
//!
//! Every setting of a mode comes from, in this order of precedence:
//!
//! 1. its flag (`producer replay --speed 2`);
//! 2. its environment variable `GPUSTREAM_<FLAG>` (`GPUSTREAM_SPEED=2`);
//! 3. the mode's subsection of the `--config` file (`[producer.replay]` `speed = 2`);
//! 4. the `[producer]` section of that file, for the keys every mode shares
//!    ([`SHARED_KEYS`]: `topic`, `compression`, `message_timeout`, `create_topic`,
//!    `partitions`, `host`, `metrics_addr`);
//! 5. the built-in default.
//!
//! So a shared key set once in `[producer]` applies to every mode that has it (`host` to
//! `replay` and `nvml`; `simulate` names its own hosts), and a subsection overrides it for
//! its mode. `[producer]` holds only the shared keys and the three subsections: any other
//! key there, an unknown key in a subsection (a mode's own keys plus the shared keys it
//! takes) or a value of the wrong type is an error naming the file, the line and the key,
//! with the closest known key.
//!
//! ```toml
//! [kafka]
//! brokers = "kafka-1:9093"
//! security.protocol = "SASL_SSL"     # secrets only from GPUSTREAM_KAFKA_SASL_PASSWORD
//!
//! [producer]
//! topic = "gpu-samples"
//! host = "render-07"
//!
//! [producer.replay]
//! files = ['C:\GPU-Z\log.txt']
//! follow = true
//! state_file = 'C:\ProgramData\gpustream\follow.json'
//!
//! [producer.nvml]
//! interval = "500ms"
//! ```
//!
//! Kafka connection settings come from `--brokers`, `-X key=value` and the `[kafka]`
//! section (see [`KafkaSettings`]); `producer config --print` shows the effective
//! configuration of every mode with secrets redacted.

pub mod nvml;
pub mod replay;
pub mod simulate;
mod switch;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use clap::{FromArgMatches, Parser, Subcommand};
use gpustream_runtime::config::{
    ConfigFile, ConnectionArgs, Layer, parse_duration, resolve_layers, serde_opt_duration,
};
use gpustream_runtime::kafka::KafkaSettings;
use gpustream_runtime::service::{CommonMetrics, Health, build_info, serve_ops, shutdown_signal};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use self::switch::Switch;
use crate::error::{Error, Result};
use crate::sink::{DeliveryTotals, KafkaSink, SinkObserver, SinkOptions};

/// The configuration file section of this binary.
pub const SECTION: &str = "producer";
/// Keys of `[producer]` that the modes share (each mode takes those it has).
pub const SHARED_KEYS: &[&str] = &[
    "topic",
    "compression",
    "message_timeout",
    "create_topic",
    "partitions",
    "host",
    "metrics_addr",
];
/// Compression of produced batches unless configured.
pub const DEFAULT_COMPRESSION: &str = "lz4";
/// Partitions of a topic created with `create_topic` unless configured.
pub const DEFAULT_PARTITIONS: i32 = 4;
/// How long a message may be retried unless configured.
pub const DEFAULT_MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The modes, each a subcommand and a subsection `[producer.<mode>]`.
pub const MODES: &[&str] = &["replay", "simulate", "nvml"];
/// Kafka brokers when none are configured.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
/// Where a run without an end of its own serves `/metrics` and `/health` unless told
/// otherwise (stream-processor uses 9731, consumer-influx 9732).
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9733));
/// Longest wait for the brokers to answer at start-up.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(15);

/// Publishes GPU telemetry samples to Kafka: GPU-Z logs (replayed or followed), live
/// NVIDIA GPUs (NVML) or a simulated fleet.
///
/// Every flag can also be set by its GPUSTREAM_* environment variable or in the --config
/// file: [producer] for keys every mode shares, [producer.replay], [producer.simulate]
/// and [producer.nvml] for one mode. Precedence: flag, environment, subsection,
/// [producer], default. Kafka connection settings go in the file's [kafka] section or -X;
/// secrets come only from the environment (GPUSTREAM_KAFKA_SASL_PASSWORD, or a file named
/// by GPUSTREAM_KAFKA_SASL_PASSWORD_FILE).
#[derive(Debug, Clone, Parser)]
#[command(name = "producer", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// --config, --brokers and -X (sections [kafka], [producer] and [producer.<mode>] of
    /// the file).
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The modes, and `config --print`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Replays GPU-Z sensor logs, or follows logs GPU-Z is writing (--follow).
    Replay(replay::ReplayArgs),
    /// Simulates a fleet of GPUs with labelled faults and publishes it, or writes a
    /// GPU-Z-format log of one simulated GPU (`--write-gpuz`).
    Simulate(simulate::SimulateArgs),
    /// Samples this machine's NVIDIA GPUs (and MIG instances) through NVML.
    Nvml(nvml::NvmlArgs),
    /// Shows the effective configuration of every mode (secrets redacted) and exits.
    Config {
        /// Print it (the only action, kept explicit for scripts).
        #[arg(long)]
        print: bool,
    },
}

/// The flags of the keys every mode shares; unset ones are left to the file and the
/// defaults.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct CommonArgs {
    /// Topic to publish samples to [default: gpu-samples].
    #[arg(long, env = "GPUSTREAM_TOPIC")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Compression of produced batches: lz4, zstd, gzip, snappy or none [default: lz4].
    #[arg(long, env = "GPUSTREAM_COMPRESSION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// How long a message may be retried before it counts as failed [default: 60s].
    #[arg(long, env = "GPUSTREAM_MESSAGE_TIMEOUT", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub message_timeout: Option<Duration>,
    /// Create the topics if they do not exist.
    #[arg(long, env = "GPUSTREAM_CREATE_TOPIC", switch())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_topic: Option<bool>,
    /// Partitions of a topic created with --create-topic [default: 4].
    #[arg(long, env = "GPUSTREAM_PARTITIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Address of the /metrics and /health endpoint [default: 127.0.0.1:9733 for a run
    /// without an end of its own: nvml without --samples, replay --follow or --loop
    /// without --passes, simulate without --samples or --duration; none otherwise].
    #[arg(long, env = "GPUSTREAM_METRICS_ADDR", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
}

/// The settings of one mode: the keys of its subsection, with their defaults.
pub trait ModeSettings: Serialize + DeserializeOwned + Default {
    /// The subcommand, and the subsection `[producer.<MODE>]`.
    const MODE: &'static str;
    /// The keys of [`SHARED_KEYS`] this mode takes from `[producer]`.
    const SHARED: &'static [&'static str];
}

/// The effective configuration of one run.
#[derive(Debug, Clone)]
pub struct Effective<S> {
    /// Brokers and client properties.
    pub kafka: KafkaSettings,
    /// The mode's settings.
    pub settings: S,
}

/// A mode's settings from the file (`[producer]`'s shared keys, then the subsection),
/// overlaid with `flags` (what clap read from flags and the environment; unset fields
/// skipped when serialized).
pub fn resolve_mode<S: ModeSettings>(
    file: Option<&ConfigFile>,
    flags: &impl Serialize,
) -> Result<S> {
    if let Some(f) = file {
        f.check_keys(SECTION, SHARED_KEYS, MODES)?;
    }
    let subsection = format!("{SECTION}.{}", S::MODE);
    Ok(resolve_layers(
        file,
        &[Layer::only(SECTION, S::SHARED), Layer::section(&subsection)],
        flags,
    )?)
}

impl Cli {
    /// The configuration file, if one is named.
    fn file(&self) -> Result<Option<ConfigFile>> {
        Ok(self.connection.file()?)
    }

    fn kafka(&self, file: Option<&ConfigFile>) -> Result<KafkaSettings> {
        Ok(self.connection.kafka(file, DEFAULT_BROKERS)?)
    }

    /// The effective configuration of mode `S` with `flags` (that mode's arguments).
    pub fn effective<S: ModeSettings>(&self, flags: &impl Serialize) -> Result<Effective<S>> {
        let file = self.file()?;
        let settings = resolve_mode::<S>(file.as_ref(), flags)?;
        let kafka = self.kafka(file.as_ref())?;
        Ok(Effective { kafka, settings })
    }

    /// Every mode's effective configuration as TOML, secrets redacted: `[kafka]`, then
    /// `[producer.replay]`, `[producer.simulate]` and `[producer.nvml]` with the values a
    /// run of that mode would use (environment included; no mode flags). Read back as a
    /// configuration file, it gives the same settings.
    pub fn print_config(&self) -> Result<String> {
        let file = self.file()?;
        let kafka = self.kafka(file.as_ref())?;
        let replay: replay::ReplaySettings =
            resolve_mode(file.as_ref(), &env_only::<replay::ReplayArgs>("replay")?)?;
        let simulate: simulate::SimulateSettings = resolve_mode(
            file.as_ref(),
            &env_only::<simulate::SimulateArgs>("simulate")?,
        )?;
        let nvml: nvml::NvmlSettings =
            resolve_mode(file.as_ref(), &env_only::<nvml::NvmlArgs>("nvml")?)?;
        let section = |mode: &str, body: Result<String, toml::ser::Error>| -> Result<String> {
            let body = body.map_err(|e| Error::Encode(format!("[{SECTION}.{mode}]: {e}")))?;
            Ok(format!("\n[{SECTION}.{mode}]\n{body}"))
        };
        Ok(format!(
            "{}{}{}{}",
            kafka.to_toml_redacted(),
            section("replay", toml::to_string(&replay))?,
            section("simulate", toml::to_string(&simulate))?,
            section("nvml", toml::to_string(&nvml))?,
        ))
    }
}

/// A mode's arguments as the environment alone sets them (no flags given).
fn env_only<A: clap::Args + FromArgMatches>(mode: &'static str) -> Result<A> {
    let invalid = |e: clap::Error| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        Error::Invalid(format!(
            "{mode}: {}",
            first.trim_start_matches("error: ").trim()
        ))
    };
    let matches = A::augment_args(clap::Command::new(mode).no_binary_name(true))
        .try_get_matches_from(std::iter::empty::<String>())
        .map_err(invalid)?;
    A::from_arg_matches(&matches).map_err(invalid)
}

/// Runs the chosen mode (or prints the configuration).
pub async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Config { .. } => {
            print!("{}", cli.print_config()?);
            Ok(())
        }
        Command::Replay(args) => replay::run(&cli, args).await,
        Command::Simulate(args) => simulate::run(&cli, args).await,
        Command::Nvml(args) => nvml::run(&cli, args).await,
    }
}

// ---------------------------------------------------------------------------------------
// What the modes share at run time.

/// The ops side of a run: build info, the shared metrics and readiness, served on
/// `/metrics` and `/health` when the run has an address.
pub struct Ops {
    /// The shared metrics, component `producer`.
    pub metrics: CommonMetrics,
    /// Readiness: parts `kafka` (deliveries) and `nvml` (reads).
    pub health: Health,
    /// Where the endpoint listens, if it was started.
    pub addr: Option<SocketAddr>,
}

impl Ops {
    /// Registers the metrics and serves them on `addr` when given.
    pub async fn start(addr: Option<SocketAddr>) -> Result<Ops> {
        let registry = prometheus::Registry::new();
        build_info(&registry, "producer", env!("CARGO_PKG_VERSION"))?;
        let metrics = CommonMetrics::new(&registry, "producer")?;
        let health = Health::default();
        let addr = match addr {
            Some(a) => Some(serve_ops(a, registry, health.clone()).await?),
            None => None,
        };
        Ok(Ops {
            metrics,
            health,
            addr,
        })
    }

    /// An observer for the samples sink, records read labelled `source`.
    pub fn observer(&self, source: &str) -> SinkObserver {
        SinkObserver::new(self.metrics.clone(), self.health.clone(), source)
    }
}

/// The ops address of a run: the configured one, else [`DEFAULT_METRICS_ADDR`] for a
/// run without an end of its own, else none.
pub fn ops_addr(configured: Option<SocketAddr>, endless: bool) -> Option<SocketAddr> {
    configured.or(endless.then_some(DEFAULT_METRICS_ADDR))
}

/// The sink options of a mode's `compression` and `message_timeout`.
pub fn sink_options(compression: &str, message_timeout: Duration) -> SinkOptions {
    SinkOptions {
        compression: compression.to_string(),
        message_timeout,
    }
}

/// Connects to the brokers once, so a wrong password, an untrusted certificate or an
/// unreachable broker ends the run with one line within [`PREFLIGHT_TIMEOUT`].
pub async fn preflight(kafka: &KafkaSettings) -> Result<()> {
    Ok(gpustream_runtime::kafka::preflight(kafka, PREFLIGHT_TIMEOUT).await?)
}

/// A sink for `topic` after checking that the topic exists (creating it first when
/// `create` gives a partition count). Call [`preflight`] first.
pub async fn open_sink(
    kafka: &KafkaSettings,
    topic: &str,
    opts: &SinkOptions,
    create: Option<i32>,
    observer: Option<SinkObserver>,
) -> Result<KafkaSink> {
    if let Some(partitions) = create {
        kafka.ensure_topics(&[(topic, partitions)]).await?;
    }
    let (kafka, topic, opts) = (kafka.clone(), topic.to_string(), opts.clone());
    blocking(move || {
        let sink = KafkaSink::connect(&kafka, &topic, &opts, observer)?;
        let partitions = sink.check_topic(Duration::from_secs(10))?;
        tracing::debug!(topic, partitions, "topic checked");
        Ok(sink)
    })
    .await
}

/// Runs blocking work (file reading, pacing, NVML) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Worker(e.to_string()))?
}

/// A flag that turns true on SIGINT/SIGTERM (Ctrl-C on Windows).
pub fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("interrupted: flushing what was produced");
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// Fails the run when anything sent was not acknowledged.
pub fn check_delivered(sink: &KafkaSink, sent: u64, delivery: DeliveryTotals) -> Result<()> {
    if delivery.failed > 0 || delivery.delivered < sent {
        return Err(Error::Undelivered {
            failed: sent - delivery.delivered.min(sent),
            total: sent,
            first_error: sink
                .first_error()
                .unwrap_or_else(|| "flush timed out".into()),
        });
    }
    Ok(())
}

/// This machine's host name (`localhost` when it has none).
pub fn this_host() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// 0, or a multiple of real time small and large enough that due times stay representable.
pub fn valid_speed(speed: f64) -> bool {
    speed == 0.0 || (1e-3..=1e6).contains(&speed)
}

/// The error for a speed [`valid_speed`] refuses.
fn speed_error() -> Error {
    Error::Invalid(
        "--speed must be 0 (as fast as possible) or a multiple of real time from 0.001 to 1000000"
            .into(),
    )
}

/// `now`, RFC 3339, or `YYYY-MM-DD HH:MM:SS` read as UTC.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>> {
    if text.eq_ignore_ascii_case("now") {
        return Ok(Utc::now());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .map_err(|_| {
            Error::Invalid(format!(
                "`{text}` is not a time: use `now`, RFC 3339 (2025-03-14T09:00:00Z) or YYYY-MM-DD HH:MM:SS (UTC)"
            ))
        })
}

/// Reads one value or a list (`host = "rig"` or `host = ["rig1", "rig2"]`).
pub fn one_or_many<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests;
