//! `[[code]]`: event codes (XID) carried by samples.

use std::time::Duration;

use gpustream::{AnomalyState, Sample, Severity};

use super::kind::{DetectorKind, Observation, micros};
use crate::rules::{Signal, de_duration, rule_table, signal};

/// A non-zero event code (XID) in a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    /// Watched code.
    pub signal: Signal,
    /// Codes that are not reported.
    pub ignore: Vec<i64>,
    /// Codes reported as critical whatever the rule's severity.
    pub critical: Vec<i64>,
    /// Resolves after this long without a code.
    pub clear_after: Duration,
}

rule_table!(
    /// A `[[code]]` table.
    pub CodeToml {
        metric: String,
        #[serde(default)]
        ignore: Vec<i64>,
        #[serde(default)]
        critical: Vec<i64>,
        #[serde(deserialize_with = "de_duration")]
        clear_after: Duration,
    }
);

/// When a GPU last reported a code, and which.
#[derive(Debug, Clone, Default)]
pub struct LastCode {
    last_event: Option<i64>,
    code: i64,
}

impl DetectorKind for Code {
    const TABLE: &'static str = "code";
    type Table = CodeToml;
    type Memory = LastCode;

    fn from_table(n: &str, c: CodeToml) -> Result<Self, String> {
        Ok(Code {
            signal: signal(n, &c.metric)?,
            ignore: c.ignore,
            critical: c.critical,
            clear_after: c.clear_after,
        })
    }

    fn memory(&self) -> LastCode {
        LastCode::default()
    }

    #[inline]
    fn evaluate(&self, m: &mut LastCode, s: &Sample, t: i64) -> Option<Observation> {
        // An absent code is no code: NVML omits the metric between events.
        let c = self.signal.read(s).map_or(0, |v| v as i64);
        let active = c != 0 && !self.ignore.contains(&c);
        if active {
            m.last_event = Some(t);
            m.code = c;
        }
        let quiet = m
            .last_event
            .is_none_or(|e| t - e >= micros(self.clear_after));
        let mut o = Observation::new(active, quiet, m.code as f64, self.signal.name())
            .with_note(m.code as f64);
        if self.critical.contains(&m.code) {
            o.severity = Some(Severity::Critical);
        }
        Some(o)
    }

    fn message(&self, state: AnomalyState, o: &Observation, _for: Duration) -> String {
        if state == AnomalyState::Firing {
            format!("{} {}", self.signal.name(), o.note as i64)
        } else {
            format!("no {} since {:?}", self.signal.name(), self.clear_after)
        }
    }
}
