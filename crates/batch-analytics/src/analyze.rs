//! The nightly computations, as streaming accumulators fed with one GPU's samples in
//! event-time order.
//!
//! Everything here is plain Rust over already-decoded values, so it can be tested with
//! hand-made numbers; [`crate::nightly`] feeds it from the lake. Memory per GPU is
//! constant except for the exact percentiles, which keep one counter per *distinct*
//! reading (sensors report a few hundred to a few thousand distinct values a day).

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

/// The main metrics: summarised in `daily_gpu`, correlated pairwise in `correlations`.
/// `power_w` is the board power where usable, else the chip power.
pub const MAIN_METRICS: [&str; 9] = [
    "gpu_temp_c",
    "hot_spot_c",
    "memory_temp_c",
    "cpu_temp_c",
    "gpu_load_pct",
    "power_w",
    "memory_used_mb",
    "core_clock_mhz",
    "memory_clock_mhz",
];

/// Index of `gpu_temp_c` in [`MAIN_METRICS`].
pub const TEMP: usize = 0;
/// Index of `gpu_load_pct` in [`MAIN_METRICS`].
pub const LOAD: usize = 4;
/// Index of `power_w` in [`MAIN_METRICS`].
pub const POWER: usize = 5;
/// Index of `core_clock_mhz` in [`MAIN_METRICS`].
pub const CORE_CLOCK: usize = 7;

/// Number of main metrics.
pub const N_METRICS: usize = MAIN_METRICS.len();

/// Throttle reasons reported as `throttled_<reason>_share`, in column order.
pub const THROTTLE_REASONS: [&str; 5] = ["power", "thermal", "voltage", "hw_slowdown", "other"];

/// Load states of the `correlations` table, in row order.
pub const LOAD_STATES: [&str; 3] = ["all", "idle", "busy"];

/// Minimum number of paired samples for a correlation.
pub const MIN_CORRELATION_PAIRS: u64 = 3;

/// Number of points of the report's daily curves (1-minute buckets of the UTC day).
pub const CURVE_BUCKETS: usize = 1440;

const MICROS: i64 = 1_000_000;

/// Tunables of the nightly analyses. [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisOptions {
    /// Timezone of the `hourly` table's hour of day.
    pub timezone: Tz,
    /// A sample is idle when its load is below this (percent). Default 10.
    pub idle_below_pct: f64,
    /// A sample is busy when its load is at least this (percent). Default 70.
    pub busy_from_pct: f64,
    /// A spike is a rise of more than this many °C ... Default 10.
    pub spike_rise_c: f64,
    /// ... within this many seconds, inside one session and without a gap. Default 30.
    pub spike_window_s: f64,
    /// An interval longer than `gap_factor` × the session's typical interval (median
    /// of its last 16 intervals) is a gap... Default 3.
    pub gap_factor: f64,
    /// ... but never one shorter than this many seconds (timestamps with 1-second
    /// resolution make 0 s and 2 s intervals out of a 1 s rhythm). Default 2.
    pub gap_floor_s: f64,
    /// An interval longer than this many seconds is always a gap. Default 120.
    pub max_interval_s: f64,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            timezone: Tz::UTC,
            idle_below_pct: 10.0,
            busy_from_pct: 70.0,
            spike_rise_c: 10.0,
            spike_window_s: 30.0,
            gap_factor: 3.0,
            gap_floor_s: 2.0,
            max_interval_s: 120.0,
        }
    }
}

/// One sample as the accumulators see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Event time, µs since the Unix epoch (UTC).
    pub t_us: i64,
    /// Usable values of [`MAIN_METRICS`], in that order.
    pub values: [Option<f64>; N_METRICS],
    /// Energy counter (mJ), if the GPU reports one.
    pub energy_mj: Option<f64>,
    /// GPU-Z PerfCap bitmask.
    pub perf_cap: Option<i64>,
    /// NVML clock-throttle reason bitmask.
    pub throttle_reasons: Option<i64>,
}

