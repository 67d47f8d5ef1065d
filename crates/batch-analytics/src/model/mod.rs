//! The analysis model: what an analysed day *is*, independent of how it was read and
//! of where it goes. [`crate::analyze`] produces it, the output tables
//! ([`crate::nightly`]) and the HTML report ([`crate::report`]) are views of it.
//!
//! Everything here is finished figures (statistics already summarised, correlations
//! already computed) keyed by [`AnalysisMetric`], [`ThrottleReason`] and
//! [`LoadState`]: no accumulator state, no storage.

mod allocation;
pub mod fleet;
pub mod health;
mod metric;
mod usage;

use chrono::NaiveDate;
use chrono_tz::Tz;

pub use allocation::{Allocation, Allocations, Overlap, Owner, OwnerId, Segment, owner_at};
pub use health::{CounterDay, HealthDay, HealthHistory, Risk};
pub use metric::{
    AnalysisMetric, HealthCounter, LoadState, PerCounter, PerLoadState, PerMetric, PerReason,
    ThrottleReason,
};
pub use usage::{EnergyParts, OwnerUse, ThrottleTime};

/// Joules per kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3.6e6;

/// Number of points of the report's daily curves (1-minute buckets of the UTC day).
pub const CURVE_BUCKETS: usize = 1440;

/// The metrics of the report's daily curves ([`CurvePoint`]).
pub const CURVE_METRICS: [AnalysisMetric; 3] = [
    AnalysisMetric::GpuTemp,
    AnalysisMetric::GpuLoad,
    AnalysisMetric::Power,
];

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
    /// `waste`: a sample is idle below this load (percent) ... Default 5.
    pub waste_idle_below_pct: f64,
    /// ... and a run of idle samples counts as waste from this many seconds. Default
    /// 1800.
    pub waste_min_idle_s: f64,
    /// `energy_by_owner`: grid carbon intensity, g CO2e per kWh; `None`: no CO2e.
    pub grid_g_per_kwh: Option<f64>,
    /// `throttling`: the temperature limit (°C) of GPUs whose model has none of its own
    /// in [`model_thermal_limits`](Self::model_thermal_limits). Default 85.
    pub thermal_limit_c: f64,
    /// `throttling`: temperature limits per GPU model (`gpu_name`, exact), °C.
    pub model_thermal_limits: Vec<(String, f64)>,
    /// `cohorts`: width of the power buckets, W. Default 25.
    pub cohort_power_bucket_w: f64,
    /// `cohorts`: a GPU this much hotter than its peers at equal power (°C) is an
    /// outlier. Default 5.
    pub cohort_outlier_c: f64,
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
            waste_idle_below_pct: 5.0,
            waste_min_idle_s: 1800.0,
            grid_g_per_kwh: None,
            thermal_limit_c: 85.0,
            model_thermal_limits: Vec::new(),
            cohort_power_bucket_w: 25.0,
            cohort_outlier_c: 5.0,
        }
    }
}

/// Exact summary statistics of one metric.
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

/// A sum and a count, for a mean.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    /// Sum of the values.
    pub sum: f64,
    /// Number of values.
    pub n: u64,
}

impl Mean {
    /// Adds a value.
    pub fn add(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &Mean) {
        self.sum += other.sum;
        self.n += other.n;
    }

    /// The mean, or `None` without values.
    pub fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// A correlation, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Correlation {
    /// Pearson's r.
    R(f64),
    /// Not computed, with the reason in words.
    Skipped(String),
}

/// The correlation of one pair of metrics over one load state's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct PairCorrelation {
    /// First metric (earlier in [`AnalysisMetric::ALL`]).
    pub a: AnalysisMetric,
    /// Second metric.
    pub b: AnalysisMetric,
    /// Samples with both metrics.
    pub n: u64,
    /// Pearson's r, or why there is none.
    pub correlation: Correlation,
}

