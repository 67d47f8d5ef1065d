//! The contract of a detector kind: [`DetectorKind`], and the [`Observation`] it hands to
//! the shared lifecycle.

use std::fmt;
use std::time::Duration;

use gpustream::{AnomalyState, Sample, Severity};

use crate::rules::RuleTable;

/// Event time in µs per second.
pub(crate) const MICROS: f64 = 1e6;

/// A duration in µs of event time, saturating (a rules file can write `1000000h`).
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// What one rule concluded from one sample of one GPU.
///
/// `active` and `clear` are separate so a kind can have hysteresis: a reading that is
/// neither (between the clear level and the level) keeps whatever phase the rule is in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The firing condition holds.
    pub active: bool,
    /// The clear condition holds (past the hysteresis). Only read when `active` is false.
    pub clear: bool,
    /// The value reported with a transition (the anomaly's `value`).
    pub value: f64,
    /// The level reported with a transition (the anomaly's `threshold`).
    pub threshold: Option<f64>,
    /// A second number for the message (EWMA z-score, temperature, seconds flat, code ...).
    pub note: f64,
    /// Severity of an episode that fires on this observation when it differs from the
    /// rule's (critical XID codes); `None` keeps the rule's.
    pub severity: Option<Severity>,
    /// The metric reported with a transition (the anomaly's `metric`).
    pub metric: Option<&'static str>,
}

impl Observation {
    /// An observation of `value` read from `metric`, with no level, note or severity.
    pub fn new(active: bool, clear: bool, value: f64, metric: &'static str) -> Observation {
        Observation {
            active,
            clear,
            value,
            threshold: None,
            note: f64::NAN,
            severity: None,
            metric: Some(metric),
        }
    }

    /// The same observation, reporting `level` as the anomaly's threshold.
    pub fn with_threshold(mut self, level: f64) -> Observation {
        self.threshold = Some(level);
        self
    }

    /// The same observation, with `note` for the message.
    pub fn with_note(mut self, note: f64) -> Observation {
        self.note = note;
        self
    }
}

/// One kind of anomaly detector: a `[[TABLE]]` array of rules in the rules file, and how a
/// rule of that kind reads samples. The specification every kind implements.
///
/// A kind only judges samples. What follows from its [`Observation`]s is common to every
/// kind and lives in the lifecycle (`detect::lifecycle`): the `for` wait, the firing and
/// resolved events with their ids and severity, per-GPU overrides (`enabled`, `severity`,
/// `for`, and the levels of [`DetectorKind::levels`]), sessions, and rules that are
/// switched off. Missing samples and lost GPUs are judged against the whole fleet, not per
/// sample, and are not a kind (`detect::silence`).
///
/// Adding a kind: a module under `detect/` with the type, its table (declared with
/// `rules::rule_table!`) and this trait, declared in `detect/mod.rs` and entered once in
/// `detect/registry.rs` (which also fixes where its rules come in the evaluation order);
/// then its section in `docs/anomaly-rules.md` and a scenario in `tests/scenarios/`.
///
/// Everything runs on event time: for the same samples a kind must give the same
/// observations, whatever the wall clock, so replays reproduce anomalies and their ids.
pub trait DetectorKind: Sized + Clone + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// Name of the array of tables holding this kind's rules: `"threshold"` for
    /// `[[threshold]]`. Unique among the registered kinds; it is part of the file format.
    const TABLE: &'static str;

    /// One rule table as written in the file: the common fields and the kind's own,
    /// declared with `rules::rule_table!` so unknown keys are errors and the TOML
    /// parser reports the file, line and field of anything malformed.
    type Table: RuleTable;

    /// What a rule of this kind remembers about one GPU between samples (windows, moving
    /// averages, the last code ...). `()` for a stateless kind.
    type Memory: fmt::Debug + Clone + Send;

    /// Validates the table's own fields (the common ones are checked by the caller) and
    /// builds the rule's parameters. `name` is the rule's name; an error is one line that
    /// starts with ``rule `{name}`:`` and names the offending field (the caller adds the
    /// file). Values that would make [`DetectorKind::evaluate`] misbehave (non-finite or
    /// non-positive levels, empty peer lists ...) must be rejected here.
    fn from_table(name: &str, table: Self::Table) -> Result<Self, String>;

    /// Fresh memory: at a GPU's first sample, and again at every new session of it (a new
    /// log or process: windows and baselines of the previous one do not carry over).
    fn memory(&self) -> Self::Memory;

    /// Reads one sample of a GPU and updates its memory.
    ///
    /// `t` is the sample's event time in µs; it never goes back for one GPU (older samples
    /// are dropped before). Returns `None` when the sample says nothing about the rule (its
    /// reading is absent, or marked unsupported): then the rule's state does not change, so
    /// a sensor a GPU does not have never fires. Never panics on any sample.
    ///
    /// The lifecycle reads an observation so: `active` starts the `for` wait and fires
    /// once it has held that long (at once without `for`); `clear` without `active`
    /// resolves a firing episode and abandons a wait; neither keeps the phase as it is
    /// (hysteresis). `severity`, when set, is the severity of an episode that fires on
    /// this observation; `value`, `threshold` and `metric` go into the event.
    ///
    /// It runs for every rule on every sample: mark implementations `#[inline]`, so the
    /// registry's dispatch inlines them into the per-GPU loop.
    fn evaluate(&self, memory: &mut Self::Memory, sample: &Sample, t: i64) -> Option<Observation>;

    /// The anomaly's one-line message for a transition into `state` (firing or resolved),
    /// from the observation that caused it. `for_` is the rule's `for` as it applies to
    /// this GPU.
    fn message(&self, state: AnomalyState, observation: &Observation, for_: Duration) -> String;

    /// The level and clear level of the rule, for kinds whose levels an `[[override]]` may
    /// replace (its `above`/`below` and `clear`). `None`, the default: an override that
    /// sets levels on a rule of this kind is rejected at load.
    fn levels(&self) -> Option<(f64, f64)> {
        None
    }

    /// Replaces the levels returned by [`DetectorKind::levels`]. Only called on kinds
    /// whose `levels` is `Some`; the default does nothing.
    fn set_levels(&mut self, _level: f64, _clear: f64) {}
}
