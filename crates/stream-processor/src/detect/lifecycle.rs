//! The lifecycle every per-sample rule shares, whatever its kind: quiet → pending (the
//! `for` wait) → firing → resolved, and the anomaly events of the transitions.

use chrono::{DateTime, Utc};
use gpustream::anomaly::{anomaly_event_id, anomaly_id};
use gpustream::{AnomalyEvent, AnomalyState, Sample, Severity};

use super::kind::{Observation, micros};
use super::registry::Memory;
use crate::rules::Rule;

/// Where a rule stands for one GPU.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    Quiet,
    /// The condition holds since `since` (µs), not yet for the rule's `for`.
    Pending {
        since: i64,
    },
    Firing(Open),
}

/// An episode that fired and has not resolved yet.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub(crate) anomaly_id: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) severity: Severity,
}

/// One rule's state for one GPU: its phase and its kind's memory.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) phase: Phase,
    pub(crate) memory: Memory,
}

impl Slot {
    /// A rule's state before a GPU's first sample.
    pub(crate) fn new(rule: &Rule) -> Slot {
        Slot {
            phase: Phase::Quiet,
            memory: rule.kind.memory(),
        }
    }

    /// A new session of the GPU: the kind starts over and a `for` wait restarts, but an
    /// episode that fired stays open until a sample clears it.
    pub(crate) fn new_session(&mut self, rule: &Rule) {
        self.memory = rule.kind.memory();
        if matches!(self.phase, Phase::Pending { .. }) {
            self.phase = Phase::Quiet;
        }
    }

    /// Evaluates the rule on one sample (`t`: its event time in µs) and advances its
    /// lifecycle, appending the transition it causes, if any, to `out`.
    // The hot path: see `RuleKind::evaluate`.
    #[inline(always)]
    pub(crate) fn observe(&mut self, rule: &Rule, s: &Sample, t: i64, out: &mut Vec<AnomalyEvent>) {
        if let Some(obs) = rule.kind.evaluate(&mut self.memory, s, t) {
            self.step(rule, &obs, s, t, out);
        }
    }

    /// Advances the lifecycle with one observation.
    fn step(
        &mut self,
        rule: &Rule,
        obs: &Observation,
        s: &Sample,
        t: i64,
        out: &mut Vec<AnomalyEvent>,
    ) {
        let fire = match &self.phase {
            Phase::Quiet if obs.active => {
                if rule.for_.is_zero() {
                    true
                } else {
                    self.phase = Phase::Pending { since: t };
                    false
                }
            }
            Phase::Quiet => false,
            // Hysteresis applies to the wait too: a reading between the clear level and the
            // level (a load of 94 % against 95 %) neither fires nor restarts the wait; only
            // reaching the clear level does.
            Phase::Pending { .. } if obs.clear && !obs.active => {
                self.phase = Phase::Quiet;
                false
            }
            Phase::Pending { since } => obs.active && t - since >= micros(rule.for_),
            Phase::Firing(_) => {
                if obs.clear
                    && !obs.active
                    && let Phase::Firing(ep) = std::mem::replace(&mut self.phase, Phase::Quiet)
                {
                    out.push(event(rule, &ep, AnomalyState::Resolved, obs, s));
                }
                false
            }
        };
        if fire {
            let ep = Open {
                anomaly_id: anomaly_id(&rule.name, &s.host, &s.gpu, &s.event_id),
                started_at: s.event_time,
                severity: obs.severity.unwrap_or(rule.severity),
            };
            out.push(event(rule, &ep, AnomalyState::Firing, obs, s));
            self.phase = Phase::Firing(ep);
        }
    }
}

fn event(
    rule: &Rule,
    ep: &Open,
    state: AnomalyState,
    obs: &Observation,
    s: &Sample,
) -> AnomalyEvent {
    AnomalyEvent {
        event_id: anomaly_event_id(&ep.anomaly_id, state),
        anomaly_id: ep.anomaly_id.clone(),
        state,
        rule: rule.name.clone(),
        severity: ep.severity,
        host: s.host.clone(),
        gpu: s.gpu.clone(),
        gpu_index: s.gpu_index,
        source: s.source,
        session: s.session.clone(),
        event_time: s.event_time,
        started_at: ep.started_at,
        metric: obs.metric.map(str::to_string),
        value: Some(obs.value),
        threshold: obs.threshold,
        message: rule.kind.message(state, obs, rule.for_),
        sample_event_id: s.event_id.clone(),
    }
}
