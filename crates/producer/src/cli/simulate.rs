//! `producer simulate`: a simulated fleet with labelled faults on Kafka, or one simulated
//! GPU written as a GPU-Z log.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDateTime;
use gpustream_runtime::config::{parse_duration, serde_duration, serde_opt_duration};
use gpustream_sim::fleet::{FaultLabel, Fleet, FleetConfig};
use serde::{Deserialize, Serialize};

use super::switch::Switch;
use super::{
    Cli, CommonArgs, DEFAULT_COMPRESSION, DEFAULT_MESSAGE_TIMEOUT, DEFAULT_PARTITIONS, Effective,
    ModeSettings, Ops, blocking, check_delivered, open_sink, ops_addr, parse_instant, preflight,
    sink_options, speed_error, stop_on_signal, valid_speed,
};
use crate::error::{Error, Result};
use crate::simulate_fleet::{FleetRunOptions, run_fleet};
use crate::sink::{SampleSink, SinkOptions};

/// The flags of `producer simulate` (file keys in `[producer.simulate]` have the same
/// names with `_`).
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct SimulateArgs {
    /// Write a GPU-Z-format log of one simulated GPU to this file instead of publishing a
    /// fleet.
    #[arg(long, env = "GPUSTREAM_WRITE_GPUZ", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_gpuz: Option<PathBuf>,
    /// Keys every mode shares.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Simulated hosts (sim-host-00, sim-host-01, ...) [default: 2].
    #[arg(long, env = "GPUSTREAM_HOSTS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<usize>,
    /// GPUs per host (gpu0, gpu1, ...) [default: 4].
    #[arg(long, env = "GPUSTREAM_GPUS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<usize>,
    /// Random seed (same seed, same samples and labels) [default: 1].
    #[arg(long, env = "GPUSTREAM_SEED")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Sample interval of the fleet, e.g. 100ms, 1s [default: 1s].
    #[arg(long, env = "GPUSTREAM_INTERVAL", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub interval: Option<Duration>,
    /// Samples per GPU (fleet; without it or --duration, runs until stopped), or rows per
    /// session (--write-gpuz; default 900).
    #[arg(long, env = "GPUSTREAM_SAMPLES", value_name = "K")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Simulated time to cover (fleet), e.g. 2h; the same as --samples duration/interval.
    #[arg(long, env = "GPUSTREAM_DURATION", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub duration: Option<Duration>,
    /// Multiple of real time (1 = one tick per interval); 0 = as fast as the broker takes
    /// it [default: 1].
    #[arg(long, env = "GPUSTREAM_SPEED")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Event time of the first tick: `now` (fleet default), an RFC 3339 time, or
    /// "YYYY-MM-DD HH:MM:SS" (UTC for the fleet; local wall-clock for --write-gpuz,
    /// default 2025-03-14 09:00:00).
    #[arg(long, env = "GPUSTREAM_START", value_name = "TIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Write the fault labels (ground truth) to this file, one JSON object per line.
    #[arg(long, env = "GPUSTREAM_LABELS", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Also publish the fault labels to this topic (key host/gpu).
    #[arg(long, env = "GPUSTREAM_LABELS_TOPIC")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels_topic: Option<String>,
    /// Simulate a healthy fleet: no faults, no labels.
    #[arg(long, env = "GPUSTREAM_NO_FAULTS", switch())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_faults: Option<bool>,
    /// Logging sessions in the file (--write-gpuz) [default: 2].
    #[arg(long, env = "GPUSTREAM_SESSIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u32>,
}

