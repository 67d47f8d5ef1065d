//! Progress display: a bar with rate and ETA on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Progress of one unit of work (a file, a simulation).
pub struct Progress {
    name: String,
    bar: Option<ProgressBar>,
    done: u64,
    total: u64,
    started: Instant,
    last_log: Instant,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    /// Starts tracking `total` items (0 = unknown).
    pub fn new(name: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            };
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_message(name.to_string());
            b
        });
        Progress {
            name: name.to_string(),
            bar,
            done: 0,
            total,
            started: Instant::now(),
            last_log: Instant::now(),
        }
    }

    /// One more item done.
    pub fn inc(&mut self) {
        self.done += 1;
        if let Some(b) = &self.bar {
            b.inc(1);
        } else if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(file = %self.name, done = self.done, total = self.total, rate = format!("{rate:.0}/s"), "progress");
        }
    }

    /// Done with this unit.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
