//! `[[deviation]]`: an EWMA z-score per GPU and metric.

use std::time::Duration;

use gpustream::{AnomalyState, Sample};

use super::kind::{DetectorKind, Observation};
use crate::rules::{Signal, finite, positive, rule_table, signal};

/// EWMA z-score: the reading is more than `z` standard deviations from its moving mean.
#[derive(Debug, Clone, PartialEq)]
pub struct Deviation {
    /// Watched quantity.
    pub signal: Signal,
    /// EWMA weight of a new reading.
    pub alpha: f64,
    /// Fires beyond this many standard deviations.
    pub z: f64,
    /// Resolves below this many standard deviations.
    pub clear_z: f64,
    /// Lower bound of the standard deviation, so a flat signal does not make noise huge.
    pub min_std: f64,
    /// Readings needed (in one session) before the rule may fire.
    pub warmup: u32,
}

rule_table!(
    /// A `[[deviation]]` table.
    pub DeviationToml {
        metric: String,
        alpha: f64,
        z: f64,
        clear_z: Option<f64>,
        min_std: f64,
        warmup: u32,
    }
);

/// The moving mean and variance of one GPU's readings, and how many went into them.
#[derive(Debug, Clone, Default)]
pub struct Ewma {
    n: u32,
    mean: f64,
    var: f64,
}

impl DetectorKind for Deviation {
    const TABLE: &'static str = "deviation";
    type Table = DeviationToml;
    type Memory = Ewma;

    fn from_table(n: &str, d: DeviationToml) -> Result<Self, String> {
        if !(d.alpha > 0.0 && d.alpha < 1.0) {
            return Err(format!("rule `{n}`: `alpha` must be between 0 and 1"));
        }
        let z = positive(n, "z", d.z)?;
        Ok(Deviation {
            signal: signal(n, &d.metric)?,
            alpha: d.alpha,
            z,
            clear_z: finite(n, "clear_z", d.clear_z.unwrap_or(z / 2.0))?,
            min_std: positive(n, "min_std", d.min_std)?,
            warmup: d.warmup,
        })
    }

    fn memory(&self) -> Ewma {
        Ewma::default()
    }

    #[inline]
    fn evaluate(&self, m: &mut Ewma, s: &Sample, _t: i64) -> Option<Observation> {
        let v = self.signal.read(s)?;
        if m.n == 0 {
            m.mean = v;
            m.var = 0.0;
        }
        let diff = v - m.mean;
        let score = diff.abs() / m.var.sqrt().max(self.min_std);
        let m0 = m.mean;
        m.mean += self.alpha * diff;
        m.var = (1.0 - self.alpha) * (m.var + self.alpha * diff * diff);
        m.n = m.n.saturating_add(1);
        let warm = m.n > self.warmup;
        Some(
            Observation::new(
                warm && score > self.z,
                score < self.clear_z,
                v,
                self.signal.name(),
            )
            .with_threshold(m0)
            .with_note(score),
        )
    }

    fn message(&self, state: AnomalyState, o: &Observation, _for: Duration) -> String {
        format!(
            "{} {:.1} {} is {:.1} standard deviations from its moving mean{}",
            self.signal.name(),
            o.value,
            self.signal.unit(),
            o.note,
            if state == AnomalyState::Firing {
                ""
            } else {
                " (back to normal)"
            }
        )
    }
}
