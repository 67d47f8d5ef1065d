//! `producer replay`: GPU-Z logs → samples → sink, paced, with progress and a summary.
//!
//! Each log is read twice, streaming, never whole: a first pass ([`gpuz::scan`]) finds
//! the counts, the time range and the sensors each session has unsupported; the second
//! ([`gpuz::LogReader`]) sends the samples as they are read. Memory stays the same for a
//! log of any size.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use gpustream::{Sample, event_id};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::pacing::Pacer;
use crate::progress::Progress;
use crate::sink::{DeliveryTotals, SampleSink};
use gpuz::{Event, Identity, LogReader, LogScan, ParseOptions, Summary};

/// One log and who it belongs to.
#[derive(Debug, Clone)]
pub struct LogInput {
    /// Path of the log.
    pub path: PathBuf,
    /// Host/GPU identity of its rows.
    pub identity: Identity,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Multiple of real time; 0 = as fast as the broker takes it.
    pub speed: f64,
    /// Longest pause between two logging sessions, in log time.
    pub max_session_gap: Duration,
    /// How to parse.
    pub parse: ParseOptions,
    /// Issues printed per file before only counting them.
    pub max_issues_logged: usize,
}

/// What a replay did.
#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    /// Row accounting over all files.
    pub rows: Summary,
    /// Samples handed to the sink.
    pub sent: u64,
    /// Delivery totals after the final flush.
    pub delivery: DeliveryTotals,
    /// Whether the replay was interrupted before the end.
    pub interrupted: bool,
    /// Passes over the inputs started (more than one with `--loop`).
    pub passes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.rows;
        write!(
            f,
            "rows read {} (in {} sessions), samples {}, skipped {}",
            r.data_rows,
            r.headers,
            r.samples,
            r.skipped_total()
        )?;
        for (reason, n) in &r.skipped {
            write!(f, " [{reason}: {n}]")?;
        }
        if self.passes > 1 {
            write!(f, " over {} passes", self.passes)?;
        }
        write!(
            f,
            ", field issues {}; sent {}, delivered {}, failed {}{} in {:.1}s",
            r.field_issues,
            self.sent,
            self.delivery.delivered,
            self.delivery.failed,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            self.elapsed.as_secs_f64()
        )
    }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })
}

/// The first pass over one input.
fn scan(input: &LogInput, opts: &ReplayOptions) -> Result<LogScan> {
    let name = input.path.display().to_string();
    Ok(gpuz::scan(&name, open(&input.path)?, &opts.parse)?)
}

/// How often to go over the inputs and where their times land.
#[derive(Debug, Clone, PartialEq)]
pub struct Passes {
    /// Passes over all inputs; `None` = until stopped (`--loop`).
    pub count: Option<u64>,
    /// Time the earliest row of the first pass is moved to (`--rebase now`); `None` keeps
    /// the logs' own times.
    pub rebase_to: Option<DateTime<Utc>>,
}

impl Default for Passes {
    /// One pass at the logs' own times.
    fn default() -> Self {
        Passes {
            count: Some(1),
            rebase_to: None,
        }
    }
}

/// Moves a sample by `shift`. A moved sample is a different event: its session gets the
/// shift as a suffix and its id is derived again, so every pass of a loop has its own ids
/// while pass 0 of a plain replay keeps the ids of the log.
pub fn shift_sample(s: &mut Sample, shift: TimeDelta) {
    if shift.is_zero() {
        return;
    }
    s.event_time = s
        .event_time
        .checked_add_signed(shift)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    s.session = format!(
        "{}@{:+}s",
        s.session,
        shift.num_milliseconds() as f64 / 1000.0
    );
    s.event_id = event_id(s.source, &s.host, &s.gpu, &s.session, s.seq);
}

/// Earliest and latest event time over all inputs.
fn time_range(scans: &[LogScan]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    scans
        .iter()
        .filter_map(|s| s.time_range)
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
}

/// Replays logs one after another into `sink`, once, at their own times.
///
/// Stops early (after flushing what was sent) when `stop` becomes true.
pub fn replay(
    inputs: &[LogInput],
    opts: &ReplayOptions,
    sink: &mut dyn SampleSink,
    stop: &Arc<AtomicBool>,
) -> Result<ReplayReport> {
    replay_passes(inputs, opts, &Passes::default(), sink, stop)
}

