//! `producer replay`: GPU-Z logs replayed at a chosen speed, looped, rebased, or followed
//! while GPU-Z writes them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use gpustream_runtime::config::{parse_duration, serde_duration, serde_opt_duration};
use gpuz::{Identity, ParseOptions};
use serde::{Deserialize, Serialize};

use super::switch::Switch;
use super::{
    Cli, CommonArgs, DEFAULT_COMPRESSION, DEFAULT_MESSAGE_TIMEOUT, DEFAULT_PARTITIONS, Effective,
    ModeSettings, Ops, SHARED_KEYS, blocking, check_delivered, one_or_many, open_sink, ops_addr,
    parse_instant, preflight, sink_options, speed_error, stop_on_signal, this_host, valid_speed,
};
use crate::error::{Error, Result};
use crate::follow::{FollowOptions, follow};
use crate::replay::{LogInput, Passes, ReplayOptions, read_inputs_file, replay_passes};
use crate::sink::SinkOptions;

/// The flags of `producer replay` (file keys in `[producer.replay]` have the same names
/// with `_`; `files` for the FILE arguments).
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct ReplayArgs {
    /// GPU-Z log files, replayed one after another (file key: files).
    #[arg(value_name = "FILE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
    /// TOML file listing the logs and their identities: `[[file]]` tables with `path` and
    /// optional `host`, `gpu`, `gpu_index`, `gpu_name` (added after any FILE arguments).
    #[arg(long, env = "GPUSTREAM_INPUTS", value_name = "FILE.toml")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<PathBuf>,
    /// Keys every mode shares.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Multiple of real time (2 = twice as fast); 0 = as fast as the broker takes it
    /// [default: 1].
    #[arg(long, env = "GPUSTREAM_SPEED")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Host name of each file (repeat per file; one value applies to all) [default: this
    /// machine's].
    #[arg(long, env = "GPUSTREAM_HOST", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<String>,
    /// GPU id of each file (repeat per file) [default: the file name without extension].
    #[arg(long, env = "GPUSTREAM_GPU", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu: Vec<String>,
    /// GPU index of each file (repeat per file) [default: 0].
    #[arg(long, env = "GPUSTREAM_GPU_INDEX", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpu_index: Vec<u32>,
    /// IANA timezone of the logs' wall-clock timestamps [default: this machine's zone].
    #[arg(long, env = "GPUSTREAM_TIMEZONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Header line for logs that have none (or `@FILE` to read it from a file).
    #[arg(long, env = "GPUSTREAM_HEADER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Longest pause replayed between two logging sessions, e.g. 5s, 1m [default: 5s].
    #[arg(long, env = "GPUSTREAM_MAX_SESSION_GAP", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub max_session_gap: Option<Duration>,
    /// Replay again and again until stopped, each pass moved forward in time so event
    /// time never goes backwards and every pass has its own event ids.
    #[arg(long = "loop", env = "GPUSTREAM_LOOP", switch())]
    #[serde(rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_: Option<bool>,
    /// Number of passes (with or without --loop; default 1, or unlimited with --loop).
    #[arg(long, env = "GPUSTREAM_PASSES", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passes: Option<u64>,
    /// Move the logs in time so the first row is at this instant: `now`, or an RFC 3339
    /// time (e.g. 2025-03-14T09:00:00Z).
    #[arg(long, env = "GPUSTREAM_REBASE", value_name = "TIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebase: Option<String>,
    /// Follow the files as GPU-Z writes them (like `tail -F`) until stopped, instead of
    /// replaying them: rows are sent as they appear, truncation and rotation are handled.
    #[arg(long, env = "GPUSTREAM_FOLLOW", switch())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<bool>,
    /// With --follow: file keeping the read positions, so a restart resumes where the last
    /// run stopped (neither re-sending nor skipping rows).
    #[arg(long, env = "GPUSTREAM_STATE_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    /// With --follow: how often to look for new rows [default: 250ms].
    #[arg(long, env = "GPUSTREAM_POLL_INTERVAL", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub poll_interval: Option<Duration>,
}

