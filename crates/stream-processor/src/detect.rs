//! The anomaly engine: the rules of [`crate::rules`] evaluated sample by sample per GPU,
//! each with a pending → firing → resolved lifecycle, plus missing-sample and lost-GPU
//! detection against the fleet's event-time watermark.
//!
//! Everything runs on event time, so replaying a log at any speed gives the same
//! anomalies, with the same ids, as living through it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gpustream::anomaly::{anomaly_event_id, anomaly_id};
use gpustream::{AnomalyEvent, AnomalyState, Metric, Sample, Severity, Source};

use crate::rules::{Direction, Rule, RuleKind, RuleSet};

/// The built-in rules (`rules.default.toml`): the classic thresholds with durations and
/// hysteresis, and every other detector.
pub fn default_rules() -> RuleSet {
    RuleSet::defaults()
}

const MICROS: f64 = 1e6;

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// What one rule concluded from one sample.
#[derive(Debug, Clone, Copy)]
struct Obs {
    /// The firing condition holds.
    active: bool,
    /// The clear condition holds (past the hysteresis).
    clear: bool,
    /// Value reported with a transition.
    value: f64,
    /// Level reported with a transition.
    threshold: Option<f64>,
    /// A second number for the message (EWMA mean, code, ...).
    note: f64,
    /// Severity for this episode when it differs from the rule's (critical XID codes).
    severity: Option<Severity>,
    /// Metric reported with a transition.
    metric: Option<&'static str>,
}

impl Obs {
    fn new(active: bool, clear: bool, value: f64, metric: &'static str) -> Obs {
        Obs {
            active,
            clear,
            value,
            threshold: None,
            note: f64::NAN,
            severity: None,
            metric: Some(metric),
        }
    }
}

/// Per-rule memory of one GPU, reset at each session.
#[derive(Debug, Clone)]
enum Memory {
    None,
    /// (event time µs, value) inside the rule's window.
    Window(VecDeque<(i64, f64)>),
    Ewma {
        n: u32,
        mean: f64,
        var: f64,
    },
    Stuck {
        value: f64,
        since: i64,
        /// (min, max) of each peer since `since`.
        peers: Vec<Option<(f64, f64)>>,
    },
    Counter {
        last: Option<f64>,
        increases: VecDeque<(i64, f64)>,
        last_event: Option<i64>,
    },
    Code {
        last_event: Option<i64>,
        code: i64,
    },
}

impl Memory {
    fn for_rule(rule: &Rule) -> Memory {
        match &rule.kind {
            RuleKind::Threshold { .. } => Memory::None,
            RuleKind::RateSpike { .. } | RuleKind::Throttle { .. } => {
                Memory::Window(VecDeque::new())
            }
            RuleKind::Deviation { .. } => Memory::Ewma {
                n: 0,
                mean: 0.0,
                var: 0.0,
            },
            RuleKind::Stuck { peers, .. } => Memory::Stuck {
                value: f64::NAN,
                since: 0,
                peers: vec![None; peers.len()],
            },
            RuleKind::Counter { .. } => Memory::Counter {
                last: None,
                increases: VecDeque::new(),
                last_event: None,
            },
            RuleKind::Code { .. } => Memory::Code {
                last_event: None,
                code: 0,
            },
        }
    }
}

#[derive(Debug, Clone)]
enum Phase {
    Quiet,
    Pending { since: i64 },
    Firing(Open),
}

#[derive(Debug, Clone)]
struct Open {
    anomaly_id: String,
    started_at: DateTime<Utc>,
    severity: Severity,
}

#[derive(Debug, Clone)]
struct Slot {
    phase: Phase,
    memory: Memory,
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
        back_from_silence(g, s, &self.rules.missing, out);
        if g.session != s.session {
            g.session.clone_from(&s.session);
            g.interval = None;
            for (slot, rule) in g.slots.iter_mut().zip(g.rules.iter()) {
                slot.memory = Memory::for_rule(rule);
                if matches!(slot.phase, Phase::Pending { .. }) {
                    slot.phase = Phase::Quiet;
                }
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
            if !rule.enabled {
                continue;
            }
            let Some(obs) = evaluate(rule, &mut slot.memory, s, t) else {
                continue;
            };
            step(rule, slot, &obs, s, t, out);
        }
        if t > self.newest {
            self.newest = t;
            if t >= self.next_check {
                self.next_check = t + 1_000_000;
                self.judge_silence(t, out);
            }
        }
    }

