//! The order-dependent analyses of one GPU: sessions, gaps, energy integration and
//! temperature spikes. Readings of a session must come in event-time order.

use std::collections::{HashMap, VecDeque};

use crate::model::{AnalysisMetric, AnalysisOptions, Spike};

use super::{MICROS, Reading};

#[derive(Debug, Clone, Default)]
struct SpikeState {
    /// Monotonic deque of (time, temp): the minimum of the window is at the front.
    window: VecDeque<(i64, f64)>,
    open: Option<Spike>,
}

#[derive(Debug, Clone, Default)]
struct SessionState {
    name: String,
    /// Gap threshold (µs) for the next interval, from `recent`.
    threshold: Option<i64>,
    last_t: Option<i64>,
    last_power: Option<(i64, f64)>,
    last_counter: Option<(i64, f64)>,
    /// The last intervals (µs), newest last, for the typical-interval estimate.
    recent: VecDeque<i64>,
    spike: SpikeState,
}

const RECENT_INTERVALS: usize = 16;

impl SessionState {
    /// Whether an interval of `dt` µs after this session's last sample is a gap.
    fn is_gap(&self, dt: i64, opts: &AnalysisOptions) -> bool {
        let max = (opts.max_interval_s * MICROS as f64) as i64;
        dt > max || self.threshold.is_some_and(|t| dt > t)
    }

    /// Records a (non-gap) interval and updates the threshold: `gap_factor` × the
    /// median of the recent intervals, at least `gap_floor`.
    fn record_interval(&mut self, dt: i64, opts: &AnalysisOptions) {
        self.recent.push_back(dt);
        if self.recent.len() > RECENT_INTERVALS {
            self.recent.pop_front();
        }
        let mut sorted = [0i64; RECENT_INTERVALS];
        let n = self.recent.len();
        for (slot, v) in sorted.iter_mut().zip(&self.recent) {
            *slot = *v;
        }
        sorted[..n].sort_unstable();
        let typical = sorted[n / 2];
        let threshold = (opts.gap_factor * typical as f64).max(opts.gap_floor_s * MICROS as f64);
        self.threshold = Some(threshold as i64);
    }
}

/// What one reading closed in its session: the interval since the session's previous
/// reading and the energy booked at it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Step {
    /// Index of the reading's session (dense, in order of first appearance).
    pub session: usize,
    /// Whether the interval since the session's previous reading is a gap.
    pub gap: bool,
    /// That interval, µs, when it is not a gap (`None` for a session's first reading).
    pub interval_us: Option<i64>,
    /// Trapezoid energy integrated at this reading, joules.
    pub trapezoid_j: Option<f64>,
    /// Energy-counter difference taken at this reading, joules.
    pub counter_j: Option<f64>,
    /// The counter went down since the session's previous counter reading (a reset,
    /// no difference taken).
    pub counter_reset: bool,
}

/// The sessions of one GPU's day and what their ordered readings add up to.
#[derive(Debug, Clone, Default)]
pub(super) struct Timeline {
    /// Trapezoid energy, joules.
    pub energy_j: f64,
    /// Seconds covered by integrated intervals.
    pub integrated_s: f64,
    /// Intervals left out as gaps (or across which power was missing).
    pub gaps: u64,
    /// Energy from counter differences, joules; `None` without a counter.
    pub counter_energy_j: Option<f64>,
    /// Trapezoid energy over exactly the intervals the counter covered, joules.
    pub trapezoid_on_counter_j: f64,
    /// Closed spikes.
    pub spikes: Vec<Spike>,
    sessions: Vec<SessionState>,
    session_index: HashMap<String, usize>,
    current_session: usize,
}