/// Exact summary statistics of one metric.
#[derive(Debug, Clone, Default)]
pub struct MetricStats {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    /// Distinct value (as bits) → occurrences: exact percentiles without keeping
    /// every sample.
    counts: HashMap<u64, u64>,
    /// The current run of equal readings, not yet in `counts` (sensors repeat
    /// themselves, so most samples cost no hash lookup).
    run: (u64, u64),
}

/// The statistics [`MetricStats::summary`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
    /// Sample standard deviation (n − 1); `None` for a single value.
    pub stddev: Option<f64>,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl MetricStats {
    /// Adds a value (NaN is ignored: it is not a reading).
    pub fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        // -0.0 and 0.0 are one reading.
        let v = if v == 0.0 { 0.0 } else { v };
        self.n += 1;
        if self.n == 1 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        // Welford: stable for long days of nearly constant readings.
        let delta = v - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (v - self.mean);
        let bits = v.to_bits();
        if self.run.1 > 0 && self.run.0 == bits {
            self.run.1 += 1;
        } else {
            self.flush_run();
            self.run = (bits, 1);
        }
    }

    fn flush_run(&mut self) {
        if self.run.1 > 0 {
            *self.counts.entry(self.run.0).or_insert(0) += self.run.1;
            self.run = (0, 0);
        }
    }

    /// Adds everything `other` holds (Chan et al.'s parallel variance update).
    pub fn merge(&mut self, other: &MetricStats) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            self.flush_run();
            return;
        }
        self.flush_run();
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 + delta * delta * (self.n as f64 * other.n as f64) / n as f64;
        self.mean += delta * other.n as f64 / n as f64;
        self.n = n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (k, c) in other
            .counts
            .iter()
            .chain(std::iter::once((&other.run.0, &other.run.1)))
        {
            if *c > 0 {
                *self.counts.entry(*k).or_insert(0) += c;
            }
        }
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The statistics, or `None` without values.
    ///
    /// Percentiles interpolate linearly between the two nearest ranks (`p × (n − 1)`),
    /// the definition of numpy's default, Spark's `percentile` and SQL's
    /// `percentile_cont`.
    pub fn summary(&self) -> Option<Summary> {
        if self.n == 0 {
            return None;
        }
        let mut counts = self.counts.clone();
        if self.run.1 > 0 {
            *counts.entry(self.run.0).or_insert(0) += self.run.1;
        }
        let mut sorted: Vec<(f64, u64)> = counts
            .iter()
            .map(|(k, c)| (f64::from_bits(*k), *c))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let pct = |p: f64| percentile(&sorted, self.n, p);
        Some(Summary {
            count: self.n,
            min: self.min,
            mean: self.mean,
            max: self.max,
            stddev: (self.n > 1).then(|| (self.m2.max(0.0) / (self.n - 1) as f64).sqrt()),
            p50: pct(0.50),
            p95: pct(0.95),
            p99: pct(0.99),
        })
    }
}

/// Percentile `p` of `n` values given as sorted (value, occurrences).
fn percentile(sorted: &[(f64, u64)], n: u64, p: f64) -> f64 {
    let pos = p * (n - 1) as f64;
    let lo = pos.floor() as u64;
    let frac = pos - lo as f64;
    let lo_v = value_at_rank(sorted, lo);
    if frac == 0.0 {
        return lo_v;
    }
    let hi_v = value_at_rank(sorted, (lo + 1).min(n - 1));
    lo_v + frac * (hi_v - lo_v)
}

fn value_at_rank(sorted: &[(f64, u64)], rank: u64) -> f64 {
    let mut seen = 0u64;
    for (v, c) in sorted {
        seen += c;
        if rank < seen {
            return *v;
        }
    }
    sorted.last().map(|(v, _)| *v).unwrap_or(f64::NAN)
}

/// Streaming Pearson correlation of two series, from sums of values shifted by the
/// first pair (so a constant series sums to exactly 0 and large offsets such as
/// clocks in MHz do not cancel catastrophically).
#[derive(Debug, Clone, Copy, Default)]
pub struct PairStats {
    n: u64,
    kx: f64,
    ky: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

/// A correlation, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Correlation {
    /// Pearson's r.
    R(f64),
    /// Not computed, with the reason in words.
    Skipped(String),
}

