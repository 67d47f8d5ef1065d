//! `producer`: replay GPU-Z logs into Kafka, or generate simulated GPU-Z logs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::io::Write;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use gpustream_runtime::config::parse_duration;
use gpustream_sim::fleet::{FaultLabel, Fleet, FleetConfig};
use gpuz::{Identity, ParseOptions};
use producer::follow::{FollowOptions, follow};
use producer::nvml::driver::NvmlBackend;
use producer::nvml::{GpuId, MIN_INTERVAL, SamplerOptions, run_sampler};
use producer::replay::{LogInput, Passes, ReplayOptions, read_inputs_file, replay_passes};
use producer::simulate_fleet::{FleetRunOptions, run_fleet};
use producer::sink::{KafkaSink, SinkOptions};

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
    /// Simulates a fleet of GPUs with labelled faults and publishes it, or writes a
    /// GPU-Z-format log of one simulated GPU (`--write-gpuz`).
    Simulate(SimulateArgs),
    /// Samples this machine's NVIDIA GPUs (and MIG instances) through NVML.
    Nvml(NvmlArgs),
}

#[derive(clap::Args)]
struct NvmlArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "GPUSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to publish samples to.
    #[arg(long, env = "GPUSTREAM_TOPIC", default_value = gpustream_runtime::kafka::SAMPLES_TOPIC)]
    topic: String,
    /// Topic for "GPU lost" events (anomaly events, rule `gpu_lost`).
    #[arg(long, env = "GPUSTREAM_EVENTS_TOPIC", default_value = gpustream_runtime::kafka::ANOMALIES_TOPIC)]
    events_topic: String,
    /// Sample interval, 100ms at the least.
    #[arg(long, env = "GPUSTREAM_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Host name in the samples. Default: this machine's.
    #[arg(long, env = "GPUSTREAM_HOST")]
    host: Option<String>,
    /// What identifies a GPU in the samples: its NVML UUID, PCI bus id, or index.
    #[arg(long, env = "GPUSTREAM_GPU_ID", value_enum, default_value_t = GpuId::Uuid)]
    gpu_id: GpuId,
    /// Samples per GPU, then exit (default: until stopped).
    #[arg(long, env = "GPUSTREAM_SAMPLES")]
    samples: Option<u64>,
    /// Failed reads in a row after which a GPU counts as lost.
    #[arg(long, env = "GPUSTREAM_LOST_AFTER", default_value_t = 3)]
    lost_after: u32,
    /// Create the topics if they do not exist.
    #[arg(long, env = "GPUSTREAM_CREATE_TOPIC")]
    create_topic: bool,
    /// Partitions of a topic created with --create-topic.
    #[arg(long, env = "GPUSTREAM_PARTITIONS", default_value_t = 4)]
    partitions: i32,
    #[command(flatten)]
    delivery: DeliveryArgs,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// GPU-Z log files, replayed one after another.
    #[arg(required_unless_present = "inputs")]
    files: Vec<PathBuf>,
    /// TOML file listing the logs and their identities: `[[file]]` tables with `path` and
    /// optional `host`, `gpu`, `gpu_index`, `gpu_name` (added after any FILE arguments).
    #[arg(long, env = "GPUSTREAM_INPUTS")]
    inputs: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "GPUSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to publish to.
    #[arg(long, env = "GPUSTREAM_TOPIC", default_value = gpustream_runtime::kafka::SAMPLES_TOPIC)]
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
    /// Replay again and again until stopped, each pass moved forward in time so event
    /// time never goes backwards and every pass has its own event ids.
    #[arg(long = "loop", env = "GPUSTREAM_LOOP")]
    loop_: bool,
    /// Number of passes (with or without --loop; default 1, or unlimited with --loop).
    #[arg(long, env = "GPUSTREAM_PASSES")]
    passes: Option<u64>,
    /// Move the logs in time so the first row is at this instant: `now`, or an RFC 3339
    /// time (e.g. 2025-03-14T09:00:00Z).
    #[arg(long, env = "GPUSTREAM_REBASE")]
    rebase: Option<String>,
    /// Follow the files as GPU-Z writes them (like `tail -F`) until stopped, instead of
    /// replaying them: rows are sent as they appear, truncation and rotation are handled.
    #[arg(long, env = "GPUSTREAM_FOLLOW", conflicts_with_all = ["loop_", "passes", "rebase"])]
    follow: bool,
    /// With --follow: file keeping the read positions, so a restart resumes where the last
    /// run stopped (neither re-sending nor skipping rows).
    #[arg(long, env = "GPUSTREAM_STATE_FILE", requires = "follow")]
    state_file: Option<PathBuf>,
    /// With --follow: how often to look for new rows.
    #[arg(long, env = "GPUSTREAM_POLL_INTERVAL", default_value = "250ms", value_parser = parse_duration)]
    poll_interval: Duration,
    #[command(flatten)]
    delivery: DeliveryArgs,
}

