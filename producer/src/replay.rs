//! `producer replay`: GPU-Z logs → samples → sink, paced, with progress and a summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gpuz::{Identity, ParseOptions, Summary, parse_log};
use crate::pacing::Pacer;
use crate::progress::Progress;
use crate::sink::{DeliveryTotals, SampleSink};

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

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })
}

/// Replays logs one after another into `sink`.
///
/// Stops early (after flushing what was sent) when `stop` becomes true.
pub fn replay(
    inputs: &[LogInput],
    opts: &ReplayOptions,
    sink: &mut dyn SampleSink,
    stop: &Arc<AtomicBool>,
) -> Result<ReplayReport> {
    let started = Instant::now();
    let mut report = ReplayReport::default();
    let mut pacer = Pacer::new(opts.speed, opts.max_session_gap);
    'files: for input in inputs {
        let name = input.path.display().to_string();
        let bytes = read(&input.path)?;
        let log = parse_log(&name, &bytes, &input.identity, &opts.parse);
        tracing::info!(file = %name, encoding = ?log.encoding, rows = log.summary.data_rows, samples = log.samples.len(), sessions = log.summary.headers, "parsed log");
        for (i, issue) in log.issues.iter().enumerate() {
            if i < opts.max_issues_logged {
                tracing::warn!("{issue}");
            } else {
                tracing::warn!(file = %name, more = log.issues.len() - i, "further issues not shown");
                break;
            }
        }
        report.rows.merge(&log.summary);
        let mut progress = Progress::new(&name, log.samples.len() as u64);
        for sample in &log.samples {
            if stop.load(Ordering::Relaxed) {
                report.interrupted = true;
                break 'files;
            }
            if let Some(due) = pacer.due(sample.event_time, &sample.session) {
                // Sleep in short steps so Ctrl-C is honoured within ~100 ms.
                while let Some(left) = due.checked_duration_since(Instant::now()) {
                    if stop.load(Ordering::Relaxed) {
                        report.interrupted = true;
                        break 'files;
                    }
                    std::thread::sleep(left.min(Duration::from_millis(100)));
                }
            }
            sink.send(sample)?;
            report.sent += 1;
            progress.inc();
        }
        progress.finish();
    }
    report.delivery = sink.flush(Duration::from_secs(60))?;
    report.elapsed = started.elapsed();
    Ok(report)
}
