//! Anomaly detection: threshold rules with a firing/resolved lifecycle per GPU.

use std::collections::HashMap;

use gpustream::anomaly::{anomaly_event_id, anomaly_id};
use gpustream::{AnomalyEvent, AnomalyState, Metric, Sample, Severity};
use serde::{Deserialize, Serialize};

/// A rule that fires while a metric is above a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRule {
    /// Rule name, e.g. `gpu_temp_high`.
    pub name: String,
    /// Watched metric.
    pub metric: Metric,
    /// Fires when the reading is strictly above this.
    pub above: f64,
    /// Severity of the anomaly.
    pub severity: Severity,
}

/// The four classic thresholds: GPU > 85 °C, CPU > 80 °C, board power > 300 W, load > 95 %.
pub fn default_rules() -> Vec<ThresholdRule> {
    let rule = |name: &str, metric, above, severity| ThresholdRule {
        name: name.into(),
        metric,
        above,
        severity,
    };
    vec![
        rule("gpu_temp_high", Metric::GpuTemp, 85.0, Severity::Warning),
        rule("cpu_temp_high", Metric::CpuTemp, 80.0, Severity::Warning),
        rule(
            "board_power_high",
            Metric::BoardPower,
            300.0,
            Severity::Warning,
        ),
        rule("gpu_load_high", Metric::GpuLoad, 95.0, Severity::Info),
    ]
}

#[derive(Debug, Clone)]
struct Episode {
    anomaly_id: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// Evaluates rules sample by sample and emits a firing event when a rule starts to hold
/// for a GPU and a resolved event when it stops.
#[derive(Debug, Default)]
pub struct Detector {
    rules: Vec<ThresholdRule>,
    /// Open episodes by (host, gpu, rule index).
    open: HashMap<(String, String, usize), Episode>,
}

impl Detector {
    /// A detector for `rules`.
    pub fn new(rules: Vec<ThresholdRule>) -> Self {
        Detector {
            rules,
            open: HashMap::new(),
        }
    }

    /// Rules in use.
    pub fn rules(&self) -> &[ThresholdRule] {
        &self.rules
    }

    /// Feeds one sample; appends the transitions it causes to `out`.
    ///
    /// Sensors marked unsupported and absent readings never change a rule's state.
    pub fn observe(&mut self, s: &Sample, out: &mut Vec<AnomalyEvent>) {
        for (i, rule) in self.rules.iter().enumerate() {
            let Some(value) = s.reading(rule.metric) else {
                continue;
            };
            let key = (s.host.clone(), s.gpu.clone(), i);
            let firing = value > rule.above;
            let state = match (firing, self.open.contains_key(&key)) {
                (true, false) => {
                    let ep = Episode {
                        anomaly_id: anomaly_id(&rule.name, &s.host, &s.gpu, &s.event_id),
                        started_at: s.event_time,
                    };
                    self.open.insert(key.clone(), ep);
                    AnomalyState::Firing
                }
                (false, true) => AnomalyState::Resolved,
                _ => continue,
            };
            let ep = match state {
                AnomalyState::Firing => self.open.get(&key).cloned(),
                AnomalyState::Resolved => self.open.remove(&key),
            };
            let Some(ep) = ep else { continue };
            let verb = if state == AnomalyState::Firing {
                "above"
            } else {
                "back to or below"
            };
            out.push(AnomalyEvent {
                event_id: anomaly_event_id(&ep.anomaly_id, state),
                anomaly_id: ep.anomaly_id,
                state,
                rule: rule.name.clone(),
                severity: rule.severity,
                host: s.host.clone(),
                gpu: s.gpu.clone(),
                gpu_index: s.gpu_index,
                source: s.source,
                session: s.session.clone(),
                event_time: s.event_time,
                started_at: ep.started_at,
                metric: Some(rule.metric.column().to_string()),
                value: Some(value),
                threshold: Some(rule.above),
                message: format!(
                    "{} {value} {} {verb} {}",
                    rule.metric.column(),
                    rule.metric.unit(),
                    rule.above
                ),
                sample_event_id: s.event_id.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_sample as sample;

    #[test]
    fn fires_once_and_resolves_once() {
        let mut d = Detector::new(default_rules());
        let mut out = vec![];
        for (i, t) in [80.0, 86.0, 90.0, 86.0, 85.0, 84.0, 91.0]
            .iter()
            .enumerate()
        {
            d.observe(&sample(i as i64, *t), &mut out);
        }
        let states: Vec<_> = out
            .iter()
            .map(|e| (e.state, e.sample_event_id.as_str()))
            .collect();
        assert_eq!(
            states,
            vec![
                (AnomalyState::Firing, "e1"),
                (AnomalyState::Resolved, "e4"),
                (AnomalyState::Firing, "e6")
            ]
        );
        assert_eq!(out[0].anomaly_id, out[1].anomaly_id);
        assert_ne!(out[0].event_id, out[1].event_id);
        assert_ne!(out[0].anomaly_id, out[2].anomaly_id);
    }

    #[test]
    fn unsupported_sensor_never_fires() {
        let mut d = Detector::new(default_rules());
        let mut s = sample(0, 99.0);
        s.unsupported = vec![Metric::GpuTemp];
        let mut out = vec![];
        d.observe(&s, &mut out);
        assert!(out.is_empty());
    }
}