/// Every key of `[producer.replay]`, with its effective value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySettings {
    /// GPU-Z logs, replayed one after another (paths as given, relative to the working
    /// directory).
    pub files: Vec<PathBuf>,
    /// Inputs file listing logs and identities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<PathBuf>,
    /// Topic of samples.
    pub topic: String,
    /// Multiple of real time; 0 = as fast as the broker takes it.
    pub speed: f64,
    /// Host of each file, or one for all.
    #[serde(deserialize_with = "one_or_many")]
    pub host: Vec<String>,
    /// GPU id of each file, or one for all (none: the file name without extension).
    #[serde(deserialize_with = "one_or_many")]
    pub gpu: Vec<String>,
    /// GPU index of each file, or one for all (none: 0).
    #[serde(deserialize_with = "one_or_many")]
    pub gpu_index: Vec<u32>,
    /// IANA timezone of the logs' timestamps.
    pub timezone: String,
    /// Header for logs without one (`@FILE` reads it from a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Longest replayed pause between sessions.
    #[serde(with = "serde_duration")]
    pub max_session_gap: Duration,
    /// Replay until stopped.
    #[serde(rename = "loop")]
    pub loop_: bool,
    /// Passes over the inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passes: Option<u64>,
    /// Instant the first row is moved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebase: Option<String>,
    /// Follow the files as they grow.
    pub follow: bool,
    /// Where follow mode keeps its read positions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    /// How often follow mode looks for new rows.
    #[serde(with = "serde_duration")]
    pub poll_interval: Duration,
    /// Create the topic if it does not exist.
    pub create_topic: bool,
    /// Partitions of a created topic.
    pub partitions: i32,
    /// Compression codec.
    pub compression: String,
    /// Retry time of a message before it fails.
    #[serde(with = "serde_duration")]
    pub message_timeout: Duration,
    /// Ops endpoint (none: the default only for a run without an end, see
    /// [`ReplaySettings::ops_addr`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            files: Vec::new(),
            inputs: None,
            topic: gpustream_runtime::kafka::SAMPLES_TOPIC.into(),
            speed: 1.0,
            host: vec![this_host()],
            gpu: Vec::new(),
            gpu_index: Vec::new(),
            timezone: local_timezone().name().to_string(),
            header: None,
            max_session_gap: Duration::from_secs(5),
            loop_: false,
            passes: None,
            rebase: None,
            follow: false,
            state_file: None,
            poll_interval: Duration::from_millis(250),
            create_topic: false,
            partitions: DEFAULT_PARTITIONS,
            compression: DEFAULT_COMPRESSION.into(),
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            metrics_addr: None,
        }
    }
}

impl ModeSettings for ReplaySettings {
    const MODE: &'static str = "replay";
    const SHARED: &'static [&'static str] = SHARED_KEYS;
}

/// This machine's IANA zone (UTC when it cannot be told).
pub fn local_timezone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Picks the i-th value, or the only one, or a default.
fn nth<T: Clone>(values: &[T], i: usize, default: impl FnOnce() -> T) -> T {
    match values {
        [] => default(),
        [one] => one.clone(),
        many => many.get(i).cloned().unwrap_or_else(default),
    }
}

fn stem(i: usize, path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("gpu{i}"))
}

/// What a replay run does, checked: the logs with their identities and the options of
/// replay or follow mode.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The logs, FILE arguments first, then the inputs file's.
    pub inputs: Vec<LogInput>,
    /// Pacing and parsing.
    pub replay: ReplayOptions,
    /// Passes and rebasing (replay).
    pub passes: Passes,
    /// Follow mode's options, when following.
    pub follow: Option<FollowOptions>,
}