#[derive(clap::Args)]
struct DeliveryArgs {
    /// Compression of produced batches: lz4, zstd, gzip, snappy or none.
    #[arg(long, env = "GPUSTREAM_COMPRESSION", default_value = "lz4")]
    compression: String,
    /// How long a message may be retried before it counts as failed.
    #[arg(long, env = "GPUSTREAM_MESSAGE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    message_timeout: Duration,
}

impl DeliveryArgs {
    fn options(&self) -> SinkOptions {
        SinkOptions {
            compression: self.compression.clone(),
            message_timeout: self.message_timeout,
        }
    }
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Write a GPU-Z-format log of one simulated GPU to this file instead of publishing a fleet.
    #[arg(long, env = "GPUSTREAM_WRITE_GPUZ")]
    write_gpuz: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, env = "GPUSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to publish samples to.
    #[arg(long, env = "GPUSTREAM_TOPIC", default_value = gpustream_runtime::kafka::SAMPLES_TOPIC)]
    topic: String,
    /// Simulated hosts (sim-host-00, sim-host-01, ...).
    #[arg(long, env = "GPUSTREAM_HOSTS", default_value_t = 2)]
    hosts: usize,
    /// GPUs per host (gpu0, gpu1, ...).
    #[arg(long, env = "GPUSTREAM_GPUS", default_value_t = 4)]
    gpus: usize,
    /// Random seed (same seed, same samples and labels).
    #[arg(long, env = "GPUSTREAM_SEED", default_value_t = 1)]
    seed: u64,
    /// Sample interval of the fleet (e.g. 100ms, 1s).
    #[arg(long, env = "GPUSTREAM_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Samples per GPU (fleet; without it or --duration, runs until stopped), or rows per
    /// session (--write-gpuz; default 900).
    #[arg(long, env = "GPUSTREAM_SAMPLES")]
    samples: Option<u64>,
    /// Simulated time to cover (fleet), e.g. 2h; the same as --samples duration/interval.
    #[arg(long, env = "GPUSTREAM_DURATION", value_parser = parse_duration, conflicts_with = "samples")]
    duration: Option<Duration>,
    /// Multiple of real time (1 = one tick per interval); 0 = as fast as the broker takes it.
    #[arg(long, env = "GPUSTREAM_SPEED", default_value_t = 1.0)]
    speed: f64,
    /// Event time of the first tick: `now` (fleet default), an RFC 3339 time, or
    /// "YYYY-MM-DD HH:MM:SS" (UTC for the fleet; local wall-clock for --write-gpuz,
    /// default 2025-03-14 09:00:00).
    #[arg(long, env = "GPUSTREAM_START")]
    start: Option<String>,
    /// Write the fault labels (ground truth) to this file, one JSON object per line.
    #[arg(long, env = "GPUSTREAM_LABELS")]
    labels: Option<PathBuf>,
    /// Also publish the fault labels to this topic (key host/gpu).
    #[arg(long, env = "GPUSTREAM_LABELS_TOPIC")]
    labels_topic: Option<String>,
    /// Simulate a healthy fleet: no faults, no labels.
    #[arg(long, env = "GPUSTREAM_NO_FAULTS")]
    no_faults: bool,
    /// Logging sessions in the file (--write-gpuz).
    #[arg(long, env = "GPUSTREAM_SESSIONS", default_value_t = 2)]
    sessions: u32,
    /// Create the topics if they do not exist.
    #[arg(long, env = "GPUSTREAM_CREATE_TOPIC")]
    create_topic: bool,
    /// Partitions of a topic created with --create-topic.
    #[arg(long, env = "GPUSTREAM_PARTITIONS", default_value_t = 4)]
    partitions: i32,
    #[command(flatten)]
    delivery: DeliveryArgs,
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
    let stem = |i: usize, path: &std::path::Path| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("gpu{i}"))
    };
    let mut inputs: Vec<LogInput> = args
        .files
        .iter()
        .enumerate()
        .map(|(i, path)| LogInput {
            path: path.clone(),
            identity: Identity {
                host: nth(&args.host, i, || host.clone()),
                gpu: nth(&args.gpu, i, || stem(i, path)),
                gpu_index: nth(&args.gpu_index, i, || 0),
                gpu_name: None,
            },
        })
        .collect();
    if let Some(file) = &args.inputs {
        for (i, spec) in read_inputs_file(file)?.into_iter().enumerate() {
            let gpu = spec
                .gpu
                .unwrap_or_else(|| stem(inputs.len() + i, &spec.path));
            inputs.push(LogInput {
                identity: Identity {
                    host: spec.host.unwrap_or_else(|| host.clone()),
                    gpu,
                    gpu_index: spec.gpu_index.unwrap_or(0),
                    gpu_name: spec.gpu_name,
                },
                path: spec.path,
            });
        }
    }
    if !valid_speed(args.speed) {
        bail!(
            "--speed must be 0 (as fast as possible) or a multiple of real time from 0.001 to 1000000"
        );
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

    let passes = Passes {
        count: match (args.loop_, args.passes) {
            (_, Some(0)) => bail!("--passes must be at least 1"),
            (_, Some(n)) => Some(n),
            (true, None) => None,
            (false, None) => Some(1),
        },
        rebase_to: args.rebase.as_deref().map(parse_instant).transpose()?,
    };
    let mut sink = connect(
        &args.brokers,
        &args.topic,
        &args.delivery,
        args.create_topic.then_some(args.partitions),
    )?;
    tracing::info!(brokers = %args.brokers, topic = %args.topic, speed = args.speed, %timezone, "replaying {} file(s)", inputs.len());

    let stop = stop_on_signal();
    let report = if args.follow {
        if args.state_file.is_none() {
            tracing::warn!(
                "--follow without --state-file: a restart reads the files from the top again"
            );
        }
        let follow_opts = FollowOptions {
            poll: args.poll_interval,
            state_file: args.state_file.clone(),
            ..FollowOptions::default()
        };
        follow(&inputs, &opts.parse, &follow_opts, &mut sink, &stop)?
    } else {
        replay_passes(&inputs, &opts, &passes, &mut sink, &stop)?
    };
    println!("{report}");
    check_delivered(&sink, report.sent, report.delivery)
}

