//! The nightly computations, as streaming accumulators fed with one GPU's samples in
//! event-time order, finished into the [`crate::model`].
//!
//! Everything here is plain Rust over already-decoded values, so it can be tested with
//! hand-made numbers; [`crate::nightly`] feeds it from the lake. Memory per GPU is
//! constant except for the exact percentiles, which keep one counter per *distinct*
//! reading (sensors report a few hundred to a few thousand distinct values a day).
//!
//! - [`MetricStats`]: exact statistics of one metric (`daily_gpu`, `daily_fleet`);
//! - [`CorrelationMatrix`]: pairwise correlations (`correlations`);
//! - sessions, gaps, energy and spikes, which depend on reading order (`spikes`, the
//!   energy columns);
//! - [`LocalHours`]: local hours of day (`hourly`);
//! - [`GpuAccumulator`]: one GPU's day, feeding all of the above.

mod correlation;
mod health;
mod hours;
mod session;
mod stats;
mod usage;

pub use correlation::{CorrelationMatrix, MIN_CORRELATION_PAIRS, PairStats};
pub use hours::LocalHours;
pub use stats::MetricStats;

use std::collections::BTreeMap;

use crate::model::{
    AnalysisMetric, AnalysisOptions, CURVE_BUCKETS, CURVE_METRICS, CurvePoint, GpuDay, HourStats,
    LoadState, Mean, PerCounter, PerLoadState, PerMetric, PerReason, PerfSums, Segment,
    ThrottleReason,
};
use health::Health;
use session::Timeline;
use usage::Usage;

const MICROS: i64 = 1_000_000;

/// One sample as the accumulators see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Event time, µs since the Unix epoch (UTC).
    pub t_us: i64,
    /// Usable values of the analysed metrics.
    pub values: PerMetric<Option<f64>>,
    /// Energy counter (mJ), if the GPU reports one.
    pub energy_mj: Option<f64>,
    /// GPU-Z PerfCap bitmask.
    pub perf_cap: Option<i64>,
    /// NVML clock-throttle reason bitmask.
    pub throttle_reasons: Option<i64>,
    /// Usable values of the health counters.
    pub counters: PerCounter<Option<f64>>,
    /// XID code reported in the sample's interval.
    pub xid: Option<i64>,
}

/// Everything the nightly job accumulates for one GPU over one day;
/// [`finish`](Self::finish) turns it into the model's [`GpuDay`].
#[derive(Debug, Clone)]
pub struct GpuAccumulator {
    /// Host name.
    pub host: String,
    /// GPU name within the host.
    pub gpu: String,
    /// Marketing name, when the samples carry one.
    pub gpu_name: Option<String>,
    /// Samples seen.
    pub samples: u64,
    first_us: i64,
    last_us: i64,
    stats: PerMetric<MetricStats>,
    load_n: u64,
    idle: u64,
    busy: u64,
    throttle_n: u64,
    throttled_any: u64,
    throttled: PerReason<u64>,
    hours: [HourStats; 24],
    curve: Vec<CurvePoint>,
    correlations: PerLoadState<CorrelationMatrix>,
    busy_means: PerMetric<Mean>,
    perf_sums: PerfSums,
    busy_perf_sums: PerfSums,
    timeline: Timeline,
    usage: Usage,
    health: Health,
    /// Power bucket → GPU temperature.
    temp_by_power: BTreeMap<i64, Mean>,
    day_start_us: i64,
}

impl GpuAccumulator {
    /// An empty day for one GPU held as `segments` say (its allocations, sorted and
    /// disjoint); `day_start_us` is the UTC midnight of the day.
    pub fn new(host: &str, gpu: &str, day_start_us: i64, segments: Vec<Segment>) -> GpuAccumulator {
        GpuAccumulator {
            host: host.to_string(),
            gpu: gpu.to_string(),
            gpu_name: None,
            samples: 0,
            first_us: i64::MAX,
            last_us: i64::MIN,
            stats: PerMetric::default(),
            load_n: 0,
            idle: 0,
            busy: 0,
            throttle_n: 0,
            throttled_any: 0,
            throttled: PerReason::default(),
            hours: [HourStats::default(); 24],
            curve: vec![CurvePoint::default(); CURVE_BUCKETS],
            correlations: PerLoadState::default(),
            busy_means: PerMetric::default(),
            perf_sums: PerfSums::default(),
            busy_perf_sums: PerfSums::default(),
            timeline: Timeline::default(),
            usage: Usage::new(segments),
            health: Health::default(),
            temp_by_power: BTreeMap::new(),
            day_start_us,
        }
    }

