//! How one GPU's day was used: time and energy per owner, idle time inside long idle
//! runs, time throttled per reason. The `waste`, `energy_by_owner` and `throttling`
//! tables ([`super::fleet`]) are built from these.

use super::{JOULES_PER_KWH, PerReason};

/// Energy of some intervals, by how it was measured. Which parts count depends on the
/// GPU ([`joules`](Self::joules)): a GPU with an energy counter counts the counter's
/// differences, others the power trapezoids.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergyParts {
    /// Power trapezoids, joules.
    pub trapezoid_j: f64,
    /// Energy counter differences, joules.
    pub counter_j: f64,
    /// Trapezoids of the intervals where the counter went down (a driver reset), joules:
    /// what a counter GPU counts for them instead.
    pub reset_j: f64,
}

impl EnergyParts {
    /// Adds everything `other` holds.
    pub fn add(&mut self, other: &EnergyParts) {
        self.trapezoid_j += other.trapezoid_j;
        self.counter_j += other.counter_j;
        self.reset_j += other.reset_j;
    }

    /// The energy, joules: counter differences plus the trapezoids of counter resets
    /// when the GPU has an energy `counter`, else the trapezoids.
    pub fn joules(&self, counter: bool) -> f64 {
        if counter {
            self.counter_j + self.reset_j
        } else {
            self.trapezoid_j
        }
    }

    /// The part of [`joules`](Self::joules) taken from counter differences.
    pub fn counter_joules(&self, counter: bool) -> f64 {
        if counter { self.counter_j } else { 0.0 }
    }

    /// [`joules`](Self::joules) in kWh.
    pub fn kwh(&self, counter: bool) -> f64 {
        self.joules(counter) / JOULES_PER_KWH
    }
}

/// One GPU's day under one owner (or unallocated).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OwnerUse {
    /// Seconds of observed intervals (consecutive samples of a session, no gap).
    pub observed_s: f64,
    /// Energy of those intervals.
    pub energy: EnergyParts,
    /// Seconds of those intervals inside long idle runs.
    pub idle_s: f64,
    /// Energy of the idle intervals.
    pub idle_energy: EnergyParts,
    /// Long idle runs with at least one interval under this owner.
    pub idle_runs: u64,
}

impl OwnerUse {
    /// Adds everything `other` holds.
    pub fn add(&mut self, other: &OwnerUse) {
        self.observed_s += other.observed_s;
        self.energy.add(&other.energy);
        self.idle_s += other.idle_s;
        self.idle_energy.add(&other.idle_energy);
        self.idle_runs += other.idle_runs;
    }
}

/// Time throttled per reason, over observed intervals whose closing sample carries a
/// throttle code.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThrottleTime {
    /// Seconds of intervals whose closing sample has a PerfCap or throttle-reason code.
    pub coded_s: f64,
    /// Of those, seconds throttled for any reason.
    pub any_s: f64,
    /// Of those, seconds throttled per reason (a sample can report several).
    pub reasons: PerReason<f64>,
}