/// 0, or a multiple of real time small and large enough that due times stay representable.
fn valid_speed(speed: f64) -> bool {
    speed == 0.0 || (1e-3..=1e6).contains(&speed)
}

/// `now`, RFC 3339, or `YYYY-MM-DD HH:MM:SS` read as UTC.
fn parse_instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if text.eq_ignore_ascii_case("now") {
        return Ok(Utc::now());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .map_err(|_| {
            anyhow::anyhow!(
                "`{text}` is not a time: use `now`, RFC 3339 (2025-03-14T09:00:00Z) or YYYY-MM-DD HH:MM:SS (UTC)"
            )
        })
}

/// A producer for `topic`, after checking that the broker answers and the topic exists
/// (creating it first when `create` gives a partition count).
fn connect(
    brokers: &str,
    topic: &str,
    delivery: &DeliveryArgs,
    create: Option<i32>,
) -> anyhow::Result<KafkaSink> {
    if let Some(partitions) = create {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(gpustream_runtime::kafka::ensure_topics(
            brokers,
            &[(topic, partitions)],
        ))
        .with_context(|| format!("creating topic {topic}"))?;
    }
    let sink = KafkaSink::with_options(brokers, topic, &delivery.options())?;
    let partitions = sink
        .check_topic(Duration::from_secs(10))
        .with_context(|| format!("brokers {brokers}"))?;
    tracing::debug!(topic, partitions, "topic checked");
    Ok(sink)
}

/// A flag that turns true on SIGINT/SIGTERM.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(gpustream_runtime::service::shutdown_signal());
            tracing::info!("interrupted: flushing what was produced");
            flag.store(true, Ordering::Relaxed);
        }
    });
    stop
}