/// Σ(core clock × load / 100) and Σ power over samples with all three readings: the
/// sums of the performance-per-watt proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PerfSums {
    /// Σ core clock (MHz) × load / 100: the MHz effectively used.
    pub used_mhz: f64,
    /// Σ power (W).
    pub power_w: f64,
}

/// Performance-per-watt proxy: Σ(core clock × load / 100) / Σ power, i.e. effectively
/// used MHz per watt, over samples with all three readings.
pub fn perf_per_watt(sums: PerfSums) -> Option<f64> {
    (sums.power_w > 0.0).then(|| sums.used_mhz / sums.power_w)
}

/// Per local hour of day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HourStats {
    /// Samples in this hour.
    pub samples: u64,
    /// Idle samples.
    pub idle: u64,
    /// Busy samples.
    pub busy: u64,
    /// Load readings.
    pub load: Mean,
    /// GPU temperature readings.
    pub temp: Mean,
    /// Highest GPU temperature.
    pub temp_max: Option<f64>,
    /// Power readings.
    pub power: Mean,
    /// Energy of the intervals ending in this hour, joules.
    pub energy_j: f64,
}

impl HourStats {
    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &HourStats) {
        self.samples += other.samples;
        self.load.merge(&other.load);
        self.idle += other.idle;
        self.busy += other.busy;
        self.temp.merge(&other.temp);
        self.temp_max = match (self.temp_max, other.temp_max) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        self.power.merge(&other.power);
        self.energy_j += other.energy_j;
    }

    /// Share of idle samples among those with a load reading.
    pub fn idle_share(&self) -> Option<f64> {
        (self.load.n > 0).then(|| self.idle as f64 / self.load.n as f64)
    }

    /// Share of busy samples among those with a load reading.
    pub fn busy_share(&self) -> Option<f64> {
        (self.load.n > 0).then(|| self.busy as f64 / self.load.n as f64)
    }
}

/// One 1-minute point of the report's daily curves: sums and counts of the
/// [`CURVE_METRICS`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CurvePoint {
    sums: [f64; CURVE_METRICS.len()],
    // u32: one point per minute and GPU, so the curves stay small.
    counts: [u32; CURVE_METRICS.len()],
}

impl CurvePoint {
    fn slot(metric: AnalysisMetric) -> Option<usize> {
        CURVE_METRICS.iter().position(|m| *m == metric)
    }

    /// Adds a reading of one of the [`CURVE_METRICS`] (others are not drawn: ignored).
    pub fn add(&mut self, metric: AnalysisMetric, v: f64) {
        if let Some(k) = Self::slot(metric) {
            self.sums[k] += v;
            self.counts[k] += 1;
        }
    }

    /// The minute's mean of `metric`, or `None` without readings.
    pub fn mean(&self, metric: AnalysisMetric) -> Option<f64> {
        let k = Self::slot(metric)?;
        (self.counts[k] > 0).then(|| self.sums[k] / f64::from(self.counts[k]))
    }

    /// Whether the minute holds no reading of any curve metric.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|c| *c == 0)
    }
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

/// The analysed day of one GPU, or of the whole fleet (`host` = `gpu` = `*`: every
/// GPU merged; statistics, energy, shares and hours only, no curves, correlations or
/// spikes).
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
    /// First event time (µs).
    pub first_us: i64,
    /// Last event time (µs).
    pub last_us: i64,
    /// Statistics per metric; `None` without a usable value that day.
    pub stats: PerMetric<Option<Summary>>,
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
    /// Samples throttled per reason.
    pub throttled: PerReason<u64>,
    /// Per local hour of day.
    pub hours: [HourStats; 24],
    /// 1-minute buckets of the UTC day ([`CURVE_BUCKETS`] points), for the report.
    pub curve: Vec<CurvePoint>,
    /// Per load state, one entry per [`AnalysisMetric::pairs`] pair, in that order.
    pub correlations: PerLoadState<Vec<PairCorrelation>>,
    /// Means over busy samples.
    pub busy_means: PerMetric<Mean>,
    /// Perf/W sums over samples with core clock, load and power.
    pub perf_sums: PerfSums,
    /// The same over busy samples.
    pub busy_perf_sums: PerfSums,
    /// Spikes, sorted by start time.
    pub spikes: Vec<Spike>,
    /// Time and energy per owner (`None`: no allocation held the GPU, or no labels
    /// were given), by owner id.
    pub usage: Vec<(Option<OwnerId>, OwnerUse)>,
    /// Time throttled per reason.
    pub throttle_time: ThrottleTime,
    /// Memory-error counters and XID codes.
    pub health: HealthDay,
    /// Mean GPU temperature per power bucket: bucket `k` holds the samples with
    /// `k × width <= power < (k + 1) × width` ([`AnalysisOptions::cohort_power_bucket_w`]).
    pub temp_by_power: Vec<(i64, Mean)>,
}