impl PairStats {
    /// Adds one pair of readings taken at the same instant.
    #[inline]
    pub fn add(&mut self, x: f64, y: f64) {
        if self.n == 0 {
            self.kx = x;
            self.ky = y;
        }
        self.n += 1;
        let (x, y) = (x - self.kx, y - self.ky);
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.syy += y * y;
        self.sxy += x * y;
    }

    /// Number of pairs.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Pearson's r, or why it is not defined for these pairs.
    pub fn correlation(&self, a: &str, b: &str) -> Correlation {
        if self.n == 0 {
            return Correlation::Skipped(format!("no samples with both {a} and {b}"));
        }
        if self.n < MIN_CORRELATION_PAIRS {
            return Correlation::Skipped(format!(
                "only {} sample(s) with both {a} and {b} (need {MIN_CORRELATION_PAIRS})",
                self.n
            ));
        }
        let n = self.n as f64;
        let vx = n * self.sxx - self.sx * self.sx;
        let vy = n * self.syy - self.sy * self.sy;
        // Exactly zero for a constant series: every shifted value is 0.
        let (cx, cy) = (self.sxx == 0.0 || vx <= 0.0, self.syy == 0.0 || vy <= 0.0);
        match (cx, cy) {
            (true, true) => {
                return Correlation::Skipped(format!(
                    "{a} and {b} are constant ({} and {})",
                    self.kx, self.ky
                ));
            }
            (true, false) => {
                return Correlation::Skipped(format!("{a} is constant ({})", self.kx));
            }
            (false, true) => {
                return Correlation::Skipped(format!("{b} is constant ({})", self.ky));
            }
            (false, false) => {}
        }
        let r = (n * self.sxy - self.sx * self.sy) / (vx.sqrt() * vy.sqrt());
        Correlation::R(r.clamp(-1.0, 1.0))
    }
}

/// The unordered pairs `(i, j)`, `i < j`, of [`MAIN_METRICS`], in row order.
pub fn metric_pairs() -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for i in 0..N_METRICS {
        for j in i + 1..N_METRICS {
            pairs.push((i, j));
        }
    }
    pairs
}

/// The 36 pair accumulators of one load state.
#[derive(Debug, Clone)]
pub struct CorrelationMatrix {
    /// One per [`metric_pairs`] entry.
    pub pairs: Vec<PairStats>,
}

impl Default for CorrelationMatrix {
    fn default() -> Self {
        CorrelationMatrix {
            pairs: vec![PairStats::default(); N_METRICS * (N_METRICS - 1) / 2],
        }
    }
}

impl CorrelationMatrix {
    fn add(&mut self, values: &[Option<f64>; N_METRICS]) {
        let mut k = 0;
        for i in 0..N_METRICS {
            let Some(x) = values[i] else {
                k += N_METRICS - i - 1;
                continue;
            };
            for y in &values[i + 1..] {
                if let Some(y) = y {
                    self.pairs[k].add(x, *y);
                }
                k += 1;
            }
        }
    }
}

/// Per local hour of day.
#[derive(Debug, Clone, Copy, Default)]
pub struct HourStats {
    /// Samples in this hour.
    pub samples: u64,
    /// Sum and count of loads.
    pub load_sum: f64,
    /// Number of load readings.
    pub load_n: u64,
    /// Idle samples.
    pub idle: u64,
    /// Busy samples.
    pub busy: u64,
    /// Sum of temperatures.
    pub temp_sum: f64,
    /// Number of temperature readings.
    pub temp_n: u64,
    /// Highest temperature.
    pub temp_max: Option<f64>,
    /// Sum of power readings.
    pub power_sum: f64,
    /// Number of power readings.
    pub power_n: u64,
    /// Energy of the intervals ending in this hour, joules.
    pub energy_j: f64,
}

/// One 1-minute point of the report's daily curves (sums and counts).
#[derive(Debug, Clone, Copy, Default)]
pub struct CurvePoint {
    /// Sum and count of temperature, load and power.
    pub sums: [f64; 3],
    /// Counts of the sums.
    pub counts: [u32; 3],
}