    /// Adds one reading of `session`. Within a session, readings must come in event-time
    /// order (ties allowed); sessions may interleave.
    pub fn add(&mut self, session: &str, r: &Reading, local_hour: usize, opts: &AnalysisOptions) {
        use AnalysisMetric::{CoreClock, GpuLoad, GpuTemp, Power};
        self.samples += 1;
        self.first_us = self.first_us.min(r.t_us);
        self.last_us = self.last_us.max(r.t_us);
        for (s, v) in self.stats.values_mut().iter_mut().zip(r.values.values()) {
            if let Some(v) = v {
                s.add(*v);
            }
        }
        let load = r.values[GpuLoad];
        let temp = r.values[GpuTemp];
        let power = r.values[Power];
        let clock = r.values[CoreClock];
        let idle = load.is_some_and(|l| l < opts.idle_below_pct);
        let busy = load.is_some_and(|l| l >= opts.busy_from_pct);
        if load.is_some() {
            self.load_n += 1;
        }
        self.idle += u64::from(idle);
        self.busy += u64::from(busy);
        let reasons = (r.perf_cap.is_some() || r.throttle_reasons.is_some())
            .then(|| throttle_reasons(r.perf_cap, r.throttle_reasons));
        if let Some(hit) = &reasons {
            self.throttle(hit);
        }
        if let (Some(p), Some(t)) = (power, temp)
            && opts.cohort_power_bucket_w > 0.0
        {
            let bucket = (p / opts.cohort_power_bucket_w).floor() as i64;
            self.temp_by_power.entry(bucket).or_default().add(t);
        }

        // Per hour of day, curves.
        let hour = local_hour.min(23);
        let h = &mut self.hours[hour];
        h.samples += 1;
        h.idle += u64::from(idle);
        h.busy += u64::from(busy);
        if let Some(l) = load {
            h.load.add(l);
        }
        if let Some(t) = temp {
            h.temp.add(t);
            h.temp_max = Some(h.temp_max.map_or(t, |m| m.max(t)));
        }
        if let Some(p) = power {
            h.power.add(p);
        }
        let bucket =
            ((r.t_us - self.day_start_us) / (60 * MICROS)).clamp(0, CURVE_BUCKETS as i64 - 1);
        let point = &mut self.curve[bucket as usize];
        for m in CURVE_METRICS {
            if let Some(v) = r.values[m] {
                point.add(m, v);
            }
        }

        // Correlations and the comparison's busy figures.
        self.correlations[LoadState::All].add(&r.values);
        if idle {
            self.correlations[LoadState::Idle].add(&r.values);
        }
        if busy {
            self.correlations[LoadState::Busy].add(&r.values);
            for (mean, v) in self
                .busy_means
                .values_mut()
                .iter_mut()
                .zip(r.values.values())
            {
                if let Some(v) = v {
                    mean.add(*v);
                }
            }
        }
        if let (Some(c), Some(l), Some(p)) = (clock, load, power) {
            self.perf_sums.used_mhz += c * l / 100.0;
            self.perf_sums.power_w += p;
            if busy {
                self.busy_perf_sums.used_mhz += c * l / 100.0;
                self.busy_perf_sums.power_w += p;
            }
        }

        let step = self.timeline.add(session, r, opts);
        if let Some(j) = step.trapezoid_j {
            self.hours[hour].energy_j += j;
        }
        self.usage.add(&step, r.t_us, load, reasons.as_ref(), opts);
        self.health.add(step.session, r.t_us, &r.counters, r.xid);
    }

    fn throttle(&mut self, hit: &PerReason<bool>) {
        self.throttle_n += 1;
        for (n, h) in self.throttled.values_mut().iter_mut().zip(hit.values()) {
            *n += u64::from(*h);
        }
        self.throttled_any += u64::from(hit.values().iter().any(|h| *h));
    }

