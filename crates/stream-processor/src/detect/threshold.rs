//! `[[threshold]]`: a reading beyond a level, with hysteresis and optional guards.

use std::collections::BTreeMap;
use std::time::Duration;

use gpustream::{AnomalyState, Sample};

use super::kind::{DetectorKind, Observation};
use crate::rules::{Signal, finite, rule_table, signal};

/// Which side of the level a threshold rule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Fires while the reading is strictly above the level.
    Above,
    /// Fires while the reading is strictly below the level.
    Below,
}

impl Direction {
    /// Whether `v` is strictly beyond `level` on this side.
    fn beyond(self, v: f64, level: f64) -> bool {
        match self {
            Direction::Above => v > level,
            Direction::Below => v < level,
        }
    }
}

/// A reading beyond a level; resolves once it is back past `clear` (hysteresis).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Watched quantity.
    pub signal: Signal,
    /// Above or below.
    pub direction: Direction,
    /// Level it fires beyond.
    pub level: f64,
    /// Level it must come back to (inclusive) to resolve.
    pub clear: f64,
    /// Other readings that must also hold (strictly) for the rule to fire; when one stops
    /// holding, the episode resolves.
    pub guards: Vec<(Signal, Direction, f64)>,
}

rule_table!(
    /// A `[[threshold]]` table.
    pub ThresholdToml {
        metric: String,
        above: Option<f64>,
        below: Option<f64>,
        clear: Option<f64>,
        #[serde(default)]
        when_above: BTreeMap<String, f64>,
        #[serde(default)]
        when_below: BTreeMap<String, f64>,
    }
);

impl DetectorKind for Threshold {
    const TABLE: &'static str = "threshold";
    type Table = ThresholdToml;
    type Memory = ();

    fn from_table(n: &str, t: ThresholdToml) -> Result<Self, String> {
        let sig = signal(n, &t.metric)?;
        let (direction, level) = match (t.above, t.below) {
            (Some(a), None) => (Direction::Above, finite(n, "above", a)?),
            (None, Some(b)) => (Direction::Below, finite(n, "below", b)?),
            _ => {
                return Err(format!(
                    "rule `{n}`: give exactly one of `above` and `below`"
                ));
            }
        };
        let clear = finite(n, "clear", t.clear.unwrap_or(level))?;
        let wrong_side = match direction {
            Direction::Above => clear > level,
            Direction::Below => clear < level,
        };
        if wrong_side {
            return Err(format!(
                "rule `{n}`: `clear` ({clear}) must be on the quiet side of the level ({level})"
            ));
        }
        let mut guards = Vec::new();
        for (dir, map) in [
            (Direction::Above, &t.when_above),
            (Direction::Below, &t.when_below),
        ] {
            for (m, v) in map {
                guards.push((signal(n, m)?, dir, finite(n, "when", *v)?));
            }
        }
        Ok(Threshold {
            signal: sig,
            direction,
            level,
            clear,
            guards,
        })
    }

    fn memory(&self) {}

    #[inline]
    fn evaluate(&self, _: &mut (), s: &Sample, _t: i64) -> Option<Observation> {
        let v = self.signal.read(s)?;
        let (active, cleared) = match self.direction {
            Direction::Above => (v > self.level, v <= self.clear),
            Direction::Below => (v < self.level, v >= self.clear),
        };
        let guarded = self
            .guards
            .iter()
            .all(|(g, dir, lvl)| g.read(s).is_some_and(|x| dir.beyond(x, *lvl)));
        let (active, cleared) = (active && guarded, cleared || !guarded);
        Some(Observation::new(active, cleared, v, self.signal.name()).with_threshold(self.level))
    }

    fn message(&self, state: AnomalyState, o: &Observation, for_: Duration) -> String {
        let (v, level, clear) = (o.value, self.level, self.clear);
        let (unit, name) = (self.signal.unit(), self.signal.name());
        match (state == AnomalyState::Firing, self.direction) {
            (true, Direction::Above) => format!("{name} {v} {unit} above {level} for {for_:?}"),
            (true, Direction::Below) => format!("{name} {v} {unit} below {level} for {for_:?}"),
            (false, Direction::Above) => format!("{name} {v} {unit}, back to or below {clear}"),
            (false, Direction::Below) => format!("{name} {v} {unit}, back to or above {clear}"),
        }
    }

    fn levels(&self) -> Option<(f64, f64)> {
        Some((self.level, self.clear))
    }

    fn set_levels(&mut self, level: f64, clear: f64) {
        self.level = level;
        self.clear = clear;
    }
}