/// Replays logs one after another into `sink`, `passes.count` times. Each pass is moved
/// forward by the span of all inputs plus one second, so event time never goes backwards
/// from one pass to the next; with `rebase_to`, the first row of the first pass lands there.
///
/// Stops early (after flushing what was sent) when `stop` becomes true.
pub fn replay_passes(
    inputs: &[LogInput],
    opts: &ReplayOptions,
    passes: &Passes,
    sink: &mut dyn SampleSink,
    stop: &Arc<AtomicBool>,
) -> Result<ReplayReport> {
    let started = Instant::now();
    let mut report = ReplayReport::default();
    let mut pacer = Pacer::new(opts.speed, opts.max_session_gap);
    let shifting = passes.count != Some(1) || passes.rebase_to.is_some();
    // Shifting needs the time range of all inputs before the first sample goes out.
    let mut first_scans = if shifting {
        inputs
            .iter()
            .map(|i| scan(i, opts))
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let (base_shift, period) = match time_range(&first_scans) {
        Some((first, last)) => (
            passes.rebase_to.map_or(TimeDelta::zero(), |to| to - first),
            last - first + TimeDelta::seconds(1),
        ),
        None => (TimeDelta::zero(), TimeDelta::zero()),
    };
    first_scans.reverse();
    let mut pass = 0u64;
    'passes: while passes.count.is_none_or(|n| pass < n) {
        let shift = i32::try_from(pass)
            .ok()
            .and_then(|p| period.checked_mul(p))
            .and_then(|p| base_shift.checked_add(&p))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "pass {pass}: event times beyond what can be represented"
                ))
            })?;
        report.passes += 1;
        for input in inputs {
            let name = input.path.display().to_string();
            // Every pass reads the file again, as it is now.
            let found = match first_scans.pop() {
                Some(found) => found,
                None => scan(input, opts)?,
            };
            if pass == 0 {
                tracing::info!(file = %name, encoding = ?found.encoding, rows = found.summary.data_rows, samples = found.summary.samples, sessions = found.summary.headers, "parsed log");
            }
            report.rows.merge(&found.summary);
            let mut progress = Progress::new(&name, found.summary.samples);
            let mut reader = LogReader::new(
                &name,
                open(&input.path)?,
                &input.identity,
                &opts.parse,
                Some(&found),
            );
            let mut issues = 0u64;
            while let Some(event) = reader.next_event()? {
                let sample = match event {
                    Event::Sample(sample) => sample,
                    Event::Issue(issue) => {
                        if pass == 0 && issues < opts.max_issues_logged as u64 {
                            tracing::warn!("{issue}");
                        }
                        issues += 1;
                        continue;
                    }
                };
                if stop.load(Ordering::Relaxed) {
                    report.interrupted = true;
                    break 'passes;
                }
                shift_sample(sample, shift);
                if let Some(due) = pacer.due(sample.event_time, &sample.session) {
                    // Sleep in short steps so Ctrl-C is honoured within ~100 ms.
                    while let Some(left) = due.checked_duration_since(Instant::now()) {
                        if stop.load(Ordering::Relaxed) {
                            report.interrupted = true;
                            break 'passes;
                        }
                        std::thread::sleep(left.min(Duration::from_millis(100)));
                    }
                }
                sink.send(sample)?;
                report.sent += 1;
                progress.inc();
            }
            if pass == 0 && issues > opts.max_issues_logged as u64 {
                tracing::warn!(file = %name, more = issues - opts.max_issues_logged as u64, "further issues not shown");
            }
            progress.finish();
        }
        pass += 1;
        if period.is_zero() && passes.count.is_none() {
            tracing::warn!("the inputs hold no samples: nothing to loop over");
            break;
        }
    }
    report.delivery = sink.flush(Duration::from_secs(60))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// One entry of an inputs file (`--inputs FILE`): a log and who it belongs to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Log path; relative paths are relative to the inputs file.
    pub path: PathBuf,
    /// Host name (default: this machine).
    pub host: Option<String>,
    /// GPU id (default: the file name without extension).
    pub gpu: Option<String>,
    /// GPU index (default 0).
    pub gpu_index: Option<u32>,
    /// GPU model name.
    pub gpu_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputsFile {
    #[serde(default)]
    file: Vec<InputSpec>,
}

/// Reads an inputs file: a TOML list of `[[file]]` tables with `path` and optional
/// `host`, `gpu`, `gpu_index`, `gpu_name`.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("inputs.toml");
/// std::fs::write(&p, "[[file]]\npath = \"a.txt\"\nhost = \"rig1\"\ngpu_index = 1\n").unwrap();
/// let specs = producer::replay::read_inputs_file(&p).unwrap();
/// assert_eq!(specs[0].path, dir.path().join("a.txt"));
/// assert_eq!(specs[0].host.as_deref(), Some("rig1"));
/// ```
pub fn read_inputs_file(path: &Path) -> Result<Vec<InputSpec>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })?;
    let parsed: InputsFile =
        toml::from_str(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    if parsed.file.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no [[file]] entries (each needs at least `path = \"...\"`)",
            path.display()
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(parsed
        .file
        .into_iter()
        .map(|mut spec| {
            if spec.path.is_relative() {
                spec.path = base.join(&spec.path);
            }
            spec
        })
        .collect())
}
