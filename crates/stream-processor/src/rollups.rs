//! Event-time tumbling windows per GPU with a watermark.
//!
//! Each GPU has its own watermark: the latest event time seen for it minus the allowed
//! lateness (GPUs replayed from different logs live in different times, so one global
//! watermark would declare everything late). A window closes once the watermark passes
//! its end; a sample for a closed window is counted as late and left out of the rollups
//! (it still goes to the lake). Windows of a GPU that stops sending are closed after
//! `idle_timeout` of processing time, and all open windows are closed at shutdown.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gpustream::Sample;
use gpustream::rollup::{Rollup, WindowAcc};

/// Window settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupConfig {
    /// Window width (default 1 minute).
    pub width: Duration,
    /// How far behind a GPU's latest event time a sample may arrive and still count.
    pub allowed_lateness: Duration,
    /// Processing time after which a silent GPU's windows are closed.
    pub idle_timeout: Duration,
}

impl Default for RollupConfig {
    fn default() -> Self {
        RollupConfig {
            width: Duration::from_secs(60),
            allowed_lateness: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

struct GpuState {
    windows: BTreeMap<DateTime<Utc>, WindowAcc>,
    max_event_time: DateTime<Utc>,
    last_seen: Instant,
    /// Kafka partition the GPU's samples come from: closed rollups travel with it.
    partition: i32,
}

/// Per-GPU windows.
pub struct Windower {
    cfg: RollupConfig,
    width: chrono::Duration,
    lateness: chrono::Duration,
    /// By host, then GPU: looked up by borrowed names, so a sample of a known GPU costs
    /// no allocation.
    gpus: HashMap<String, HashMap<String, GpuState>>,
    late: u64,
}

/// Start of the window holding `t`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2024, 1, 1, 10, 0, 59).unwrap();
/// let w = stream_processor::rollups::window_start(t, chrono::Duration::minutes(1));
/// assert_eq!(w, Utc.with_ymd_and_hms(2024, 1, 1, 10, 0, 0).unwrap());
/// ```
pub fn window_start(t: DateTime<Utc>, width: chrono::Duration) -> DateTime<Utc> {
    let w = width.num_microseconds().unwrap_or(60_000_000).max(1);
    let us = t.timestamp_micros();
    DateTime::from_timestamp_micros(us - us.rem_euclid(w)).unwrap_or(t)
}

impl Windower {
    /// A windower.
    pub fn new(cfg: RollupConfig) -> Self {
        let to_chrono =
            |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::minutes(1));
        Windower {
            width: to_chrono(cfg.width),
            lateness: to_chrono(cfg.allowed_lateness),
            cfg,
            gpus: HashMap::new(),
            late: 0,
        }
    }

    /// Samples that arrived after their window had closed.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Adds a sample; appends `(partition, rollup)` for windows it closes. Returns
    /// `false` when the sample was late.
    pub fn observe(&mut self, s: &Sample, partition: i32, out: &mut Vec<(i32, Rollup)>) -> bool {
        let start = window_start(s.event_time, self.width);
        if !self
            .gpus
            .get(&s.host)
            .is_some_and(|gpus| gpus.contains_key(&s.gpu))
        {
            self.gpus.entry(s.host.clone()).or_default().insert(
                s.gpu.clone(),
                GpuState {
                    windows: BTreeMap::new(),
                    max_event_time: s.event_time,
                    last_seen: Instant::now(),
                    partition,
                },
            );
        }
        let Some(st) = self.gpus.get_mut(&s.host).and_then(|g| g.get_mut(&s.gpu)) else {
            return true;
        };
        st.last_seen = Instant::now();
        st.partition = partition;
        if start + self.width <= st.max_event_time - self.lateness {
            self.late += 1;
            return false;
        }
        st.windows
            .entry(start)
            .or_insert_with(|| WindowAcc::new(start, start + self.width, s))
            .add(s);
        st.max_event_time = st.max_event_time.max(s.event_time);
        let watermark = st.max_event_time - self.lateness;
        while let Some(entry) = st.windows.first_entry() {
            if entry.get().end() > watermark {
                break;
            }
            out.push((st.partition, entry.remove().finish()));
        }
        true
    }

    /// Closes the windows of GPUs silent for longer than the idle timeout.
    pub fn close_idle(&mut self, out: &mut Vec<(i32, Rollup)>) {
        let timeout = self.cfg.idle_timeout;
        for st in self
            .gpus
            .values_mut()
            .flat_map(|g| g.values_mut())
            .filter(|st| st.last_seen.elapsed() >= timeout)
        {
            out.extend(
                std::mem::take(&mut st.windows)
                    .into_values()
                    .map(|w| (st.partition, w.finish())),
            );
        }
        for gpus in self.gpus.values_mut() {
            gpus.retain(|_, st| !st.windows.is_empty() || st.last_seen.elapsed() < timeout * 4);
        }
        self.gpus.retain(|_, gpus| !gpus.is_empty());
    }

    /// Closes every open window (shutdown).
    pub fn close_all(&mut self, out: &mut Vec<(i32, Rollup)>) {
        for st in self.gpus.values_mut().flat_map(|g| g.values_mut()) {
            out.extend(
                std::mem::take(&mut st.windows)
                    .into_values()
                    .map(|w| (st.partition, w.finish())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_sample as sample;

    #[test]
    fn windows_close_on_the_watermark_and_late_samples_are_counted() {
        let mut w = Windower::new(RollupConfig {
            allowed_lateness: Duration::from_secs(5),
            ..Default::default()
        });
        let mut out = vec![];
        for (t, v) in [(0, 40.0), (30, 50.0), (59, 60.0), (61, 70.0), (64, 71.0)] {
            assert!(w.observe(&sample(t, v), 0, &mut out));
        }
        assert!(
            out.is_empty(),
            "watermark 59 s has not passed the first window's end"
        );
        assert!(w.observe(&sample(65, 72.0), 0, &mut out));
        assert_eq!(out.len(), 1);
        let r = &out[0].1;
        assert_eq!(r.count, 3);
        let t = r.metrics["gpu_temp_c"];
        assert_eq!((t.min, t.mean, t.max, t.last), (40.0, 50.0, 60.0, 60.0));
        // Within lateness of the open window: fine. For the closed one: late.
        assert!(!w.observe(&sample(10, 1.0), 0, &mut out));
        assert_eq!(w.late(), 1);
        let mut rest = vec![];
        w.close_all(&mut rest);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1.count, 3);
    }
}
