//! `[[rate_spike]]`: a fast rise inside one session.

use std::collections::VecDeque;
use std::time::Duration;

use gpustream::{AnomalyState, Sample};

use super::kind::{DetectorKind, Observation, micros};
use crate::rules::{Signal, de_duration, finite, positive, rule_table, signal};

/// A rise of at least `rise` within `within`, inside one session.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSpike {
    /// Watched quantity.
    pub signal: Signal,
    /// Rise that fires.
    pub rise: f64,
    /// Time span of the rise.
    pub within: Duration,
    /// Resolves when the rise over `within` is below this.
    pub clear_rise: f64,
}

rule_table!(
    /// A `[[rate_spike]]` table.
    pub RateSpikeToml {
        metric: String,
        rise: f64,
        #[serde(deserialize_with = "de_duration")]
        within: Duration,
        clear_rise: Option<f64>,
    }
);

/// The readings of the last `within`, as a monotonic queue whose front is their minimum.
#[derive(Debug, Clone, Default)]
pub struct RisingWindow(VecDeque<(i64, f64)>);

impl DetectorKind for RateSpike {
    const TABLE: &'static str = "rate_spike";
    type Table = RateSpikeToml;
    type Memory = RisingWindow;

    fn from_table(n: &str, r: RateSpikeToml) -> Result<Self, String> {
        let rise = positive(n, "rise", r.rise)?;
        let clear_rise = finite(n, "clear_rise", r.clear_rise.unwrap_or(rise / 2.0))?;
        if r.within.is_zero() {
            return Err(format!("rule `{n}`: `within` must be positive"));
        }
        Ok(RateSpike {
            signal: signal(n, &r.metric)?,
            rise,
            within: r.within,
            clear_rise,
        })
    }

    fn memory(&self) -> RisingWindow {
        RisingWindow::default()
    }

    #[inline]
    fn evaluate(&self, w: &mut RisingWindow, s: &Sample, t: i64) -> Option<Observation> {
        let w = &mut w.0;
        let v = self.signal.read(s)?;
        let span = micros(self.within);
        while w.front().is_some_and(|(ft, _)| t - ft > span) {
            w.pop_front();
        }
        // A monotonic queue: the front is the window's minimum, O(1) per sample.
        while w.back().is_some_and(|(_, x)| *x >= v) {
            w.pop_back();
        }
        w.push_back((t, v));
        let low = w.front().map_or(v, |(_, x)| *x);
        let r = v - low;
        Some(
            Observation::new(r >= self.rise, r < self.clear_rise, r, self.signal.name())
                .with_threshold(self.rise),
        )
    }

    fn message(&self, state: AnomalyState, o: &Observation, _for: Duration) -> String {
        format!(
            "{} rose {:.1} {} within {:?}{}",
            self.signal.name(),
            o.value,
            self.signal.unit(),
            self.within,
            if state == AnomalyState::Firing {
                ""
            } else {
                " (settled)"
            }
        )
    }
}
