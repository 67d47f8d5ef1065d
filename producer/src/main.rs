//! `producer`: replay GPU-Z logs into Kafka, or generate simulated GPU-Z logs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDateTime;
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use gpustream::config::parse_duration;
use producer::gpuz::{Identity, ParseOptions};
use producer::replay::{LogInput, ReplayOptions, replay};
use producer::sink::KafkaSink;

#[derive(Parser)]
#[command(
    name = "producer",
    version,
    about = "Publishes GPU telemetry samples to Kafka"
)]
struct Cli {
    /// TOML file with defaults for any flag (keys as flag names, `-` or `_`).
    #[arg(long, global = true, env = "GPUSTREAM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replays GPU-Z sensor logs.
    Replay(ReplayArgs),
    /// Simulates a GPU and writes a GPU-Z-format log file.
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// GPU-Z log files, replayed one after another.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "GPUSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to publish to.
    #[arg(long, env = "GPUSTREAM_TOPIC", default_value = gpustream::kafka::SAMPLES_TOPIC)]
    topic: String,
    /// Multiple of real time (2 = twice as fast); 0 = as fast as the broker takes it.
    #[arg(long, env = "GPUSTREAM_SPEED", default_value_t = 1.0)]
    speed: f64,
    /// Host name of each file (repeat per file; one value applies to all). Default: this machine.
    #[arg(long, env = "GPUSTREAM_HOST", value_delimiter = ',')]
    host: Vec<String>,
    /// GPU id of each file (repeat per file). Default: the file name without extension.
    #[arg(long, env = "GPUSTREAM_GPU", value_delimiter = ',')]
    gpu: Vec<String>,
    /// GPU index of each file (repeat per file). Default: 0.
    #[arg(long, env = "GPUSTREAM_GPU_INDEX", value_delimiter = ',')]
    gpu_index: Vec<u32>,
    /// IANA timezone of the logs' wall-clock timestamps. Default: this machine's zone.
    #[arg(long, env = "GPUSTREAM_TIMEZONE")]
    timezone: Option<String>,
    /// Header line for logs that have none (or `@FILE` to read it from a file).
    #[arg(long, env = "GPUSTREAM_HEADER")]
    header: Option<String>,
    /// Longest pause replayed between two logging sessions (e.g. 5s, 1m).
    #[arg(long, env = "GPUSTREAM_MAX_SESSION_GAP", default_value = "5s", value_parser = parse_duration)]
    max_session_gap: Duration,
    /// Create the topic if it does not exist.
    #[arg(long, env = "GPUSTREAM_CREATE_TOPIC")]
    create_topic: bool,
    /// Partitions of a topic created with --create-topic.
    #[arg(long, env = "GPUSTREAM_PARTITIONS", default_value_t = 4)]
    partitions: i32,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Write a GPU-Z-format log to this file.
    #[arg(long, env = "GPUSTREAM_WRITE_GPUZ")]
    write_gpuz: PathBuf,
    /// Random seed (same seed, same log).
    #[arg(long, env = "GPUSTREAM_SEED", default_value_t = 1)]
    seed: u64,
    /// Logging sessions in the file.
    #[arg(long, env = "GPUSTREAM_SESSIONS", default_value_t = 2)]
    sessions: u32,
    /// One-second samples per session.
    #[arg(long, env = "GPUSTREAM_SAMPLES", default_value_t = 900)]
    samples: u32,
    /// Local wall-clock time of the first row.
    #[arg(long, env = "GPUSTREAM_START", default_value = "2025-03-14 09:00:00")]
    start: String,
}

fn local_timezone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Picks the i-th value, or the only one, or a default.
fn nth<T: Clone>(values: &[T], i: usize, default: impl FnOnce() -> T) -> T {
    match values.len() {
        0 => default(),
        1 => values[0].clone(),
        _ => values.get(i).cloned().unwrap_or_else(default),
    }
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    let timezone: Tz = match &args.timezone {
        Some(name) => name.parse().map_err(|_| {
            anyhow::anyhow!("unknown timezone `{name}` (use an IANA name like Europe/Berlin)")
        })?,
        None => local_timezone(),
    };
    let fallback_header = match args.header.as_deref() {
        Some(h) if h.starts_with('@') => Some(
            std::fs::read_to_string(&h[1..])
                .with_context(|| format!("reading header file {}", &h[1..]))?,
        ),
        other => other.map(str::to_string),
    };
    for (flag, n) in [
        ("--host", args.host.len()),
        ("--gpu", args.gpu.len()),
        ("--gpu-index", args.gpu_index.len()),
    ] {
        if n > 1 && n != args.files.len() {
            bail!(
                "{flag} given {n} times for {} files: give it once (all files) or once per file",
                args.files.len()
            );
        }
    }
    let host = this_host();
    let inputs: Vec<LogInput> = args
        .files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("gpu{i}"));
            LogInput {
                path: path.clone(),
                identity: Identity {
                    host: nth(&args.host, i, || host.clone()),
                    gpu: nth(&args.gpu, i, || stem),
                    gpu_index: nth(&args.gpu_index, i, || 0),
                    gpu_name: None,
                },
            }
        })
        .collect();
    if args.speed < 0.0 || !args.speed.is_finite() {
        bail!("--speed must be 0 (as fast as possible) or a positive multiple of real time");
    }
    let opts = ReplayOptions {
        speed: args.speed,
        max_session_gap: args.max_session_gap,
        parse: ParseOptions {
            timezone,
            fallback_header,
        },
        max_issues_logged: 20,
    };

    if args.create_topic {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(gpustream::kafka::ensure_topics(
            &args.brokers,
            &[(&args.topic, args.partitions)],
        ))?;
    }
    let mut sink = KafkaSink::new(&args.brokers, &args.topic)?;
    let partitions = sink
        .check_topic(Duration::from_secs(10))
        .with_context(|| format!("brokers {}", args.brokers))?;
    tracing::info!(brokers = %args.brokers, topic = %args.topic, partitions, speed = args.speed, %timezone, "replaying {} file(s)", inputs.len());

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(gpustream::service::shutdown_signal());
                tracing::info!("interrupted: flushing what was produced");
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let report = replay(&inputs, &opts, &mut sink, &stop)?;
    println!("{report}");
    if report.delivery.failed > 0 || report.delivery.delivered < report.sent {
        return Err(producer::Error::Undelivered {
            failed: report.sent - report.delivery.delivered,
            total: report.sent,
            first_error: sink
                .first_error()
                .unwrap_or_else(|| "flush timed out".into()),
        }
        .into());
    }
    Ok(())
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let start = NaiveDateTime::parse_from_str(&args.start, "%Y-%m-%d %H:%M:%S")
        .with_context(|| format!("--start `{}` is not YYYY-MM-DD HH:MM:SS", args.start))?;
    let bytes = producer::simulate::write_gpuz_log(args.seed, start, args.sessions, args.samples);
    std::fs::write(&args.write_gpuz, &bytes)
        .with_context(|| format!("writing {}", args.write_gpuz.display()))?;
    println!(
        "wrote {} ({} sessions x {} rows, seed {})",
        args.write_gpuz.display(),
        args.sessions,
        args.samples,
        args.seed
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    gpustream::config::load_config_file_into_env()?;
    gpustream::service::init_logging();
    match Cli::parse().command {
        Command::Replay(a) => run_replay(a),
        Command::Simulate(a) => run_simulate(a),
    }
}