/// Every key of `[producer.simulate]`, with its effective value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulateSettings {
    /// GPU-Z log to write instead of publishing a fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_gpuz: Option<PathBuf>,
    /// Topic of samples.
    pub topic: String,
    /// Simulated hosts.
    pub hosts: usize,
    /// GPUs per host.
    pub gpus: usize,
    /// Random seed.
    pub seed: u64,
    /// Sample interval.
    #[serde(with = "serde_duration")]
    pub interval: Duration,
    /// Samples per GPU (rows per session with `write_gpuz`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Simulated time to cover.
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub duration: Option<Duration>,
    /// Multiple of real time; 0 = as fast as the broker takes it.
    pub speed: f64,
    /// Event time of the first tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// File of fault labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Topic of fault labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels_topic: Option<String>,
    /// No faults.
    pub no_faults: bool,
    /// Sessions in a written log.
    pub sessions: u32,
    /// Create the topics if they do not exist.
    pub create_topic: bool,
    /// Partitions of a created topic.
    pub partitions: i32,
    /// Compression codec.
    pub compression: String,
    /// Retry time of a message before it fails.
    #[serde(with = "serde_duration")]
    pub message_timeout: Duration,
    /// Ops endpoint (none: the default only for an endless fleet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for SimulateSettings {
    fn default() -> Self {
        SimulateSettings {
            write_gpuz: None,
            topic: gpustream_runtime::kafka::SAMPLES_TOPIC.into(),
            hosts: 2,
            gpus: 4,
            seed: 1,
            interval: Duration::from_secs(1),
            samples: None,
            duration: None,
            speed: 1.0,
            start: None,
            labels: None,
            labels_topic: None,
            no_faults: false,
            sessions: 2,
            create_topic: false,
            partitions: DEFAULT_PARTITIONS,
            compression: DEFAULT_COMPRESSION.into(),
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            metrics_addr: None,
        }
    }
}

impl ModeSettings for SimulateSettings {
    const MODE: &'static str = "simulate";
    const SHARED: &'static [&'static str] = &[
        "topic",
        "compression",
        "message_timeout",
        "create_topic",
        "partitions",
        "metrics_addr",
    ];
}

impl SimulateSettings {
    /// The fleet and its number of ticks (`None`: until stopped), checked.
    pub fn fleet(&self) -> Result<(FleetConfig, Option<u64>)> {
        if self.hosts == 0 || self.gpus == 0 {
            return Err(Error::Invalid(
                "--hosts and --gpus must be at least 1".into(),
            ));
        }
        if self.interval < Duration::from_millis(1) {
            return Err(Error::Invalid("--interval must be at least 1ms".into()));
        }
        if !valid_speed(self.speed) {
            return Err(speed_error());
        }
        crate::sink::check_compression(&self.compression)?;
        let ticks = match (self.samples, self.duration) {
            (Some(_), Some(_)) => {
                return Err(Error::Invalid(
                    "--samples and --duration both set: give one (duration = samples x interval)"
                        .into(),
                ));
            }
            (Some(k), None) => Some(k),
            (None, Some(d)) => Some((d.as_secs_f64() / self.interval.as_secs_f64()).ceil() as u64),
            (None, None) => None,
        };
        let config = FleetConfig {
            hosts: self.hosts,
            gpus_per_host: self.gpus,
            seed: self.seed,
            interval: self.interval,
            start: parse_instant(self.start.as_deref().unwrap_or("now"))?,
            faults: !self.no_faults,
        };
        Ok((config, ticks))
    }

    /// Where `/metrics` and `/health` are served: `metrics_addr`, else the default
    /// address for a fleet without `samples` or `duration`, else nowhere.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        ops_addr(
            self.metrics_addr,
            self.write_gpuz.is_none() && self.samples.is_none() && self.duration.is_none(),
        )
    }

    /// The sinks' compression and delivery timeout.
    pub fn sink_options(&self) -> SinkOptions {
        sink_options(&self.compression, self.message_timeout)
    }
}

