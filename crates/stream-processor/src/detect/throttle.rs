//! `[[throttle]]`: throttling flags, or clocks falling while the GPU is hot and busy.

use std::collections::VecDeque;
use std::time::Duration;

use gpustream::{AnomalyState, Metric, Sample};

use super::kind::{DetectorKind, Observation, micros};
use crate::rules::{de_opt_duration, finite, positive, rule_table};

/// Throttling flags, or clocks falling while the temperature is at its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttle {
    /// GPU-Z PerfCap bits that count (1 power, 2 thermal, ...).
    pub perf_cap_bits: u32,
    /// NVML throttle-reason bits that count.
    pub throttle_reason_bits: u32,
    /// Temperature at which falling clocks count as throttling (`None`: flags only).
    pub temp_limit: Option<f64>,
    /// Drop of the core clock below its recent maximum, in percent.
    pub clock_drop_pct: f64,
    /// Span of "recent" for the clock maximum.
    pub clock_window: Duration,
}

rule_table!(
    /// A `[[throttle]]` table.
    pub ThrottleToml {
        #[serde(default)]
        perf_cap_bits: u32,
        #[serde(default)]
        throttle_reason_bits: u32,
        temp_limit: Option<f64>,
        clock_drop_pct: Option<f64>,
        #[serde(default, deserialize_with = "de_opt_duration")]
        clock_window: Option<Duration>,
    }
);

/// The clocks of the last `clock_window`, as a monotonic queue whose front is their maximum.
#[derive(Debug, Clone, Default)]
pub struct ClockWindow(VecDeque<(i64, f64)>);

impl DetectorKind for Throttle {
    const TABLE: &'static str = "throttle";
    type Table = ThrottleToml;
    type Memory = ClockWindow;

    fn from_table(n: &str, t: ThrottleToml) -> Result<Self, String> {
        if t.perf_cap_bits == 0 && t.throttle_reason_bits == 0 && t.temp_limit.is_none() {
            return Err(format!(
                "rule `{n}`: give `perf_cap_bits`, `throttle_reason_bits` or `temp_limit`"
            ));
        }
        Ok(Throttle {
            perf_cap_bits: t.perf_cap_bits,
            throttle_reason_bits: t.throttle_reason_bits,
            temp_limit: t
                .temp_limit
                .map(|v| finite(n, "temp_limit", v))
                .transpose()?,
            clock_drop_pct: positive(n, "clock_drop_pct", t.clock_drop_pct.unwrap_or(10.0))?,
            clock_window: t.clock_window.unwrap_or(Duration::from_secs(30)),
        })
    }

    fn memory(&self) -> ClockWindow {
        ClockWindow::default()
    }

    #[inline]
    fn evaluate(&self, w: &mut ClockWindow, s: &Sample, t: i64) -> Option<Observation> {
        let w = &mut w.0;
        let perf = s.reading(Metric::PerfCap).map(|v| v as u32);
        let reasons = s.reading(Metric::ThrottleReasons).map(|v| v as u32);
        if let Some(p) = perf.filter(|p| p & self.perf_cap_bits != 0) {
            return Some(Observation::new(
                true,
                false,
                f64::from(p),
                Metric::PerfCap.column(),
            ));
        }
        if let Some(r) = reasons.filter(|r| r & self.throttle_reason_bits != 0) {
            return Some(Observation::new(
                true,
                false,
                f64::from(r),
                Metric::ThrottleReasons.column(),
            ));
        }
        let clock_metric = if s.reading(Metric::CoreClock).is_some() {
            Metric::CoreClock
        } else {
            Metric::SmClock
        };
        let (Some(limit), Some(clock), Some(temp)) = (
            self.temp_limit,
            s.reading(clock_metric),
            s.reading(Metric::GpuTemp),
        ) else {
            return (perf.is_some() || reasons.is_some())
                .then(|| Observation::new(false, true, 0.0, Metric::PerfCap.column()));
        };
        let span = micros(self.clock_window);
        while w.front().is_some_and(|(ft, _)| t - ft > span) {
            w.pop_front();
        }
        // A monotonic queue: the front is the window's maximum.
        while w.back().is_some_and(|(_, c)| *c <= clock) {
            w.pop_back();
        }
        w.push_back((t, clock));
        let top = w.front().map_or(clock, |(_, c)| *c);
        // Clocks also fall when a job ends while the chip is still hot: only a GPU still
        // under load (or one whose load is unknown) counts.
        let loaded = s.reading(Metric::GpuLoad).is_none_or(|l| l >= 50.0);
        let dropped = temp >= limit && loaded && clock < top * (1.0 - self.clock_drop_pct / 100.0);
        Some(
            Observation::new(dropped, !dropped, clock, clock_metric.column())
                .with_threshold(top)
                .with_note(temp),
        )
    }

    fn message(&self, state: AnomalyState, o: &Observation, _for: Duration) -> String {
        let v = o.value;
        if state != AnomalyState::Firing {
            "no longer throttled".to_string()
        } else if o.metric == Some(Metric::CoreClock.column())
            || o.metric == Some(Metric::SmClock.column())
        {
            format!(
                "clock {v} MHz fell below its recent maximum {:.0} MHz at {:.1} C",
                o.threshold.unwrap_or(f64::NAN),
                o.note
            )
        } else {
            format!(
                "throttled: {} = {} ({})",
                o.metric.unwrap_or("flags"),
                v as u32,
                gpustream::metric::perfcap_reasons(v as u32).join(", ")
            )
        }
    }
}
