//! The anomaly engine: the rules of [`crate::rules`] evaluated sample by sample per GPU,
//! each with a pending → firing → resolved lifecycle, plus missing-sample and lost-GPU
//! detection against the fleet's event-time watermark.
//!
//! Everything runs on event time, so replaying a log at any speed gives the same
//! anomalies, with the same ids, as living through it.
//!
//! Layout: each detector kind is one module implementing [`DetectorKind`] (`threshold`,
//! `rate_spike`, `deviation`, `throttle`, `stuck`, `counter`, `code`), listed once in
//! `registry.rs`; the lifecycle they share is `lifecycle.rs`, silence (`[missing]`) is
//! `silence.rs`, and this module keeps the per-GPU state and feeds it samples.

pub mod code;
pub mod counter;
pub mod deviation;
mod kind;
mod lifecycle;
pub mod rate_spike;
pub(crate) mod registry;
mod silence;
pub mod stuck;
pub mod threshold;
pub mod throttle;

use std::collections::HashMap;
use std::sync::Arc;

use gpustream::{AnomalyEvent, Sample, Source};

pub use kind::{DetectorKind, Observation};
pub use registry::RuleKind;

use crate::rules::{Rule, RuleSet};
use kind::MICROS;
use lifecycle::{Open, Slot};

/// The built-in rules (`rules.default.toml`): the classic thresholds with durations and
/// hysteresis, and every other detector.
pub fn default_rules() -> RuleSet {
    RuleSet::defaults()
}

/// Everything the engine keeps about one GPU.
#[derive(Debug)]
struct GpuState {
    rules: Arc<[Rule]>,
    slots: Vec<Slot>,
    session: String,
    /// Newest event time seen (µs).
    last_time: i64,
    last_event_id: String,
    gpu_index: u32,
    source: Source,
    /// Measured sample interval in seconds.
    interval: Option<f64>,
    missing_on: bool,
    lost_on: bool,
    missing: Option<Open>,
    lost: Option<Open>,
}

/// Evaluates the rules per GPU and emits one event per lifecycle transition.
#[derive(Debug)]
pub struct Detector {
    rules: RuleSet,
    shared: Arc<[Rule]>,
    /// host → gpu → state: two lookups by `&str`, no allocation per sample.
    gpus: HashMap<String, HashMap<String, GpuState>>,
    /// Newest event time of the whole stream (µs) and when to judge silence next.
    newest: i64,
    next_check: i64,
    /// Samples older than their GPU's newest, not evaluated.
    out_of_order: u64,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new(default_rules())
    }
}

impl Detector {
    /// A detector running `rules`.
    pub fn new(rules: RuleSet) -> Self {
        let shared: Arc<[Rule]> = rules.rules.clone().into();
        Detector {
            rules,
            shared,
            gpus: HashMap::new(),
            newest: i64::MIN,
            next_check: i64::MIN,
            out_of_order: 0,
        }
    }

    /// Rules in use.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Samples skipped because they were older than their GPU's newest sample (Kafka keeps
    /// one GPU in order; this only happens when overlapping logs are replayed).
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Feeds one sample; appends the transitions it causes to `out`, including missing-
    /// sample and lost-GPU transitions of other GPUs that the advancing event time reveals.
    ///
    /// Sensors marked unsupported and absent readings never change a rule's state.
    pub fn observe(&mut self, s: &Sample, out: &mut Vec<AnomalyEvent>) {
        let t = s.event_time.timestamp_micros();
        if !self
            .gpus
            .get(&s.host)
            .is_some_and(|g| g.contains_key(&s.gpu))
        {
            let state = self.new_gpu(s);
            self.gpus
                .entry(s.host.clone())
                .or_default()
                .insert(s.gpu.clone(), state);
        }
        let Some(g) = self.gpus.get_mut(&s.host).and_then(|h| h.get_mut(&s.gpu)) else {
            return;
        };
        if t < g.last_time {
            self.out_of_order += 1;
            return;
        }
        silence::back(g, s, &self.rules.missing, out);
        if g.session != s.session {
            g.session.clone_from(&s.session);
            g.interval = None;
            for (slot, rule) in g.slots.iter_mut().zip(g.rules.iter()) {
                slot.new_session(rule);
            }
        } else if g.last_time != i64::MIN {
            let delta = (t - g.last_time) as f64 / MICROS;
            if delta > 0.0 {
                g.interval = Some(match g.interval {
                    None => delta,
                    // Quick to learn a shorter interval, slow to accept a longer one, and
                    // gaps (dropouts) are not intervals at all.
                    Some(i) if delta < i => 0.5 * i + 0.5 * delta,
                    Some(i) if delta <= 4.0 * i => 0.9 * i + 0.1 * delta,
                    Some(i) => i,
                });
            }
        }
        g.last_time = t;
        g.last_event_id.clone_from(&s.event_id);
        g.gpu_index = s.gpu_index;
        g.source = s.source;
        for (slot, rule) in g.slots.iter_mut().zip(g.rules.iter()) {
            if rule.enabled {
                slot.observe(rule, s, t, out);
            }
        }
        if t > self.newest {
            self.newest = t;
            if t >= self.next_check {
                self.next_check = t + 1_000_000;
                silence::judge(&self.rules.missing, &mut self.gpus, t, out);
            }
        }
    }

    fn new_gpu(&self, s: &Sample) -> GpuState {
        let rules: Arc<[Rule]> = if self.rules.has_override_for(&s.host, &s.gpu) {
            self.rules.for_gpu(&s.host, &s.gpu).into()
        } else {
            self.shared.clone()
        };
        let slots = rules.iter().map(Slot::new).collect();
        let m = &self.rules.missing;
        GpuState {
            rules,
            slots,
            session: s.session.clone(),
            last_time: i64::MIN,
            last_event_id: String::new(),
            gpu_index: s.gpu_index,
            source: s.source,
            interval: None,
            missing_on: self
                .rules
                .missing_enabled_for(&s.host, &s.gpu, &m.missing_name),
            lost_on: self
                .rules
                .missing_enabled_for(&s.host, &s.gpu, &m.lost_name),
            missing: None,
            lost: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_detector_kind_has_its_own_table() {
        let tables = RuleKind::TABLES;
        let mut unique = tables.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), tables.len(), "{tables:?}");
        assert!(
            tables
                .iter()
                .all(|t| !t.is_empty() && *t != "missing" && *t != "override")
        );
    }
}