impl Timeline {
    /// Adds one reading of `session`: the gap test, the energy of the interval it
    /// ends and the spike search; returns what the reading closed.
    pub fn add(&mut self, session: &str, r: &Reading, opts: &AnalysisOptions) -> Step {
        // Rows come grouped by session: look the session up only when it changes.
        if self
            .sessions
            .get(self.current_session)
            .is_none_or(|s| s.name != session)
        {
            self.current_session = match self.session_index.get(session) {
                Some(i) => *i,
                None => {
                    self.sessions.push(SessionState {
                        name: session.to_string(),
                        ..SessionState::default()
                    });
                    self.session_index
                        .insert(session.to_string(), self.sessions.len() - 1);
                    self.sessions.len() - 1
                }
            };
        }
        let st = &mut self.sessions[self.current_session];
        let t = r.t_us;
        let mut step = Step {
            session: self.current_session,
            ..Step::default()
        };
        let mut gap = false;
        if let Some(last) = st.last_t {
            let dt = t - last;
            gap = st.is_gap(dt, opts);
            if gap {
                self.gaps += 1;
                st.last_power = None;
                st.last_counter = None;
            } else {
                st.record_interval(dt, opts);
                step.interval_us = Some(dt);
            }
        }
        step.gap = gap;
        st.last_t = Some(t);

        // Energy: trapezoids between consecutive power readings of the session, never
        // across a gap (a reading without power between them does not break the chain,
        // but the whole span must itself not be a gap).
        if let Some(p) = r.values[AnalysisMetric::Power] {
            if let Some((t0, p0)) = st.last_power {
                let dt = t - t0;
                if dt > 0 && !st.is_gap(dt, opts) {
                    let j = (p0 + p) / 2.0 * dt as f64 / MICROS as f64;
                    self.energy_j += j;
                    self.integrated_s += dt as f64 / MICROS as f64;
                    step.trapezoid_j = Some(j);
                    if let (Some(e), Some((tc, c0))) = (r.energy_mj, st.last_counter)
                        && tc == t0
                        && e >= c0
                    {
                        self.trapezoid_on_counter_j += j;
                    }
                } else if dt > 0 {
                    self.gaps += u64::from(!gap);
                }
            }
            st.last_power = Some((t, p));
        }
        if let Some(e) = r.energy_mj {
            if let Some((t0, e0)) = st.last_counter {
                let dt = t - t0;
                // A decrease is a counter reset (driver reload): no difference to take.
                if dt > 0 && !st.is_gap(dt, opts) {
                    if e >= e0 {
                        let j = (e - e0) / 1000.0;
                        *self.counter_energy_j.get_or_insert(0.0) += j;
                        step.counter_j = Some(j);
                    } else {
                        step.counter_reset = true;
                    }
                }
            }
            self.counter_energy_j.get_or_insert(0.0);
            st.last_counter = Some((t, e));
        }

        // Spikes on the GPU temperature.
        let spike = &mut st.spike;
        if gap {
            if let Some(s) = spike.open.take() {
                self.spikes.push(s);
            }
            spike.window.clear();
        }
        let Some(v) = r.values[AnalysisMetric::GpuTemp] else {
            return step;
        };
        let window_us = (opts.spike_window_s * MICROS as f64) as i64;
        while spike
            .window
            .front()
            .is_some_and(|(t0, _)| *t0 < t - window_us)
        {
            spike.window.pop_front();
        }
        if let Some(open) = spike.open.as_mut() {
            if v > open.start_c + opts.spike_rise_c {
                open.end_us = t;
                open.samples += 1;
                if v > open.peak_c {
                    open.peak_c = v;
                    open.peak_us = t;
                }
            } else if let Some(s) = spike.open.take() {
                self.spikes.push(s);
            }
        } else if let Some(&(t0, v0)) = spike.window.front()
            && v - v0 > opts.spike_rise_c
        {
            spike.open = Some(Spike {
                session: session.to_string(),
                start_us: t0,
                start_c: v0,
                peak_us: t,
                peak_c: v,
                end_us: t,
                samples: 1,
            });
        }
        // Keep the latest of equal minima: the rise starts at the last low reading.
        while spike.window.back().is_some_and(|(_, w)| *w >= v) {
            spike.window.pop_back();
        }
        spike.window.push_back((t, v));
        step
    }

    /// Closes open spikes (end of day) and returns every spike, sorted by start time.
    pub fn finish(mut self) -> Vec<Spike> {
        for st in &mut self.sessions {
            if let Some(s) = st.spike.open.take() {
                self.spikes.push(s);
            }
        }
        self.spikes
            .sort_by(|a, b| (a.start_us, &a.session).cmp(&(b.start_us, &b.session)));
        self.spikes
    }

    /// Adds another GPU's totals (energy, gaps; not sessions or spikes), for fleet
    /// figures.
    pub fn merge_totals(&mut self, o: &Timeline) {
        self.energy_j += o.energy_j;
        self.integrated_s += o.integrated_s;
        self.gaps += o.gaps;
        if let Some(c) = o.counter_energy_j {
            *self.counter_energy_j.get_or_insert(0.0) += c;
        }
        self.trapezoid_on_counter_j += o.trapezoid_on_counter_j;
    }
}