impl GpuDay {
    /// The statistics of `metric`, or `None` without a usable value.
    pub fn summary(&self, metric: AnalysisMetric) -> Option<&Summary> {
        self.stats[metric].as_ref()
    }

    /// Number of usable values of `metric`.
    pub fn count(&self, metric: AnalysisMetric) -> u64 {
        self.summary(metric).map_or(0, |s| s.count)
    }

    /// Trapezoid energy in kWh, or `None` without any power reading.
    pub fn energy_kwh(&self) -> Option<f64> {
        (self.count(AnalysisMetric::Power) > 0).then(|| self.energy_j / JOULES_PER_KWH)
    }

    /// Share of `n` among samples with a load reading.
    pub fn load_share(&self, n: u64) -> Option<f64> {
        (self.load_n > 0).then(|| n as f64 / self.load_n as f64)
    }

    /// Share of `n` among samples with a throttle code.
    pub fn throttle_share(&self, n: u64) -> Option<f64> {
        (self.throttle_n > 0).then(|| n as f64 / self.throttle_n as f64)
    }

    /// The correlation of two distinct metrics (in either order) over `state`'s
    /// samples.
    pub fn correlation(
        &self,
        state: LoadState,
        a: AnalysisMetric,
        b: AnalysisMetric,
    ) -> Option<&PairCorrelation> {
        let (a, b) = (a.min(b), a.max(b));
        self.correlations[state]
            .iter()
            .find(|p| p.a == a && p.b == b)
    }
}

/// One row of `anomaly_summary`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnomalyRow {
    /// Host.
    pub host: String,
    /// GPU.
    pub gpu: String,
    /// Rule name.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// Distinct episodes with an event that day.
    pub episodes: u64,
    /// Firing transitions.
    pub fired: u64,
    /// Resolved transitions.
    pub resolved: u64,
    /// Episodes that fired that day and did not resolve that day.
    pub open_at_end: u64,
    /// Sum of resolved episodes' durations, seconds.
    pub total_duration_s: Option<f64>,
    /// Mean duration of the resolved episodes.
    pub mean_duration_s: Option<f64>,
    /// Longest resolved episode.
    pub max_duration_s: Option<f64>,
    /// Most extreme value reported.
    pub max_value: Option<f64>,
}

/// One analysed UTC day: what every output table and the report are built from.
#[derive(Debug, Clone)]
pub struct DayResult {
    /// The UTC day.
    pub date: NaiveDate,
    /// Per GPU, sorted by host and GPU.
    pub gpus: Vec<GpuDay>,
    /// The fleet (every GPU merged).
    pub fleet: GpuDay,
    /// Anomaly summary rows, sorted by host, GPU, rule and severity.
    pub anomalies: Vec<AnomalyRow>,
    /// The options used.
    pub options: AnalysisOptions,
    /// Whether allocation labels were given: without them no time is "unallocated",
    /// it is unknown.
    pub allocations_known: bool,
    /// The owners of the labels, by [`OwnerId`].
    pub owners: Vec<Owner>,
    /// Each GPU's `health` rows of the previous days, summed (GPUs without any have
    /// no entry).
    pub health_history: Vec<HealthHistory>,
}