/// A temperature spike.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// Session of the spike.
    pub session: String,
    /// Lowest reading in the window before the rise crossed the threshold.
    pub start_us: i64,
    /// Its value.
    pub start_c: f64,
    /// Highest reading of the episode.
    pub peak_us: i64,
    /// Its value.
    pub peak_c: f64,
    /// Last reading still above `start_c + rise`.
    pub end_us: i64,
    /// Readings from the crossing to the end.
    pub samples: u64,
}

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

/// Everything the nightly job accumulates for one GPU over one day.
#[derive(Debug, Clone)]
pub struct GpuDay {
    /// Host name.
    pub host: String,
    /// GPU name within the host.
    pub gpu: String,
    /// Marketing name, when the samples carry one.
    pub gpu_name: Option<String>,
    /// Samples seen.
    pub samples: u64,
    /// First and last event time (µs).
    pub first_us: i64,
    /// Last event time (µs).
    pub last_us: i64,
    /// Per main metric.
    pub stats: Vec<MetricStats>,
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
    /// Samples with a usable load.
    pub load_n: u64,
    /// Idle samples.
    pub idle: u64,
    /// Busy samples.
    pub busy: u64,
    /// Samples with a PerfCap or throttle-reason code.
    pub throttle_n: u64,
    /// Samples throttled for any reason (idle excluded).
    pub throttled_any: u64,
    /// Per [`THROTTLE_REASONS`].
    pub throttled: [u64; THROTTLE_REASONS.len()],
    /// Per local hour of day.
    pub hours: [HourStats; 24],
    /// 1-minute buckets of the UTC day, for the report.
    pub curve: Vec<CurvePoint>,
    /// Per [`LOAD_STATES`].
    pub correlations: [CorrelationMatrix; 3],
    /// Busy samples: (sum, count) of temperature, power, core clock.
    pub busy_sums: [(f64, u64); 3],
    /// Σ core clock × load / 100 and Σ power over samples with all three.
    pub perf_sums: (f64, f64),
    /// The same over busy samples.
    pub busy_perf_sums: (f64, f64),
    /// Closed spikes, in time order per session.
    pub spikes: Vec<Spike>,
    sessions: Vec<SessionState>,
    session_index: HashMap<String, usize>,
    current_session: usize,
    day_start_us: i64,
}

impl GpuDay {
    /// An empty day for one GPU; `day_start_us` is the UTC midnight of the day.
    pub fn new(host: &str, gpu: &str, day_start_us: i64) -> GpuDay {
        GpuDay {
            host: host.to_string(),
            gpu: gpu.to_string(),
            gpu_name: None,
            samples: 0,
            first_us: i64::MAX,
            last_us: i64::MIN,
            stats: vec![MetricStats::default(); N_METRICS],
            energy_j: 0.0,
            integrated_s: 0.0,
            gaps: 0,
            counter_energy_j: None,
            trapezoid_on_counter_j: 0.0,
            load_n: 0,
            idle: 0,
            busy: 0,
            throttle_n: 0,
            throttled_any: 0,
            throttled: [0; THROTTLE_REASONS.len()],
            hours: [HourStats::default(); 24],
            curve: vec![CurvePoint::default(); CURVE_BUCKETS],
            correlations: Default::default(),
            busy_sums: [(0.0, 0); 3],
            perf_sums: (0.0, 0.0),
            busy_perf_sums: (0.0, 0.0),
            spikes: Vec::new(),
            sessions: Vec::new(),
            session_index: HashMap::new(),
            current_session: 0,
            day_start_us,
        }
    }

