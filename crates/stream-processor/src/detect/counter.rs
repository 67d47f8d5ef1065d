//! `[[counter]]`: an error counter (ECC) that grows.

use std::collections::VecDeque;
use std::time::Duration;

use gpustream::{AnomalyState, Sample};

use super::kind::{DetectorKind, Observation, micros};
use crate::rules::{Signal, de_duration, positive, rule_table, signal};

/// A counter grew by at least `increase` within `within`.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// Watched counter.
    pub signal: Signal,
    /// Growth that fires.
    pub increase: f64,
    /// Span of the growth.
    pub within: Duration,
    /// Resolves after this long without growth.
    pub clear_after: Duration,
}

rule_table!(
    /// A `[[counter]]` table.
    pub CounterToml {
        metric: String,
        increase: f64,
        #[serde(deserialize_with = "de_duration")]
        within: Duration,
        #[serde(deserialize_with = "de_duration")]
        clear_after: Duration,
    }
);

/// A GPU's last counter reading, its increases inside `within`, and when it last grew
/// enough to fire.
#[derive(Debug, Clone, Default)]
pub struct Growth {
    last: Option<f64>,
    increases: VecDeque<(i64, f64)>,
    last_event: Option<i64>,
}

impl DetectorKind for Counter {
    const TABLE: &'static str = "counter";
    type Table = CounterToml;
    type Memory = Growth;

    fn from_table(n: &str, c: CounterToml) -> Result<Self, String> {
        Ok(Counter {
            signal: signal(n, &c.metric)?,
            increase: positive(n, "increase", c.increase)?,
            within: c.within,
            clear_after: c.clear_after,
        })
    }

    fn memory(&self) -> Growth {
        Growth::default()
    }

    #[inline]
    fn evaluate(&self, m: &mut Growth, s: &Sample, t: i64) -> Option<Observation> {
        let span = micros(self.within);
        while m.increases.front().is_some_and(|(ft, _)| t - ft > span) {
            m.increases.pop_front();
        }
        if let Some(v) = self.signal.read(s) {
            // A counter that went down was reset (driver reload): a new baseline.
            if let Some(prev) = m.last
                && v > prev
            {
                m.increases.push_back((t, v - prev));
            }
            m.last = Some(v);
        }
        let grown: f64 = m.increases.iter().map(|(_, d)| d).sum();
        // Only a sample that grew the counter keeps the episode going: `clear_after`
        // counts from the last growth.
        let grew_now = m.increases.back().is_some_and(|(ft, _)| *ft == t);
        let active = grew_now && grown >= self.increase;
        if active {
            m.last_event = Some(t);
        }
        let quiet = m
            .last_event
            .is_none_or(|e| t - e >= micros(self.clear_after));
        Some(
            Observation::new(active, quiet, grown, self.signal.name())
                .with_threshold(self.increase),
        )
    }

    fn message(&self, state: AnomalyState, o: &Observation, _for: Duration) -> String {
        if state == AnomalyState::Firing {
            format!(
                "{} grew by {} within {:?}",
                self.signal.name(),
                o.value,
                self.within
            )
        } else {
            format!("{} stopped growing", self.signal.name())
        }
    }
}