/// Fails the run when anything sent was not acknowledged.
fn check_delivered(
    sink: &KafkaSink,
    sent: u64,
    delivery: producer::sink::DeliveryTotals,
) -> anyhow::Result<()> {
    if delivery.failed > 0 || delivery.delivered < sent {
        return Err(producer::Error::Undelivered {
            failed: sent - delivery.delivered.min(sent),
            total: sent,
            first_error: sink
                .first_error()
                .unwrap_or_else(|| "flush timed out".into()),
        }
        .into());
    }
    Ok(())
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.write_gpuz {
        let start = args.start.as_deref().unwrap_or("2025-03-14 09:00:00");
        let start = NaiveDateTime::parse_from_str(start, "%Y-%m-%d %H:%M:%S")
            .with_context(|| format!("--start `{start}` is not YYYY-MM-DD HH:MM:SS"))?;
        let rows = u32::try_from(args.samples.unwrap_or(900))
            .context("--samples is too large for a GPU-Z log")?;
        let bytes = gpustream_sim::gpuz_log::write_gpuz_log(args.seed, start, args.sessions, rows);
        std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {} ({} sessions x {} rows, seed {})",
            path.display(),
            args.sessions,
            rows,
            args.seed
        );
        return Ok(());
    }
    if args.hosts == 0 || args.gpus == 0 {
        bail!("--hosts and --gpus must be at least 1");
    }
    if args.interval < Duration::from_millis(1) {
        bail!("--interval must be at least 1ms");
    }
    if !valid_speed(args.speed) {
        bail!(
            "--speed must be 0 (as fast as possible) or a multiple of real time from 0.001 to 1000000"
        );
    }
    let ticks = match (args.samples, args.duration) {
        (Some(k), _) => Some(k),
        (None, Some(d)) => Some((d.as_secs_f64() / args.interval.as_secs_f64()).ceil() as u64),
        (None, None) => None,
    };
    let cfg = FleetConfig {
        hosts: args.hosts,
        gpus_per_host: args.gpus,
        seed: args.seed,
        interval: args.interval,
        start: parse_instant(args.start.as_deref().unwrap_or("now"))?,
        faults: !args.no_faults,
    };
    let mut labels_file = match &args.labels {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let create = args.create_topic.then_some(args.partitions);
    let mut sink = connect(&args.brokers, &args.topic, &args.delivery, create)?;
    let mut label_sink = match &args.labels_topic {
        Some(t) => Some(connect(&args.brokers, t, &args.delivery, create)?),
        None => None,
    };
    tracing::info!(brokers = %args.brokers, topic = %args.topic, hosts = cfg.hosts, gpus = cfg.gpus_per_host, seed = cfg.seed, interval = ?cfg.interval, start = %cfg.start, ?ticks, "simulating a fleet");
    let mut fleet = Fleet::new(cfg);
    let stop = stop_on_signal();
    let labels_path = args.labels.clone();
    let mut on_label = |label: &FaultLabel| -> producer::Result<()> {
        let line =
            serde_json::to_string(label).map_err(|e| producer::Error::Encode(e.to_string()))?;
        if let Some(f) = labels_file.as_mut() {
            // Flushed per label so a reader sees each fault as it starts.
            writeln!(f, "{line}")
                .and_then(|()| f.flush())
                .map_err(|source| producer::Error::File {
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
    let opts = FleetRunOptions {
        ticks,
        speed: args.speed,
    };
    let report = run_fleet(&mut fleet, &opts, &mut sink, &mut on_label, &stop)?;
    println!("{report}");
    check_delivered(&sink, report.sent, report.delivery)?;
    if let Some(mut s) = label_sink {
        use producer::sink::SampleSink;
        let totals = s.flush(Duration::from_secs(60))?;
        check_delivered(&s, report.labels, totals).context("fault labels")?;
    }
    Ok(())
}

fn run_nvml(args: NvmlArgs) -> anyhow::Result<()> {
    if args.interval < MIN_INTERVAL {
        bail!("--interval must be at least 100ms (NVML updates most readings no faster)");
    }
    // NVML first: without a driver, that is the one error worth reporting.
    let mut backend = NvmlBackend::init()?;
    tracing::info!(driver = ?backend.driver_version(), "NVML initialised");
    let create = args.create_topic.then_some(args.partitions);
    let mut sink = connect(&args.brokers, &args.topic, &args.delivery, create)?;
    let mut events = connect(&args.brokers, &args.events_topic, &args.delivery, create)?;
    let opts = SamplerOptions {
        interval: args.interval,
        host: args.host.clone().unwrap_or_else(this_host),
        gpu_id: args.gpu_id,
        ticks: args.samples,
        lost_after: args.lost_after.max(1),
    };
    let stop = stop_on_signal();
    let mut events_sent = 0u64;
    let mut on_event = |ev: &gpustream::AnomalyEvent| -> producer::Result<()> {
        let payload = serde_json::to_vec(ev).map_err(|e| producer::Error::Encode(e.to_string()))?;
        events_sent += 1;
        events.send_bytes(&ev.key(), &payload)
    };
    let report = run_sampler(&mut backend, &opts, &mut sink, &mut on_event, &stop)?;
    println!("{report}");
    check_delivered(&sink, report.sent, report.delivery)?;
    use producer::sink::SampleSink;
    let totals = events.flush(Duration::from_secs(60))?;
    check_delivered(&events, events_sent, totals).context("GPU lost events")
}

fn run() -> anyhow::Result<()> {
    gpustream_runtime::service::init_logging();
    match Cli::parse().command {
        Command::Replay(a) => run_replay(a),
        Command::Simulate(a) => run_simulate(a),
        Command::Nvml(a) => run_nvml(a),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole chain of causes: what a user needs, and no backtrace.
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