    /// Adds one reading of `session`. Within a session, readings must come in event-time
    /// order (ties allowed); sessions may interleave.
    pub fn add(&mut self, session: &str, r: &Reading, local_hour: usize, opts: &AnalysisOptions) {
        self.samples += 1;
        self.first_us = self.first_us.min(r.t_us);
        self.last_us = self.last_us.max(r.t_us);
        for (s, v) in self.stats.iter_mut().zip(&r.values) {
            if let Some(v) = v {
                s.add(*v);
            }
        }
        let load = r.values[LOAD];
        let temp = r.values[TEMP];
        let power = r.values[POWER];
        let clock = r.values[CORE_CLOCK];
        let idle = load.is_some_and(|l| l < opts.idle_below_pct);
        let busy = load.is_some_and(|l| l >= opts.busy_from_pct);
        if load.is_some() {
            self.load_n += 1;
        }
        self.idle += u64::from(idle);
        self.busy += u64::from(busy);
        self.throttle(r.perf_cap, r.throttle_reasons);

        // Per hour of day, curves.
        let h = &mut self.hours[local_hour.min(23)];
        h.samples += 1;
        h.idle += u64::from(idle);
        h.busy += u64::from(busy);
        if let Some(l) = load {
            h.load_sum += l;
            h.load_n += 1;
        }
        if let Some(t) = temp {
            h.temp_sum += t;
            h.temp_n += 1;
            h.temp_max = Some(h.temp_max.map_or(t, |m| m.max(t)));
        }
        if let Some(p) = power {
            h.power_sum += p;
            h.power_n += 1;
        }
        let bucket =
            ((r.t_us - self.day_start_us) / (60 * MICROS)).clamp(0, CURVE_BUCKETS as i64 - 1);
        let point = &mut self.curve[bucket as usize];
        for (k, v) in [temp, load, power].into_iter().enumerate() {
            if let Some(v) = v {
                point.sums[k] += v;
                point.counts[k] += 1;
            }
        }

        // Correlations and the comparison's busy figures.
        self.correlations[0].add(&r.values);
        if idle {
            self.correlations[1].add(&r.values);
        }
        if busy {
            self.correlations[2].add(&r.values);
            for (k, v) in [temp, power, clock].into_iter().enumerate() {
                if let Some(v) = v {
                    self.busy_sums[k].0 += v;
                    self.busy_sums[k].1 += 1;
                }
            }
        }
        if let (Some(c), Some(l), Some(p)) = (clock, load, power) {
            self.perf_sums.0 += c * l / 100.0;
            self.perf_sums.1 += p;
            if busy {
                self.busy_perf_sums.0 += c * l / 100.0;
                self.busy_perf_sums.1 += p;
            }
        }

        self.ordered(session, r, local_hour, opts);
    }

    fn throttle(&mut self, perf_cap: Option<i64>, nvml: Option<i64>) {
        if perf_cap.is_none() && nvml.is_none() {
            return;
        }
        self.throttle_n += 1;
        let mut hit = [false; THROTTLE_REASONS.len()];
        if let Some(m) = perf_cap {
            // GPU-Z PerfCap: 1 power, 2 thermal, 4 reliability voltage, 8 max voltage,
            // 16 idle (not a throttle), 32 SLI sync, higher bits unknown.
            hit[0] |= m & 1 != 0;
            hit[1] |= m & 2 != 0;
            hit[2] |= m & (4 | 8) != 0;
            hit[4] |= m & !(1 | 2 | 4 | 8 | 16) != 0;
        }
        if let Some(m) = nvml {
            // NVML clocksThrottleReasons: 0x1 GPU idle (not a throttle), 0x2 application
            // clocks, 0x4 SW power cap, 0x8 HW slowdown, 0x10 sync boost, 0x20 SW thermal,
            // 0x40 HW thermal, 0x80 HW power brake, 0x100 display clock.
            hit[0] |= m & (0x4 | 0x80) != 0;
            hit[1] |= m & (0x20 | 0x40) != 0;
            hit[3] |= m & 0x8 != 0;
            hit[4] |= m & !(0x1 | 0x4 | 0x8 | 0x20 | 0x40 | 0x80) != 0;
        }
        for (n, h) in self.throttled.iter_mut().zip(hit) {
            *n += u64::from(h);
        }
        self.throttled_any += u64::from(hit.iter().any(|h| *h));
    }

