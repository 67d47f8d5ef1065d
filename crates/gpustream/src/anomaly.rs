//! Anomaly events: what the stream processor emits when a rule starts or stops firing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sample::Source;

/// Lifecycle state of an anomaly episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyState {
    /// The condition holds (after its `for` duration, if any).
    Firing,
    /// The condition cleared (past its hysteresis).
    Resolved,
}

impl AnomalyState {
    /// Name on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            AnomalyState::Firing => "firing",
            AnomalyState::Resolved => "resolved",
        }
    }
}

/// How bad an anomaly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// Name on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One transition (firing or resolved) of one anomaly episode on one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// Unique per transition: derived from `anomaly_id` and `state`.
    pub event_id: String,
    /// Stable id of the episode: the firing and the resolved event share it.
    pub anomaly_id: String,
    /// Firing or resolved.
    pub state: AnomalyState,
    /// Rule name, e.g. `gpu_temp_high`.
    pub rule: String,
    /// Severity of the rule.
    pub severity: Severity,
    /// Host of the GPU.
    pub host: String,
    /// GPU id.
    pub gpu: String,
    /// GPU index.
    pub gpu_index: u32,
    /// Source of the samples.
    pub source: Source,
    /// Session of the sample that triggered the transition.
    pub session: String,
    /// Event time of the transition.
    pub event_time: DateTime<Utc>,
    /// Event time at which the episode started firing.
    pub started_at: DateTime<Utc>,
    /// Metric the rule watches, when it watches one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Observed value at the transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Threshold of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Human-readable summary.
    pub message: String,
    /// Event id of the sample that caused the transition.
    pub sample_event_id: String,
}

impl AnomalyEvent {
    /// Kafka key: the GPU, so one GPU's transitions stay ordered.
    pub fn key(&self) -> String {
        format!("{}/{}", self.host, self.gpu)
    }
}

/// Derives the stable id of an anomaly episode.
pub fn anomaly_id(rule: &str, host: &str, gpu: &str, first_sample_event_id: &str) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [rule, host, gpu, first_sample_event_id] {
        h.update(part.as_bytes());
        h.update(&[0x1f]);
    }
    format!("{:032x}", h.digest128())
}

/// Derives the per-transition event id.
pub fn anomaly_event_id(anomaly_id: &str, state: AnomalyState) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(anomaly_id.as_bytes());
    h.update(&[0x1f]);
    h.update(state.as_str().as_bytes());
    format!("{:032x}", h.digest128())
}
