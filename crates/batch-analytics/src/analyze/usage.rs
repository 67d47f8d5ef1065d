//! One GPU's usage: observed time and energy per owner, long idle runs, time throttled
//! per reason. Fed with each reading's [`Step`] (the interval it closed), so it shares
//! the gap and energy rules of the timeline.
//!
//! Every interval is booked at the reading that ends it: to the owner holding the GPU
//! at that instant, and to the throttle reasons that reading reports.

use crate::model::{
    AnalysisOptions, EnergyParts, OwnerId, OwnerUse, PerReason, Segment, ThrottleReason,
    ThrottleTime, owner_at,
};

use super::MICROS;
use super::session::Step;

/// A run of idle readings of one session, not yet known to be long enough.
#[derive(Debug, Clone)]
struct IdleRun {
    first_us: i64,
    last_us: i64,
    /// Per owner (consecutive intervals of one owner merged): seconds and energy.
    pending: Vec<(Option<OwnerId>, f64, EnergyParts)>,
}

/// The usage accumulator of one GPU's day.
#[derive(Debug, Clone, Default)]
pub(super) struct Usage {
    /// The GPU's allocations, sorted and disjoint.
    segments: Vec<Segment>,
    owners: Vec<(Option<OwnerId>, OwnerUse)>,
    /// The open idle run of each session, by session index.
    runs: Vec<Option<IdleRun>>,
    throttle: ThrottleTime,
}

impl Usage {
    /// A day of a GPU held as `segments` say.
    pub fn new(segments: Vec<Segment>) -> Usage {
        Usage {
            segments,
            ..Usage::default()
        }
    }

    fn owner_use(&mut self, owner: Option<OwnerId>) -> &mut OwnerUse {
        let i = match self.owners.iter().position(|(o, _)| *o == owner) {
            Some(i) => i,
            None => {
                self.owners.push((owner, OwnerUse::default()));
                self.owners.len() - 1
            }
        };
        &mut self.owners[i].1
    }

    /// Adds one reading at `t_us` with its `load` and throttle reasons (`None` without
    /// a code), after the timeline turned it into `step`.
    pub fn add(
        &mut self,
        step: &Step,
        t_us: i64,
        load: Option<f64>,
        reasons: Option<&PerReason<bool>>,
        opts: &AnalysisOptions,
    ) {
        let owner = owner_at(&self.segments, t_us);
        let energy = EnergyParts {
            trapezoid_j: step.trapezoid_j.unwrap_or(0.0),
            counter_j: step.counter_j.unwrap_or(0.0),
            reset_j: if step.counter_reset {
                step.trapezoid_j.unwrap_or(0.0)
            } else {
                0.0
            },
        };
        let dt_s = step.interval_us.map(|us| us as f64 / MICROS as f64);
        let used = self.owner_use(owner);
        used.observed_s += dt_s.unwrap_or(0.0);
        used.energy.add(&energy);

        if let (Some(dt), Some(hit)) = (dt_s, reasons) {
            self.throttle.coded_s += dt;
            for r in ThrottleReason::ALL {
                if hit[r] {
                    self.throttle.reasons[r] += dt;
                }
            }
            if hit.values().iter().any(|h| *h) {
                self.throttle.any_s += dt;
            }
        }

        if self.runs.len() <= step.session {
            self.runs.resize(step.session + 1, None);
        }
        let idle = load.is_some_and(|l| l < opts.waste_idle_below_pct);
        if (step.gap || !idle)
            && let Some(done) = self.runs[step.session].take()
        {
            self.close(done, opts);
        }
        if !idle {
            return;
        }
        let Some(run) = &mut self.runs[step.session] else {
            self.runs[step.session] = Some(IdleRun {
                first_us: t_us,
                last_us: t_us,
                pending: Vec::new(),
            });
            return;
        };
        if let Some(dt) = dt_s {
            match run.pending.last_mut() {
                Some((o, s, e)) if *o == owner => {
                    *s += dt;
                    e.add(&energy);
                }
                _ => run.pending.push((owner, dt, energy)),
            }
        }
        run.last_us = t_us;
    }

    /// Books a finished idle run when it lasted long enough.
    fn close(&mut self, run: IdleRun, opts: &AnalysisOptions) {
        let long = (run.last_us - run.first_us) as f64 >= opts.waste_min_idle_s * MICROS as f64;
        if !long {
            return;
        }
        let mut counted: Vec<Option<OwnerId>> = Vec::new();
        for (owner, s, e) in run.pending {
            let used = self.owner_use(owner);
            used.idle_s += s;
            used.idle_energy.add(&e);
            if !counted.contains(&owner) {
                used.idle_runs += 1;
                counted.push(owner);
            }
        }
    }

    /// The finished day: open idle runs end with it; owners by id (`None` first).
    pub fn finish(
        mut self,
        opts: &AnalysisOptions,
    ) -> (Vec<(Option<OwnerId>, OwnerUse)>, ThrottleTime) {
        for run in std::mem::take(&mut self.runs).into_iter().flatten() {
            self.close(run, opts);
        }
        let mut owners = self.owners;
        owners.sort_by_key(|(o, _)| *o);
        (owners, self.throttle)
    }
}
