//! Running a simulated fleet into a sink: paced against an absolute clock, labels
//! written as faults start, Ctrl-C honoured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::progress::Progress;
use crate::sink::{DeliveryTotals, SampleSink};
use gpustream_sim::fleet::{FaultLabel, Fleet};

/// How long to run and how fast.
#[derive(Debug, Clone)]
pub struct FleetRunOptions {
    /// Ticks to produce (samples per GPU); `None` = until stopped.
    pub ticks: Option<u64>,
    /// Multiple of real time (1 = one tick per interval); 0 = as fast as the sink takes it.
    pub speed: f64,
}

/// What a fleet run did.
#[derive(Debug, Default, Clone)]
pub struct FleetRunReport {
    /// Ticks simulated.
    pub ticks: u64,
    /// Samples handed to the sink.
    pub sent: u64,
    /// Fault labels emitted.
    pub labels: u64,
    /// Delivery totals after the final flush.
    pub delivery: DeliveryTotals,
    /// Whether the run was stopped before its end.
    pub interrupted: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for FleetRunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ticks {}, samples sent {}, delivered {}, failed {}, fault labels {}{} in {:.1}s",
            self.ticks,
            self.sent,
            self.delivery.delivered,
            self.delivery.failed,
            self.labels,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            self.elapsed.as_secs_f64()
        )
    }
}

/// Runs `fleet` into `sink`, handing every new label to `on_label` as its fault starts.
pub fn run_fleet(
    fleet: &mut Fleet,
    opts: &FleetRunOptions,
    sink: &mut dyn SampleSink,
    on_label: &mut dyn FnMut(&FaultLabel) -> Result<()>,
    stop: &Arc<AtomicBool>,
) -> Result<FleetRunReport> {
    let started = Instant::now();
    let interval = fleet.config().interval;
    let mut report = FleetRunReport::default();
    let mut progress = Progress::new("simulate", opts.ticks.unwrap_or(0));
    let mut labels_seen = fleet.labels_since(0).len();
    let first_tick = fleet.ticks();
    'run: while opts.ticks.is_none_or(|n| report.ticks < n) {
        if opts.speed > 0.0 {
            // Due time from one absolute start: a late wake-up never accumulates drift.
            let offset = interval.as_secs_f64() * report.ticks as f64 / opts.speed;
            let Some(due) = Duration::try_from_secs_f64(offset)
                .ok()
                .and_then(|d| started.checked_add(d))
            else {
                // Further away than a clock can express: nothing left to pace.
                break 'run;
            };
            while let Some(left) = due.checked_duration_since(Instant::now()) {
                if stop.load(Ordering::Relaxed) {
                    report.interrupted = true;
                    break 'run;
                }
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
        }
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        let samples = fleet.next_tick();
        for label in fleet.labels_since(labels_seen) {
            on_label(label)?;
            report.labels += 1;
        }
        labels_seen = fleet.labels_since(0).len();
        for s in &samples {
            sink.send(s)?;
            report.sent += 1;
        }
        report.ticks = fleet.ticks() - first_tick;
        progress.inc();
    }
    progress.finish();
    report.delivery = sink.flush(Duration::from_secs(60))?;
    report.elapsed = started.elapsed();
    Ok(report)
}
