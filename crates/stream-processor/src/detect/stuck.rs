//! `[[stuck]]`: a sensor frozen at one value while its peers move.

use std::collections::BTreeMap;
use std::time::Duration;

use gpustream::{AnomalyState, Sample};

use super::kind::{DetectorKind, MICROS, Observation, micros};
use crate::rules::{Signal, de_duration, positive, rule_table, signal};

/// A reading frozen at one value for `flat_for` while a peer moved by its range.
#[derive(Debug, Clone, PartialEq)]
pub struct Stuck {
    /// Watched quantity.
    pub signal: Signal,
    /// How long the value must stay exactly the same.
    pub flat_for: Duration,
    /// Peers and the range (max − min) each must move through meanwhile (any one suffices).
    pub peers: Vec<(Signal, f64)>,
}

rule_table!(
    /// A `[[stuck]]` table.
    pub StuckToml {
        metric: String,
        #[serde(deserialize_with = "de_duration")]
        flat_for: Duration,
        peers: BTreeMap<String, f64>,
    }
);

/// The value a GPU's reading has held since when, and how far each peer moved since.
#[derive(Debug, Clone)]
pub struct Frozen {
    value: f64,
    since: i64,
    /// (min, max) of each peer since `since`.
    peers: Vec<Option<(f64, f64)>>,
}

impl DetectorKind for Stuck {
    const TABLE: &'static str = "stuck";
    type Table = StuckToml;
    type Memory = Frozen;

    fn from_table(n: &str, s: StuckToml) -> Result<Self, String> {
        if s.peers.is_empty() {
            return Err(format!("rule `{n}`: `peers` must name at least one metric"));
        }
        let mut peers = Vec::new();
        for (m, range) in &s.peers {
            peers.push((signal(n, m)?, positive(n, "peers", *range)?));
        }
        Ok(Stuck {
            signal: signal(n, &s.metric)?,
            flat_for: s.flat_for,
            peers,
        })
    }

    fn memory(&self) -> Frozen {
        Frozen {
            value: f64::NAN,
            since: 0,
            peers: vec![None; self.peers.len()],
        }
    }

    #[inline]
    fn evaluate(&self, m: &mut Frozen, s: &Sample, t: i64) -> Option<Observation> {
        let v = self.signal.read(s)?;
        if v != m.value {
            m.value = v;
            m.since = t;
            for (r, (p, _)) in m.peers.iter_mut().zip(self.peers.iter()) {
                *r = p.read(s).map(|x| (x, x));
            }
            return Some(Observation::new(false, true, v, self.signal.name()));
        }
        let mut moved = false;
        for (r, (p, need)) in m.peers.iter_mut().zip(self.peers.iter()) {
            if let Some(x) = p.read(s) {
                let (lo, hi) = r.get_or_insert((x, x));
                *lo = lo.min(x);
                *hi = hi.max(x);
                moved |= *hi - *lo >= *need;
            }
        }
        let flat = (t - m.since) as f64 / MICROS;
        let active = moved && t - m.since >= micros(self.flat_for);
        Some(Observation::new(active, false, v, self.signal.name()).with_note(flat))
    }

    fn message(&self, state: AnomalyState, o: &Observation, _for: Duration) -> String {
        let (name, unit, v) = (self.signal.name(), self.signal.unit(), o.value);
        if state == AnomalyState::Firing {
            format!(
                "{name} frozen at {v} {unit} for {:.0} s while its peers moved",
                o.note
            )
        } else {
            format!("{name} moves again ({v} {unit})")
        }
    }
}