    /// The order-dependent analyses: gaps, energy, spikes.
    fn ordered(&mut self, session: &str, r: &Reading, local_hour: usize, opts: &AnalysisOptions) {
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
            }
        }
        st.last_t = Some(t);

        // Energy: trapezoids between consecutive power readings of the session, never
        // across a gap (a reading without power between them does not break the chain,
        // but the whole span must itself not be a gap).
        if let Some(p) = r.values[POWER] {
            if let Some((t0, p0)) = st.last_power {
                let dt = t - t0;
                if dt > 0 && !st.is_gap(dt, opts) {
                    let j = (p0 + p) / 2.0 * dt as f64 / MICROS as f64;
                    self.energy_j += j;
                    self.integrated_s += dt as f64 / MICROS as f64;
                    self.hours[local_hour.min(23)].energy_j += j;
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
                if dt > 0 && e >= e0 && !st.is_gap(dt, opts) {
                    *self.counter_energy_j.get_or_insert(0.0) += (e - e0) / 1000.0;
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
        let Some(v) = r.values[TEMP] else { return };
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
    }

    /// Closes open spikes (end of day). Spikes come out sorted by start time.
    pub fn finish(&mut self) {
        for st in &mut self.sessions {
            if let Some(s) = st.spike.open.take() {
                self.spikes.push(s);
            }
        }
        self.spikes
            .sort_by(|a, b| (a.start_us, &a.session).cmp(&(b.start_us, &b.session)));
    }

    /// Share of `n` among samples with a load reading.
    pub fn load_share(&self, n: u64) -> Option<f64> {
        (self.load_n > 0).then(|| n as f64 / self.load_n as f64)
    }

    /// Share of `n` among samples with a throttle code.
    pub fn throttle_share(&self, n: u64) -> Option<f64> {
        (self.throttle_n > 0).then(|| n as f64 / self.throttle_n as f64)
    }

    /// Merges another GPU's day into this one, for fleet figures (statistics, energy,
    /// shares, hours; not correlations, spikes or sessions).
    pub fn merge_fleet(&mut self, o: &GpuDay) {
        self.samples += o.samples;
        self.first_us = self.first_us.min(o.first_us);
        self.last_us = self.last_us.max(o.last_us);
        for (a, b) in self.stats.iter_mut().zip(&o.stats) {
            a.merge(b);
        }
        self.energy_j += o.energy_j;
        self.integrated_s += o.integrated_s;
        self.gaps += o.gaps;
        if let Some(c) = o.counter_energy_j {
            *self.counter_energy_j.get_or_insert(0.0) += c;
        }
        self.trapezoid_on_counter_j += o.trapezoid_on_counter_j;
        self.load_n += o.load_n;
        self.idle += o.idle;
        self.busy += o.busy;
        self.throttle_n += o.throttle_n;
        self.throttled_any += o.throttled_any;
        for (a, b) in self.throttled.iter_mut().zip(o.throttled) {
            *a += b;
        }
        for (a, b) in self.hours.iter_mut().zip(&o.hours) {
            a.samples += b.samples;
            a.load_sum += b.load_sum;
            a.load_n += b.load_n;
            a.idle += b.idle;
            a.busy += b.busy;
            a.temp_sum += b.temp_sum;
            a.temp_n += b.temp_n;
            a.temp_max = match (a.temp_max, b.temp_max) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
            a.power_sum += b.power_sum;
            a.power_n += b.power_n;
            a.energy_j += b.energy_j;
        }
    }
}

/// Local hour of day of UTC instants in one timezone, cached per UTC minute (offsets
/// change at most on minute boundaries).
#[derive(Debug)]
pub struct LocalHours {
    tz: Tz,
    minute: i64,
    /// Offset from UTC of the cached minute, seconds.
    offset_s: i64,
}

impl LocalHours {
    /// A converter for `tz`.
    pub fn new(tz: Tz) -> LocalHours {
        LocalHours {
            tz,
            minute: i64::MIN,
            offset_s: 0,
        }
    }

    /// Hour of day (0–23) in the timezone of the instant `t_us` (µs since the epoch).
    pub fn hour(&mut self, t_us: i64) -> usize {
        let minute = t_us.div_euclid(60 * MICROS);
        if minute != self.minute {
            self.minute = minute;
            self.offset_s = DateTime::<Utc>::from_timestamp_micros(t_us)
                .map(|t| {
                    use chrono::Offset;
                    t.with_timezone(&self.tz).offset().fix().local_minus_utc() as i64
                })
                .unwrap_or(0);
        }
        let local_s = t_us.div_euclid(MICROS) + self.offset_s;
        local_s.rem_euclid(86_400) as usize / 3600
    }

    /// The same without the cache (for tests and one-off uses).
    pub fn hour_of(tz: Tz, t: DateTime<Utc>) -> usize {
        t.with_timezone(&tz).hour() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f64]) -> Summary {
        let mut s = MetricStats::default();
        for v in values {
            s.add(*v);
        }
        s.summary().expect("values")
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = stats(&values);
        // p × (n − 1) = 49.5, 94.05, 98.01 (0-based ranks).
        assert!((s.p50 - 50.5).abs() < 1e-9, "{s:?}");
        assert!((s.p95 - 95.05).abs() < 1e-9, "{s:?}");
        assert!((s.p99 - 99.01).abs() < 1e-9, "{s:?}");
        let s = stats(&[10.0, 20.0, 30.0]);
        assert_eq!((s.p50, s.min, s.max), (20.0, 10.0, 30.0));
        assert!((s.p95 - 29.0).abs() < 1e-9);
        // Repeated readings count once per occurrence.
        let s = stats(&[5.0, 5.0, 5.0, 7.0]);
        assert_eq!(s.p50, 5.0);
        assert_eq!(s.stddev, Some(1.0));
        assert!((s.p99 - 6.94).abs() < 1e-9, "{s:?}");
        let s = stats(&[3.0]);
        assert_eq!((s.p50, s.p99, s.stddev), (3.0, 3.0, None));
    }

    #[test]
    fn merged_stats_equal_stats_of_the_union() {
        let (a, b) = ([1.0, 2.0, 9.0], [4.0, 4.0, 100.0, -3.0]);
        let mut x = MetricStats::default();
        let mut y = MetricStats::default();
        a.iter().for_each(|v| x.add(*v));
        b.iter().for_each(|v| y.add(*v));
        x.merge(&y);
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let (m, s) = (x.summary().unwrap(), stats(&all));
        assert_eq!(
            (m.count, m.min, m.max, m.p50),
            (s.count, s.min, s.max, s.p50)
        );
        assert!((m.mean - s.mean).abs() < 1e-12);
        assert!((m.stddev.unwrap() - s.stddev.unwrap()).abs() < 1e-12);
    }

    #[test]
    fn correlation_of_linear_and_constant_series() {
        let mut p = PairStats::default();
        let mut n = PairStats::default();
        let mut c = PairStats::default();
        for i in 0..50 {
            let x = f64::from(i) * 0.7;
            p.add(x, 3.0 * x + 2.0);
            n.add(x, -x);
            c.add(x, 42.0);
        }
        match p.correlation("a", "b") {
            Correlation::R(r) => assert!((r - 1.0).abs() < 1e-12, "{r}"),
            other => panic!("{other:?}"),
        }
        match n.correlation("a", "b") {
            Correlation::R(r) => assert!((r + 1.0).abs() < 1e-12, "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.correlation("a", "b"),
            Correlation::Skipped("b is constant (42)".into())
        );
        assert!(
            matches!(PairStats::default().correlation("a", "b"), Correlation::Skipped(s) if s.contains("no samples"))
        );
    }

    #[test]
    fn new_york_hours_across_the_spring_change() {
        let tz = chrono_tz::America::New_York;
        let mut h = LocalHours::new(tz);
        // 2024-03-10 06:30 UTC = 01:30 EST; 07:30 UTC = 03:30 EDT (02:xx does not exist).
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap().timestamp_micros();
        assert_eq!(h.hour(t("2024-03-10T06:30:00Z")), 1);
        assert_eq!(h.hour(t("2024-03-10T07:30:00Z")), 3);
        assert_eq!(h.hour(t("2024-03-10T04:59:59Z")), 23);
        let mut ist = LocalHours::new(chrono_tz::Asia::Kolkata);
        assert_eq!(ist.hour(t("2024-03-10T00:29:00Z")), 5);
        assert_eq!(ist.hour(t("2024-03-10T00:30:00Z")), 6);
    }
}