/// Writes a GPU-Z log, or publishes the fleet until done or stopped.
pub async fn run(cli: &Cli, args: &SimulateArgs) -> Result<()> {
    let Effective { kafka, settings } = cli.effective::<SimulateSettings>(args)?;
    if let Some(path) = &settings.write_gpuz {
        return write_gpuz(&settings, path);
    }
    let (config, ticks) = settings.fleet()?;
    let mut labels_file = match &settings.labels {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |source| Error::File {
                path: p.display().to_string(),
                source,
            },
        )?)),
        None => None,
    };
    let stop = stop_on_signal();
    let ops = Ops::start(settings.ops_addr()).await?;
    preflight(&kafka).await?;
    let create = settings.create_topic.then_some(settings.partitions);
    let opts = settings.sink_options();
    let mut sink = open_sink(
        &kafka,
        &settings.topic,
        &opts,
        create,
        Some(ops.observer("sim")),
    )
    .await?;
    let mut label_sink = match &settings.labels_topic {
        Some(t) => Some(open_sink(&kafka, t, &opts, create, None).await?),
        None => None,
    };
    tracing::info!(brokers = %kafka.brokers, topic = %settings.topic, hosts = config.hosts, gpus = config.gpus_per_host, seed = config.seed, interval = ?config.interval, start = %config.start, ?ticks, "simulating a fleet");
    let labels_path = settings.labels.clone();
    let speed = settings.speed;
    blocking(move || {
        let mut fleet = Fleet::new(config);
        let mut on_label = |label: &FaultLabel| -> Result<()> {
            let line = serde_json::to_string(label).map_err(|e| Error::Encode(e.to_string()))?;
            if let Some(f) = labels_file.as_mut() {
                // Flushed per label so a reader sees each fault as it starts.
                writeln!(f, "{line}")
                    .and_then(|()| f.flush())
                    .map_err(|source| Error::File {
                        path: labels_path
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                        source,
                    })?;
            }
            if let Some(s) = label_sink.as_mut() {
                s.send_bytes(&format!("{}/{}", label.host, label.gpu), line.as_bytes())?;
            }
            Ok(())
        };
        let opts = FleetRunOptions { ticks, speed };
        let report = run_fleet(&mut fleet, &opts, &mut sink, &mut on_label, &stop)?;
        println!("{report}");
        check_delivered(&sink, report.sent, report.delivery)?;
        if let Some(mut s) = label_sink {
            let totals = s.flush(Duration::from_secs(60))?;
            check_delivered(&s, report.labels, totals).map_err(|e| match e {
                Error::Undelivered {
                    failed,
                    total,
                    first_error,
                } => Error::Undelivered {
                    failed,
                    total,
                    first_error: format!("fault labels: {first_error}"),
                },
                other => other,
            })?;
        }
        Ok(())
    })
    .await
}

/// `--write-gpuz`: one simulated GPU as a GPU-Z log.
fn write_gpuz(settings: &SimulateSettings, path: &std::path::Path) -> Result<()> {
    let start = settings.start.as_deref().unwrap_or("2025-03-14 09:00:00");
    let start = NaiveDateTime::parse_from_str(start, "%Y-%m-%d %H:%M:%S")
        .map_err(|_| Error::Invalid(format!("--start `{start}` is not YYYY-MM-DD HH:MM:SS")))?;
    let rows = u32::try_from(settings.samples.unwrap_or(900))
        .map_err(|_| Error::Invalid("--samples is too large for a GPU-Z log".into()))?;
    let file_err = |source| Error::File {
        path: path.display().to_string(),
        source,
    };
    // Written a line at a time: a log of many gigabytes needs no more memory than a small one.
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(file_err)?);
    gpustream_sim::gpuz_log::write_gpuz_log_to(
        &mut out,
        settings.seed,
        start,
        settings.sessions,
        rows,
    )
    .and_then(|()| out.flush())
    .map_err(file_err)?;
    println!(
        "wrote {} ({} sessions x {} rows, seed {})",
        path.display(),
        settings.sessions,
        rows,
        settings.seed
    );
    Ok(())
}
