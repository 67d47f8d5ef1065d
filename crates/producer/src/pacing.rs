//! Replay timing: when each sample is due, at `speed` times real time.
//!
//! Due times are computed against one absolute start instant, so a late wake-up never
//! accumulates into drift. Gaps between logging sessions (GPU-Z appends a header when a
//! new session starts; days can pass between two) are compressed to `max_session_gap`;
//! gaps inside a session are kept.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Computes due times for a replay.
#[derive(Debug)]
pub struct Pacer {
    speed: f64,
    max_session_gap: Duration,
    start: Option<Instant>,
    last_time: Option<DateTime<Utc>>,
    last_session: Option<String>,
    /// Log time elapsed since the first sample, after gap compression.
    virtual_elapsed: Duration,
}

impl Pacer {
    /// `speed` = multiple of real time (0 = as fast as possible).
    pub fn new(speed: f64, max_session_gap: Duration) -> Self {
        Pacer {
            speed,
            max_session_gap,
            start: None,
            last_time: None,
            last_session: None,
            virtual_elapsed: Duration::ZERO,
        }
    }

    /// Registers the next sample and returns the instant it is due (`None` at speed 0).
    ///
    /// ```
    /// use std::time::Duration;
    /// use chrono::{TimeZone, Utc};
    /// let mut p = producer::pacing::Pacer::new(2.0, Duration::from_secs(5));
    /// let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    /// let a = p.due(t0, "s1").unwrap();
    /// let b = p.due(t0 + chrono::Duration::seconds(10), "s1").unwrap();
    /// assert_eq!(b - a, Duration::from_secs(5)); // 10 s of log at 2x
    /// let c = p.due(t0 + chrono::Duration::days(5), "s2").unwrap();
    /// assert_eq!(c - b, Duration::from_millis(2500)); // 5-day gap compressed to 5 s, at 2x
    /// ```
    pub fn due(&mut self, time: DateTime<Utc>, session: &str) -> Option<Instant> {
        let start = *self.start.get_or_insert_with(Instant::now);
        if let Some(last) = self.last_time {
            let gap = (time - last).to_std().unwrap_or(Duration::ZERO);
            let new_session = self.last_session.as_deref() != Some(session);
            self.virtual_elapsed += if new_session {
                gap.min(self.max_session_gap)
            } else {
                gap
            };
        }
        self.last_time = Some(time);
        if self.last_session.as_deref() != Some(session) {
            self.last_session = Some(session.to_string());
        }
        (self.speed > 0.0).then(|| start + self.virtual_elapsed.div_f64(self.speed))
    }

    /// Log time covered so far, after gap compression.
    pub fn virtual_elapsed(&self) -> Duration {
        self.virtual_elapsed
    }
}