impl ReplaySettings {
    /// Checks the settings together and reads what they name (timezone, header file,
    /// inputs file).
    pub fn plan(&self) -> Result<ReplayPlan> {
        if self.files.is_empty() && self.inputs.is_none() {
            return Err(Error::Invalid(
                "no GPU-Z logs: give FILE arguments, --inputs FILE.toml, or `files` in [producer.replay]"
                    .into(),
            ));
        }
        if self.follow && (self.loop_ || self.passes.is_some() || self.rebase.is_some()) {
            return Err(Error::Invalid(
                "--follow sends rows as they are written: it cannot be combined with --loop, --passes or --rebase"
                    .into(),
            ));
        }
        if self.state_file.is_some() && !self.follow {
            return Err(Error::Invalid(
                "--state-file keeps follow mode's positions: it needs --follow".into(),
            ));
        }
        if !valid_speed(self.speed) {
            return Err(speed_error());
        }
        crate::sink::check_compression(&self.compression)?;
        let timezone: Tz = self.timezone.parse().map_err(|_| {
            Error::Invalid(format!(
                "unknown timezone `{}` (use an IANA name like Europe/Berlin)",
                self.timezone
            ))
        })?;
        let fallback_header = match self.header.as_deref() {
            Some(h) if h.starts_with('@') => {
                let path = &h[1..];
                Some(std::fs::read_to_string(path).map_err(|source| Error::File {
                    path: format!("header file {path}"),
                    source,
                })?)
            }
            other => other.map(str::to_string),
        };
        for (flag, n) in [
            ("--host", self.host.len()),
            ("--gpu", self.gpu.len()),
            ("--gpu-index", self.gpu_index.len()),
        ] {
            if n > 1 && n != self.files.len() {
                return Err(Error::Invalid(format!(
                    "{flag} given {n} times for {} files: give it once (all files) or once per file",
                    self.files.len()
                )));
            }
        }
        let host = nth(&self.host, 0, this_host);
        let mut inputs: Vec<LogInput> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, path)| LogInput {
                path: path.clone(),
                identity: Identity {
                    host: nth(&self.host, i, || host.clone()),
                    gpu: nth(&self.gpu, i, || stem(i, path)),
                    gpu_index: nth(&self.gpu_index, i, || 0),
                    gpu_name: None,
                },
            })
            .collect();
        if let Some(file) = &self.inputs {
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
        let passes = Passes {
            count: match (self.loop_, self.passes) {
                (_, Some(0)) => return Err(Error::Invalid("--passes must be at least 1".into())),
                (_, Some(n)) => Some(n),
                (true, None) => None,
                (false, None) => Some(1),
            },
            rebase_to: self.rebase.as_deref().map(parse_instant).transpose()?,
        };
        let follow = self.follow.then(|| FollowOptions {
            poll: self.poll_interval,
            state_file: self.state_file.clone(),
            ..FollowOptions::default()
        });
        Ok(ReplayPlan {
            inputs,
            replay: ReplayOptions {
                speed: self.speed,
                max_session_gap: self.max_session_gap,
                parse: ParseOptions {
                    timezone,
                    fallback_header,
                },
                max_issues_logged: 20,
            },
            passes,
            follow,
        })
    }

    /// Where `/metrics` and `/health` are served: `metrics_addr`, else the default
    /// address when following or looping without an end, else nowhere.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        ops_addr(
            self.metrics_addr,
            self.follow || (self.loop_ && self.passes.is_none()),
        )
    }

    /// The sink's compression and delivery timeout.
    pub fn sink_options(&self) -> SinkOptions {
        sink_options(&self.compression, self.message_timeout)
    }
}

/// Replays (or follows) the logs until done or stopped; prints the summary.
pub async fn run(cli: &Cli, args: &ReplayArgs) -> Result<()> {
    let Effective { kafka, settings } = cli.effective::<ReplaySettings>(args)?;
    let plan = settings.plan()?;
    let stop = stop_on_signal();
    let ops = Ops::start(settings.ops_addr()).await?;
    preflight(&kafka).await?;
    let mut sink = open_sink(
        &kafka,
        &settings.topic,
        &settings.sink_options(),
        settings.create_topic.then_some(settings.partitions),
        Some(ops.observer("gpuz")),
    )
    .await?;
    tracing::info!(brokers = %kafka.brokers, topic = %settings.topic, speed = settings.speed, timezone = %plan.replay.parse.timezone, follow = settings.follow, "replaying {} file(s)", plan.inputs.len());
    blocking(move || {
        let report = match &plan.follow {
            Some(follow_opts) => {
                if follow_opts.state_file.is_none() {
                    tracing::warn!(
                        "--follow without --state-file: a restart reads the files from the top again"
                    );
                }
                follow(
                    &plan.inputs,
                    &plan.replay.parse,
                    follow_opts,
                    &mut sink,
                    &stop,
                )?
            }
            None => replay_passes(&plan.inputs, &plan.replay, &plan.passes, &mut sink, &stop)?,
        };
        println!("{report}");
        check_delivered(&sink, report.sent, report.delivery)
    })
    .await
}