    /// Merges another GPU's day into this one, for fleet figures (statistics, energy,
    /// shares, hours; not curves, correlations, spikes or sessions).
    pub fn merge_fleet(&mut self, o: &GpuAccumulator) {
        self.samples += o.samples;
        self.first_us = self.first_us.min(o.first_us);
        self.last_us = self.last_us.max(o.last_us);
        for (a, b) in self.stats.values_mut().iter_mut().zip(o.stats.values()) {
            a.merge(b);
        }
        self.timeline.merge_totals(&o.timeline);
        self.load_n += o.load_n;
        self.idle += o.idle;
        self.busy += o.busy;
        self.throttle_n += o.throttle_n;
        self.throttled_any += o.throttled_any;
        for (a, b) in self
            .throttled
            .values_mut()
            .iter_mut()
            .zip(o.throttled.values())
        {
            *a += b;
        }
        for (a, b) in self.hours.iter_mut().zip(&o.hours) {
            a.merge(b);
        }
    }

    /// The finished day: statistics summarised, correlations computed, open spikes
    /// and idle runs closed (spikes sorted by start time).
    pub fn finish(self, opts: &AnalysisOptions) -> GpuDay {
        let t = self.timeline;
        let (energy_j, integrated_s, gaps) = (t.energy_j, t.integrated_s, t.gaps);
        let (counter_energy_j, trapezoid_on_counter_j) =
            (t.counter_energy_j, t.trapezoid_on_counter_j);
        let (usage, throttle_time) = self.usage.finish(opts);
        GpuDay {
            host: self.host,
            gpu: self.gpu,
            gpu_name: self.gpu_name,
            samples: self.samples,
            first_us: self.first_us,
            last_us: self.last_us,
            stats: self.stats.map(MetricStats::summary),
            energy_j,
            integrated_s,
            gaps,
            counter_energy_j,
            trapezoid_on_counter_j,
            load_n: self.load_n,
            idle: self.idle,
            busy: self.busy,
            throttle_n: self.throttle_n,
            throttled_any: self.throttled_any,
            throttled: self.throttled,
            hours: self.hours,
            curve: self.curve,
            correlations: self.correlations.map(CorrelationMatrix::correlations),
            busy_means: self.busy_means,
            perf_sums: self.perf_sums,
            busy_perf_sums: self.busy_perf_sums,
            spikes: t.finish(),
            usage,
            throttle_time,
            health: self.health.finish(),
            temp_by_power: self.temp_by_power.into_iter().collect(),
        }
    }
}

/// The throttle reasons a sample's codes report (idle is not a throttle): GPU-Z's
/// PerfCap bits and NVML's throttle-reason bits mapped onto one vocabulary,
/// [`ThrottleReason`].
pub fn throttle_reasons(perf_cap: Option<i64>, nvml: Option<i64>) -> PerReason<bool> {
    use ThrottleReason::{HwSlowdown, Other, Power, Thermal, Voltage};
    let mut hit = PerReason::<bool>::default();
    if let Some(m) = perf_cap {
        // GPU-Z PerfCap (gpustream::metric::PERFCAP_REASONS): 1 power, 2 thermal,
        // 4 reliability voltage, 8 max voltage, 16 idle (not a throttle), 32 SLI sync,
        // higher bits unknown.
        hit[Power] |= m & 1 != 0;
        hit[Thermal] |= m & 2 != 0;
        hit[Voltage] |= m & (4 | 8) != 0;
        hit[Other] |= m & !(1 | 2 | 4 | 8 | 16) != 0;
    }
    if let Some(m) = nvml {
        use gpustream::throttle::{
            GPU_IDLE, HW_POWER_BRAKE_SLOWDOWN, HW_SLOWDOWN, HW_THERMAL_SLOWDOWN, SW_POWER_CAP,
            SW_THERMAL_SLOWDOWN,
        };
        let m = m as u64;
        hit[Power] |= m & (SW_POWER_CAP | HW_POWER_BRAKE_SLOWDOWN) != 0;
        hit[Thermal] |= m & (SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN) != 0;
        hit[HwSlowdown] |= m & HW_SLOWDOWN != 0;
        // Application clocks, sync boost, display clock and unknown bits.
        let known = GPU_IDLE
            | SW_POWER_CAP
            | HW_SLOWDOWN
            | SW_THERMAL_SLOWDOWN
            | HW_THERMAL_SLOWDOWN
            | HW_POWER_BRAKE_SLOWDOWN;
        hit[Other] |= m & !known != 0;
    }
    hit
}