    fn new_gpu(&self, s: &Sample) -> GpuState {
        let rules: Arc<[Rule]> = if self.rules.has_override_for(&s.host, &s.gpu) {
            self.rules.for_gpu(&s.host, &s.gpu).into()
        } else {
            self.shared.clone()
        };
        let slots = rules
            .iter()
            .map(|r| Slot {
                phase: Phase::Quiet,
                memory: Memory::for_rule(r),
            })
            .collect();
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

    /// Fires "samples missing" / "GPU lost" for GPUs whose newest sample lags the fleet's
    /// watermark by more than their thresholds.
    ///
    /// The watermark is the upper median of the newest event times of the GPUs not yet
    /// lost: one GPU (or a minority of partitions) running ahead cannot make the others
    /// look silent, and a single GPU is never judged against itself.
    fn judge_silence(&mut self, now: i64, out: &mut Vec<AnomalyEvent>) {
        let m = &self.rules.missing;
        if !m.enabled {
            return;
        }
        let mut times: Vec<i64> = self
            .gpus
            .values()
            .flat_map(|h| h.values())
            .filter(|g| g.lost.is_none() && g.last_time != i64::MIN)
            .map(|g| g.last_time)
            .collect();
        if times.len() < 2 {
            return;
        }
        times.sort_unstable();
        let watermark = times[times.len() / 2].min(now);
        let default_interval = m.default_interval.as_secs_f64();
        for (host, gpus) in self.gpus.iter_mut() {
            for (gpu, g) in gpus.iter_mut() {
                if g.last_time == i64::MIN || g.last_time >= watermark {
                    continue;
                }
                let lag = (watermark - g.last_time) as f64 / MICROS;
                let interval = g.interval.unwrap_or(default_interval);
                let at = DateTime::<Utc>::from_timestamp_micros(watermark).unwrap_or_default();
                let checks = [
                    (
                        g.missing_on,
                        m.missing_after_intervals,
                        &m.missing_name,
                        m.missing_severity,
                        false,
                    ),
                    (
                        g.lost_on,
                        m.lost_after_intervals,
                        &m.lost_name,
                        m.lost_severity,
                        true,
                    ),
                ];
                for (on, intervals, name, severity, lost) in checks {
                    let open = if lost { &g.lost } else { &g.missing };
                    let limit = intervals * interval;
                    if !on || open.is_some() || lag <= limit {
                        continue;
                    }
                    let ep = Open {
                        anomaly_id: anomaly_id(name, host, gpu, &g.last_event_id),
                        started_at: at,
                        severity,
                    };
                    out.push(AnomalyEvent {
                        event_id: anomaly_event_id(&ep.anomaly_id, AnomalyState::Firing),
                        anomaly_id: ep.anomaly_id.clone(),
                        state: AnomalyState::Firing,
                        rule: name.clone(),
                        severity,
                        host: host.clone(),
                        gpu: gpu.clone(),
                        gpu_index: g.gpu_index,
                        source: g.source,
                        session: g.session.clone(),
                        event_time: at,
                        started_at: at,
                        metric: None,
                        value: Some(lag),
                        threshold: Some(limit),
                        message: format!(
                            "no sample for {lag:.0} s ({intervals} intervals of {interval:.1} s = {limit:.0} s) while the fleet reports"
                        ),
                        sample_event_id: g.last_event_id.clone(),
                    });
                    if lost {
                        g.lost = Some(ep);
                    } else {
                        g.missing = Some(ep);
                    }
                }
            }
        }
    }
}

/// Resolves open missing/lost episodes of a GPU that reports again.
fn back_from_silence(
    g: &mut GpuState,
    s: &Sample,
    names: &crate::rules::MissingRules,
    out: &mut Vec<AnomalyEvent>,
) {
    for lost in [false, true] {
        let ep = if lost {
            g.lost.take()
        } else {
            g.missing.take()
        };
        let Some(ep) = ep else { continue };
        let gap = if g.last_time == i64::MIN {
            0.0
        } else {
            (s.event_time.timestamp_micros() - g.last_time) as f64 / MICROS
        };
        out.push(AnomalyEvent {
            event_id: anomaly_event_id(&ep.anomaly_id, AnomalyState::Resolved),
            anomaly_id: ep.anomaly_id,
            state: AnomalyState::Resolved,
            rule: if lost {
                &names.lost_name
            } else {
                &names.missing_name
            }
            .clone(),
            severity: ep.severity,
            host: s.host.clone(),
            gpu: s.gpu.clone(),
            gpu_index: s.gpu_index,
            source: s.source,
            session: s.session.clone(),
            event_time: s.event_time,
            started_at: ep.started_at,
            metric: None,
            value: Some(gap),
            threshold: None,
            message: format!("samples again after a gap of {gap:.0} s"),
            sample_event_id: s.event_id.clone(),
        });
    }
}

/// Advances a rule's lifecycle with one observation.
fn step(rule: &Rule, slot: &mut Slot, obs: &Obs, s: &Sample, t: i64, out: &mut Vec<AnomalyEvent>) {
    let fire = match &slot.phase {
        Phase::Quiet if obs.active => {
            if rule.for_.is_zero() {
                true
            } else {
                slot.phase = Phase::Pending { since: t };
                false
            }
        }
        Phase::Quiet => false,
        // Hysteresis applies to the wait too: a reading between the clear level and the
        // level (a load of 94 % against 95 %) neither fires nor restarts the wait; only
        // reaching the clear level does.
        Phase::Pending { .. } if obs.clear && !obs.active => {
            slot.phase = Phase::Quiet;
            false
        }
        Phase::Pending { since } => obs.active && t - since >= micros(rule.for_),
        Phase::Firing(_) => {
            if obs.clear
                && !obs.active
                && let Phase::Firing(ep) = std::mem::replace(&mut slot.phase, Phase::Quiet)
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
        slot.phase = Phase::Firing(ep);
    }
}

fn event(rule: &Rule, ep: &Open, state: AnomalyState, obs: &Obs, s: &Sample) -> AnomalyEvent {
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
        message: message(rule, state, obs),
        sample_event_id: s.event_id.clone(),
    }
}

fn message(rule: &Rule, state: AnomalyState, o: &Obs) -> String {
    let firing = state == AnomalyState::Firing;
    let v = o.value;
    match &rule.kind {
        RuleKind::Threshold {
            signal,
            direction,
            level,
            clear,
            ..
        } => {
            let (unit, name) = (signal.unit(), signal.name());
            match (firing, direction) {
                (true, Direction::Above) => {
                    format!("{name} {v} {unit} above {level} for {:?}", rule.for_)
                }
                (true, Direction::Below) => {
                    format!("{name} {v} {unit} below {level} for {:?}", rule.for_)
                }
                (false, Direction::Above) => format!("{name} {v} {unit}, back to or below {clear}"),
                (false, Direction::Below) => format!("{name} {v} {unit}, back to or above {clear}"),
            }
        }
        RuleKind::RateSpike { signal, within, .. } => format!(
            "{} rose {v:.1} {} within {within:?}{}",
            signal.name(),
            signal.unit(),
            if firing { "" } else { " (settled)" }
        ),
        RuleKind::Deviation { signal, .. } => format!(
            "{} {v:.1} {} is {:.1} standard deviations from its moving mean{}",
            signal.name(),
            signal.unit(),
            o.note,
            if firing { "" } else { " (back to normal)" }
        ),
        RuleKind::Throttle { .. } => {
            if !firing {
                "no longer throttled".to_string()
            } else if o.metric == Some(Metric::CoreClock.column())
                || o.metric == Some(Metric::SmClock.column())
            {
                format!(
                    "clock {v} MHz fell below its recent maximum {:.0} MHz at {:.1} C",
                    o.threshold.unwrap_or(f64::NAN),
                    o.note
                )
            } else {
                format!(
                    "throttled: {} = {} ({})",
                    o.metric.unwrap_or("flags"),
                    v as u32,
                    gpustream::metric::perfcap_reasons(v as u32).join(", ")
                )
            }
        }
        RuleKind::Stuck { signal, .. } => {
            if firing {
                format!(
                    "{} frozen at {v} {} for {:.0} s while its peers moved",
                    signal.name(),
                    signal.unit(),
                    o.note
                )
            } else {
                format!("{} moves again ({v} {})", signal.name(), signal.unit())
            }
        }
        RuleKind::Counter { signal, within, .. } => {
            if firing {
                format!("{} grew by {v} within {within:?}", signal.name())
            } else {
                format!("{} stopped growing", signal.name())
            }
        }
        RuleKind::Code { signal, .. } => {
            if firing {
                format!("{} {}", signal.name(), o.note as i64)
            } else {
                format!("no {} since {:?}", signal.name(), rule_clear_after(rule))
            }
        }
    }
}

fn rule_clear_after(rule: &Rule) -> std::time::Duration {
    match &rule.kind {
        RuleKind::Code { clear_after, .. } | RuleKind::Counter { clear_after, .. } => *clear_after,
        _ => std::time::Duration::ZERO,
    }
}

/// Evaluates one rule on one sample; `None` when the sample says nothing about it.
fn evaluate(rule: &Rule, mem: &mut Memory, s: &Sample, t: i64) -> Option<Obs> {
    match (&rule.kind, mem) {
        (
            RuleKind::Threshold {
                signal,
                direction,
                level,
                clear,
                guards,
            },
            _,
        ) => {
            let v = signal.read(s)?;
            let (active, cleared) = match direction {
                Direction::Above => (v > *level, v <= *clear),
                Direction::Below => (v < *level, v >= *clear),
            };
            let guarded = guards.iter().all(|(g, dir, lvl)| {
                g.read(s).is_some_and(|x| match dir {
                    Direction::Above => x > *lvl,
                    Direction::Below => x < *lvl,
                })
            });
            let (active, cleared) = (active && guarded, cleared || !guarded);
            let mut o = Obs::new(active, cleared, v, signal.name());
            o.threshold = Some(*level);
            Some(o)
        }
        (
            RuleKind::RateSpike {
                signal,
                rise,
                within,
                clear_rise,
            },
            Memory::Window(w),
        ) => {
            let v = signal.read(s)?;
            let span = micros(*within);
            while w.front().is_some_and(|(ft, _)| t - ft > span) {
                w.pop_front();
            }
            // A monotonic queue: the front is the window's minimum, O(1) per sample.
            while w.back().is_some_and(|(_, x)| *x >= v) {
                w.pop_back();
            }
            w.push_back((t, v));
            let low = w.front().map_or(v, |(_, x)| *x);
            let r = v - low;
            let mut o = Obs::new(r >= *rise, r < *clear_rise, r, signal.name());
            o.threshold = Some(*rise);
            Some(o)
        }
        (
            RuleKind::Deviation {
                signal,
                alpha,
                z,
                clear_z,
                min_std,
                warmup,
            },
            Memory::Ewma { n, mean, var },
        ) => {
            let v = signal.read(s)?;
            if *n == 0 {
                *mean = v;
                *var = 0.0;
            }
            let diff = v - *mean;
            let score = diff.abs() / var.sqrt().max(*min_std);
            let m0 = *mean;
            *mean += alpha * diff;
            *var = (1.0 - alpha) * (*var + alpha * diff * diff);
            *n = n.saturating_add(1);
            let warm = *n > *warmup;
            let mut o = Obs::new(warm && score > *z, score < *clear_z, v, signal.name());
            o.threshold = Some(m0);
            o.note = score;
            Some(o)
        }
        (
            RuleKind::Throttle {
                perf_cap_bits,
                throttle_reason_bits,
                temp_limit,
                clock_drop_pct,
                clock_window,
            },
            Memory::Window(w),
        ) => {
            let perf = s.reading(Metric::PerfCap).map(|v| v as u32);
            let reasons = s.reading(Metric::ThrottleReasons).map(|v| v as u32);
            if let Some(p) = perf.filter(|p| p & perf_cap_bits != 0) {
                return Some(Obs::new(
                    true,
                    false,
                    f64::from(p),
                    Metric::PerfCap.column(),
                ));
            }
            if let Some(r) = reasons.filter(|r| r & throttle_reason_bits != 0) {
                return Some(Obs::new(
                    true,
                    false,
                    f64::from(r),
                    Metric::ThrottleReasons.column(),
                ));
            }
            let clock_metric = if s.reading(Metric::CoreClock).is_some() {
                Metric::CoreClock
            } else {
                Metric::SmClock
            };
            let (Some(limit), Some(clock), Some(temp)) = (
                temp_limit,
                s.reading(clock_metric),
                s.reading(Metric::GpuTemp),
            ) else {
                return (perf.is_some() || reasons.is_some())
                    .then(|| Obs::new(false, true, 0.0, Metric::PerfCap.column()));
            };
            let span = micros(*clock_window);
            while w.front().is_some_and(|(ft, _)| t - ft > span) {
                w.pop_front();
            }
            // A monotonic queue: the front is the window's maximum.
            while w.back().is_some_and(|(_, c)| *c <= clock) {
                w.pop_back();
            }
            w.push_back((t, clock));
            let top = w.front().map_or(clock, |(_, c)| *c);
            // Clocks also fall when a job ends while the chip is still hot: only a GPU
            // still under load (or one whose load is unknown) counts.
            let loaded = s.reading(Metric::GpuLoad).is_none_or(|l| l >= 50.0);
            let dropped = temp >= *limit && loaded && clock < top * (1.0 - clock_drop_pct / 100.0);
            let mut o = Obs::new(dropped, !dropped, clock, clock_metric.column());
            o.threshold = Some(top);
            o.note = temp;
            Some(o)
        }
        (
            RuleKind::Stuck {
                signal,
                flat_for,
                peers,
            },
            Memory::Stuck {
                value,
                since,
                peers: ranges,
            },
        ) => {
            let v = signal.read(s)?;
            if v != *value {
                *value = v;
                *since = t;
                for (r, (p, _)) in ranges.iter_mut().zip(peers.iter()) {
                    *r = p.read(s).map(|x| (x, x));
                }
                return Some(Obs::new(false, true, v, signal.name()));
            }
            let mut moved = false;
            for (r, (p, need)) in ranges.iter_mut().zip(peers.iter()) {
                if let Some(x) = p.read(s) {
                    let (lo, hi) = r.get_or_insert((x, x));
                    *lo = lo.min(x);
                    *hi = hi.max(x);
                    moved |= *hi - *lo >= *need;
                }
            }
            let flat = (t - *since) as f64 / MICROS;
            let mut o = Obs::new(
                moved && t - *since >= micros(*flat_for),
                false,
                v,
                signal.name(),
            );
            o.note = flat;
            Some(o)
        }
        (
            RuleKind::Counter {
                signal,
                increase,
                within,
                clear_after,
            },
            Memory::Counter {
                last,
                increases,
                last_event,
            },
        ) => {
            let span = micros(*within);
            while increases.front().is_some_and(|(ft, _)| t - ft > span) {
                increases.pop_front();
            }
            if let Some(v) = signal.read(s) {
                // A counter that went down was reset (driver reload): a new baseline.
                if let Some(prev) = *last
                    && v > prev
                {
                    increases.push_back((t, v - prev));
                }
                *last = Some(v);
            }
            let grown: f64 = increases.iter().map(|(_, d)| d).sum();
            // Only a sample that grew the counter keeps the episode going: `clear_after`
            // counts from the last growth.
            let grew_now = increases.back().is_some_and(|(ft, _)| *ft == t);
            let active = grew_now && grown >= *increase;
            if active {
                *last_event = Some(t);
            }
            let quiet = last_event.is_none_or(|e| t - e >= micros(*clear_after));
            let mut o = Obs::new(active, quiet, grown, signal.name());
            o.threshold = Some(*increase);
            Some(o)
        }
        (
            RuleKind::Code {
                signal,
                ignore,
                critical,
                clear_after,
            },
            Memory::Code { last_event, code },
        ) => {
            let c = signal.read(s).map_or(0, |v| v as i64);
            let active = c != 0 && !ignore.contains(&c);
            if active {
                *last_event = Some(t);
                *code = c;
            }
            let quiet = last_event.is_none_or(|e| t - e >= micros(*clear_after));
            let mut o = Obs::new(active, quiet, *code as f64, signal.name());
            o.note = *code as f64;
            if critical.contains(code) {
                o.severity = Some(Severity::Critical);
            }
            Some(o)
        }
        // A memory that does not match its rule cannot happen (both come from the rule).
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_sample as sample;

    fn rules(toml: &str) -> RuleSet {
        RuleSet::from_toml(toml, "test").expect("valid rules")
    }

    fn run(d: &mut Detector, samples: &[Sample]) -> Vec<AnomalyEvent> {
        let mut out = vec![];
        for s in samples {
            d.observe(s, &mut out);
        }
        out
    }

    fn with(mut s: Sample, m: Metric, v: f64) -> Sample {
        s.metrics.set(m, v);
        s
    }

    fn transitions(out: &[AnomalyEvent]) -> Vec<(&str, AnomalyState, &str)> {
        out.iter()
            .map(|e| (e.rule.as_str(), e.state, e.sample_event_id.as_str()))
            .collect()
    }

    const PLAIN: &str = "[[threshold]]\nname = \"t\"\nmetric = \"gpu_temp_c\"\nabove = 85\n";

    #[test]
    fn fires_once_and_resolves_once() {
        let mut d = Detector::new(rules(PLAIN));
        let temps = [80.0, 86.0, 90.0, 86.0, 85.0, 84.0, 91.0];
        let samples: Vec<_> = temps
            .iter()
            .enumerate()
            .map(|(i, t)| sample(i as i64, *t))
            .collect();
        let out = run(&mut d, &samples);
        assert_eq!(
            transitions(&out),
            vec![
                ("t", AnomalyState::Firing, "e1"),
                ("t", AnomalyState::Resolved, "e4"),
                ("t", AnomalyState::Firing, "e6")
            ]
        );
        assert_eq!(out[0].anomaly_id, out[1].anomaly_id);
        assert_ne!(out[0].event_id, out[1].event_id);
        assert_ne!(out[0].anomaly_id, out[2].anomaly_id);
        // Same input, same ids: a replay reproduces the episode.
        let again = run(&mut Detector::new(rules(PLAIN)), &samples);
        assert_eq!(out, again);
    }

    #[test]
    fn for_duration_and_hysteresis() {
        let toml = "[[threshold]]\nname = \"t\"\nmetric = \"gpu_temp_c\"\nabove = 85\nclear = 80\nfor = \"3s\"\n";
        let mut d = Detector::new(rules(toml));
        // 86 for 2 s only (too short) then 79 (clear: the wait restarts), then 86+ for 3 s
        // with a dip to 84 (between the levels: the wait goes on), hovering 84-86 (not
        // clear), 79.
        let temps = [
            86.0, 86.0, 79.0, 86.0, 87.0, 84.0, 88.0, 84.0, 86.0, 83.0, 79.0,
        ];
        let samples: Vec<_> = temps
            .iter()
            .enumerate()
            .map(|(i, t)| sample(i as i64, *t))
            .collect();
        let out = run(&mut d, &samples);
        assert_eq!(
            transitions(&out),
            vec![
                ("t", AnomalyState::Firing, "e6"),
                ("t", AnomalyState::Resolved, "e10")
            ]
        );
        assert_eq!(out[0].started_at, samples[6].event_time);
    }

    #[test]
    fn unsupported_sensor_never_fires() {
        let mut d = Detector::new(default_rules());
        let samples: Vec<_> = (0..100)
            .map(|i| {
                let mut s = sample(i, 99.0 + i as f64);
                s.unsupported = vec![Metric::GpuTemp];
                s
            })
            .collect();
        assert!(run(&mut d, &samples).is_empty());
    }

    #[test]
    fn defaults_fire_warning_then_critical_temperature() {
        let mut d = Detector::new(default_rules());
        let samples: Vec<_> = (0..40)
            .map(|i| sample(i, if i < 5 { 70.0 } else { 92.0 }))
            .collect();
        let out = run(&mut d, &samples);
        let firing: Vec<_> = out
            .iter()
            .filter(|e| e.state == AnomalyState::Firing)
            .map(|e| (e.rule.as_str(), e.severity))
            .collect();
        assert!(
            firing.contains(&("gpu_temp_critical", Severity::Critical)),
            "{firing:?}"
        );
        assert!(
            firing.contains(&("gpu_temp_high", Severity::Warning)),
            "{firing:?}"
        );
        assert!(
            firing.contains(&("gpu_temp_spike", Severity::Warning)),
            "{firing:?}"
        );
        let at = |r: &str| {
            out.iter()
                .find(|e| e.rule == r)
                .map(|e| e.event_time.timestamp() - samples[5].event_time.timestamp())
        };
        assert_eq!(at("gpu_temp_critical"), Some(5));
        assert_eq!(at("gpu_temp_high"), Some(10));
    }

    #[test]
    fn rate_spike_needs_one_session() {
        let toml = "[[rate_spike]]\nname = \"spike\"\nmetric = \"gpu_temp_c\"\nrise = 10\nwithin = \"10s\"\n";
        let mut d = Detector::new(rules(toml));
        let mut samples: Vec<_> = (0..5).map(|i| sample(i, 50.0)).collect();
        // A new session starts hotter: not a spike.
        let mut s = sample(5, 65.0);
        s.session = "s2".into();
        samples.push(s);
        assert!(run(&mut d, &samples).is_empty());
        // Slow rise: +1 °C/s does not reach +10 within 10 s... exactly 10 does.
        let mut d = Detector::new(rules(toml));
        let slow: Vec<_> = (0..20).map(|i| sample(i, 50.0 + i as f64 * 0.9)).collect();
        assert!(run(&mut d, &slow).is_empty());
        let mut d = Detector::new(rules(toml));
        let fast: Vec<_> = (0..30)
            .map(|i| {
                sample(
                    i,
                    if (5..12).contains(&i) {
                        50.0 + (i - 4) as f64 * 2.0
                    } else if i >= 12 {
                        64.0
                    } else {
                        50.0
                    },
                )
            })
            .collect();
        let out = run(&mut d, &fast);
        assert_eq!(
            transitions(&out),
            vec![
                ("spike", AnomalyState::Firing, "e9"),
                ("spike", AnomalyState::Resolved, "e19")
            ]
        );
    }

    #[test]
    fn deviation_fires_on_a_jump_after_warmup_only() {
        let toml = "[[deviation]]\nname = \"dev\"\nmetric = \"gpu_temp_c\"\nalpha = 0.05\nz = 5\nmin_std = 1\nwarmup = 30\n";
        let mut d = Detector::new(rules(toml));
        let noise = |i: i64| 60.0 + ((i * 7919) % 5) as f64 * 0.3;
        let mut samples: Vec<_> = (0..10).map(|i| sample(i, noise(i))).collect();
        samples.push(sample(10, 80.0)); // during warm-up: ignored
        samples.extend((11..100).map(|i| sample(i, noise(i))));
        samples.push(sample(100, 75.0));
        let out = run(&mut d, &samples);
        assert_eq!(
            transitions(&out).first(),
            Some(&("dev", AnomalyState::Firing, "e100")),
            "{out:?}"
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn throttling_from_flags_and_from_falling_clocks() {
        let mut d = Detector::new(default_rules());
        let mut samples = vec![];
        for i in 0..20 {
            let s = with(
                with(sample(i, 70.0), Metric::CoreClock, 1800.0),
                Metric::GpuLoad,
                100.0,
            );
            samples.push(with(
                s,
                Metric::PerfCap,
                if (5..12).contains(&i) { 2.0 } else { 4.0 },
            ));
        }
        let out: Vec<_> = run(&mut d, &samples)
            .into_iter()
            .filter(|e| e.rule == "thermal_throttling")
            .collect();
        assert_eq!(
            transitions(&out),
            vec![
                ("thermal_throttling", AnomalyState::Firing, "e10"),
                ("thermal_throttling", AnomalyState::Resolved, "e12")
            ]
        );
        // No flags at all (NVML without reasons): hot and clocks down 20 % under load.
        let mut d = Detector::new(default_rules());
        let samples: Vec<_> = (0..30)
            .map(|i| {
                let s = with(
                    sample(i, if i < 10 { 80.0 } else { 88.0 }),
                    Metric::GpuLoad,
                    99.0,
                );
                with(s, Metric::CoreClock, if i < 12 { 1800.0 } else { 1400.0 })
            })
            .collect();
        let out: Vec<_> = run(&mut d, &samples)
            .into_iter()
            .filter(|e| e.rule == "thermal_throttling")
            .collect();
        assert_eq!(
            transitions(&out),
            vec![("thermal_throttling", AnomalyState::Firing, "e17")]
        );
    }

    #[test]
    fn stuck_sensor_needs_moving_peers() {
        let toml = "[[stuck]]\nname = \"stuck\"\nmetric = \"gpu_temp_c\"\nflat_for = \"30s\"\npeers = { gpu_load_pct = 40 }\n";
        // Flat temperature with flat load: an idle GPU, not a stuck sensor.
        let mut d = Detector::new(rules(toml));
        let idle: Vec<_> = (0..100)
            .map(|i| with(sample(i, 40.0), Metric::GpuLoad, 1.0))
            .collect();
        assert!(run(&mut d, &idle).is_empty());
        let mut d = Detector::new(rules(toml));
        let stuck: Vec<_> = (0..100)
            .map(|i| {
                let load = if (i / 10) % 2 == 0 { 10.0 } else { 90.0 };
                with(
                    sample(i, if i < 70 { 63.0 } else { 64.0 + i as f64 }),
                    Metric::GpuLoad,
                    load,
                )
            })
            .collect();
        let out = run(&mut d, &stuck);
        assert_eq!(
            transitions(&out),
            vec![
                ("stuck", AnomalyState::Firing, "e30"),
                ("stuck", AnomalyState::Resolved, "e70")
            ]
        );
    }

    #[test]
    fn ecc_counters_and_xid_codes() {
        let mut d = Detector::new(default_rules());
        let mut samples = vec![];
        for i in 0..400 {
            let s = with(
                sample(i, 60.0),
                Metric::EccUncorrected,
                if i < 50 { 3.0 } else { 4.0 },
            );
            let s = with(
                s,
                Metric::EccCorrected,
                100.0
                    + if i >= 200 {
                        5.0 * (i - 199) as f64
                    } else {
                        0.0
                    },
            );
            let s = if i == 300 {
                with(s, Metric::Xid, 79.0)
            } else {
                s
            };
            samples.push(s);
        }
        let out = run(&mut d, &samples);
        let got: Vec<_> = out
            .iter()
            .map(|e| {
                (
                    e.rule.as_str(),
                    e.state,
                    e.severity,
                    e.sample_event_id.as_str(),
                )
            })
            .collect();
        assert!(
            got.contains(&(
                "ecc_uncorrected",
                AnomalyState::Firing,
                Severity::Critical,
                "e50"
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "ecc_uncorrected",
                AnomalyState::Resolved,
                Severity::Critical,
                "e350"
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "ecc_corrected_burst",
                AnomalyState::Firing,
                Severity::Warning,
                "e201"
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "xid_error",
                AnomalyState::Firing,
                Severity::Critical,
                "e300"
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "xid_error",
                AnomalyState::Resolved,
                Severity::Critical,
                "e360"
            )),
            "{got:?}"
        );
    }

    #[test]
    fn missing_and_lost_against_the_fleet_watermark() {
        let mut d = Detector::new(default_rules());
        let mut out = vec![];
        // Three GPUs at 1 s; gpu "b" stops at t=10 and comes back at t=100.
        for i in 0..200 {
            for gpu in ["a", "b", "c"] {
                if gpu == "b" && (10..100).contains(&i) {
                    continue;
                }
                let mut s = sample(i, 50.0);
                s.gpu = gpu.into();
                s.event_id = format!("{gpu}{i}");
                d.observe(&s, &mut out);
            }
        }
        let got: Vec<_> = out
            .iter()
            .map(|e| {
                (
                    e.rule.as_str(),
                    e.gpu.as_str(),
                    e.state,
                    e.event_time.timestamp() - 1_700_000_040,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("samples_missing", "b", AnomalyState::Firing, 13),
                ("gpu_lost", "b", AnomalyState::Firing, 70),
                ("samples_missing", "b", AnomalyState::Resolved, 100),
                ("gpu_lost", "b", AnomalyState::Resolved, 100),
            ]
        );
        assert_eq!(out[0].anomaly_id, out[2].anomaly_id);
        assert_eq!(out[1].anomaly_id, out[3].anomaly_id);
    }

    #[test]
    fn a_single_gpu_is_never_judged_missing() {
        let mut d = Detector::new(default_rules());
        let samples: Vec<_> = [0, 1, 2, 500, 501]
            .iter()
            .map(|i| sample(*i, 50.0))
            .collect();
        assert!(run(&mut d, &samples).is_empty());
    }

    #[test]
    fn overrides_change_one_gpu_only() {
        let toml =
            format!("{PLAIN}[[override]]\nhost = \"h\"\ngpu = \"g2\"\nrule = \"t\"\nabove = 95\n");
        let mut d = Detector::new(rules(&toml));
        let mut out = vec![];
        for gpu in ["g", "g2"] {
            let mut s = sample(0, 90.0);
            s.gpu = gpu.into();
            d.observe(&s, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].gpu, "g");
    }

    #[test]
    fn memory_percent_needs_total() {
        let mut d = Detector::new(default_rules());
        let used_only: Vec<_> = (0..100)
            .map(|i| with(sample(i, 50.0), Metric::MemoryUsed, 1e6))
            .collect();
        assert!(run(&mut d, &used_only).is_empty());
        let full: Vec<_> = (100..200)
            .map(|i| {
                with(
                    with(sample(i, 50.0), Metric::MemoryUsed, 7900.0),
                    Metric::MemoryTotal,
                    8000.0,
                )
            })
            .collect();
        let out = run(&mut d, &full);
        assert_eq!(
            transitions(&out),
            vec![("memory_high", AnomalyState::Firing, "e130")]
        );
    }
}
