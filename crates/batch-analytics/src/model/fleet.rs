//! The fleet tables as rows of the model: `waste`, `energy_by_owner`, `throttling` and
//! `cohorts` (`health` is [`super::health`]). Exact definitions are in
//! `docs/batch-analytics.md`; the output tables and the report are views of these rows.

use std::collections::BTreeMap;

use super::{
    AnalysisMetric, DayResult, GpuDay, JOULES_PER_KWH, Mean, Owner, OwnerUse, PerfSums,
    perf_per_watt,
};

/// A power bucket of `cohorts` needs this many samples of a GPU to be compared.
pub const COHORT_MIN_SAMPLES: u64 = 30;
/// A GPU's bucket is compared with the median of at least this many other GPUs of its
/// model in the same bucket.
pub const COHORT_MIN_PEERS: usize = 2;

/// Whether time was allocated: `Some(true)` to an owner, `Some(false)` to nobody,
/// `None` when no allocation labels were given.
pub type Allocated = Option<bool>;

/// One row of `waste`: one GPU's day under one owner.
#[derive(Debug, Clone)]
pub struct WasteRow<'a> {
    /// The GPU.
    pub gpu: &'a GpuDay,
    /// Allocation state.
    pub allocated: Allocated,
    /// The owner, when allocated.
    pub owner: Option<&'a Owner>,
    /// Time and energy.
    pub usage: &'a OwnerUse,
}

impl WasteRow<'_> {
    fn counter(&self) -> bool {
        self.gpu.counter_energy_j.is_some()
    }

    /// Energy of the observed intervals, kWh.
    pub fn energy_kwh(&self) -> f64 {
        self.usage.energy.kwh(self.counter())
    }

    /// Energy of the idle intervals, kWh.
    pub fn idle_energy_kwh(&self) -> f64 {
        self.usage.idle_energy.kwh(self.counter())
    }

    /// Wasted hours: idle hours of allocated (or unlabelled) time, every hour of
    /// unallocated time.
    pub fn waste_hours(&self) -> f64 {
        match self.allocated {
            Some(false) => self.usage.observed_s / 3600.0,
            _ => self.usage.idle_s / 3600.0,
        }
    }

    /// Energy of the wasted hours, kWh.
    pub fn waste_energy_kwh(&self) -> f64 {
        match self.allocated {
            Some(false) => self.energy_kwh(),
            _ => self.idle_energy_kwh(),
        }
    }
}

fn allocated(day: &DayResult, owner: Option<u32>) -> (Allocated, Option<&Owner>) {
    if !day.allocations_known {
        return (None, None);
    }
    match owner.and_then(|o| day.owners.get(o as usize)) {
        Some(o) => (Some(true), Some(o)),
        None => (Some(false), None),
    }
}

/// The `waste` rows: per GPU (in GPU order), per owner (unallocated first, then by
/// user, job, project).
pub fn waste_rows(day: &DayResult) -> Vec<WasteRow<'_>> {
    let mut rows = Vec::new();
    for g in &day.gpus {
        let mut mine: Vec<WasteRow<'_>> = g
            .usage
            .iter()
            .map(|(owner, usage)| {
                let (allocated, owner) = allocated(day, *owner);
                WasteRow {
                    gpu: g,
                    allocated,
                    owner,
                    usage,
                }
            })
            .collect();
        mine.sort_by(|a, b| a.owner.cmp(&b.owner));
        rows.extend(mine);
    }
    rows
}

/// One row of `energy_by_owner`: every GPU's time under one owner.
#[derive(Debug, Clone, Default)]
pub struct OwnerEnergyRow<'a> {
    /// Allocation state.
    pub allocated: Allocated,
    /// The owner, when allocated.
    pub owner: Option<&'a Owner>,
    /// GPUs with time under the owner.
    pub gpus: u64,
    /// Observed GPU-seconds.
    pub observed_s: f64,
    /// Energy from energy-counter differences, joules.
    pub counter_j: f64,
    /// Energy from power trapezoids (GPUs without a counter, and counter resets), joules.
    pub trapezoid_j: f64,
    /// Idle GPU-seconds (long idle runs).
    pub idle_s: f64,
}

impl OwnerEnergyRow<'_> {
    /// Total energy, kWh.
    pub fn energy_kwh(&self) -> f64 {
        (self.counter_j + self.trapezoid_j) / JOULES_PER_KWH
    }

    /// CO2-equivalent, kg, at `grid` g per kWh.
    pub fn co2e_kg(&self, grid: Option<f64>) -> Option<f64> {
        grid.map(|g| self.energy_kwh() * g / 1000.0)
    }
}

/// The `energy_by_owner` rows: unallocated (or unlabelled) first, then by user, job,
/// project.
pub fn energy_by_owner(day: &DayResult) -> Vec<OwnerEnergyRow<'_>> {
    let mut rows: BTreeMap<Option<&Owner>, OwnerEnergyRow<'_>> = BTreeMap::new();
    for w in waste_rows(day) {
        let counter = w.counter();
        let e = &w.usage.energy;
        let row = rows.entry(w.owner).or_insert_with(|| OwnerEnergyRow {
            allocated: w.allocated,
            owner: w.owner,
            ..OwnerEnergyRow::default()
        });
        row.gpus += 1;
        row.observed_s += w.usage.observed_s;
        row.counter_j += e.counter_joules(counter);
        row.trapezoid_j += e.joules(counter) - e.counter_joules(counter);
        row.idle_s += w.usage.idle_s;
    }
    rows.into_values().collect()
}

/// One row of `throttling`: one GPU's throttled time and thermal headroom.
#[derive(Debug, Clone)]
pub struct ThrottleRow<'a> {
    /// The GPU.
    pub gpu: &'a GpuDay,
    /// The temperature limit, °C.
    pub limit_c: f64,
    /// Where it comes from: `model` (configured for its `gpu_name`) or `default`.
    pub limit_source: &'static str,
}

impl ThrottleRow<'_> {
    /// The 99th percentile of the GPU temperature.
    pub fn temp_p99(&self) -> Option<f64> {
        self.gpu.summary(AnalysisMetric::GpuTemp).map(|s| s.p99)
    }

    /// Limit − p99 temperature, °C.
    pub fn headroom_c(&self) -> Option<f64> {
        self.temp_p99().map(|t| self.limit_c - t)
    }

    /// Whether the GPU reported any throttle code in an observed interval.
    pub fn coded(&self) -> bool {
        self.gpu.throttle_time.coded_s > 0.0
    }
}

/// The `throttling` rows: one per GPU, in GPU order.
pub fn throttling_rows(day: &DayResult) -> Vec<ThrottleRow<'_>> {
    let o = &day.options;
    day.gpus
        .iter()
        .map(|g| {
            let own = g.gpu_name.as_deref().and_then(|name| {
                o.model_thermal_limits
                    .iter()
                    .find(|(model, _)| model == name)
                    .map(|(_, c)| *c)
            });
            ThrottleRow {
                gpu: g,
                limit_c: own.unwrap_or(o.thermal_limit_c),
                limit_source: if own.is_some() { "model" } else { "default" },
            }
        })
        .collect()
}

/// One row of `cohorts`: one GPU's temperature in one power bucket, beside the other
/// GPUs of its model.
#[derive(Debug, Clone)]
pub struct CohortRow<'a> {
    /// The GPU.
    pub gpu: &'a GpuDay,
    /// GPUs of its model that day.
    pub cohort_gpus: usize,
    /// Lower edge of the power bucket, W (the bucket is `[low, low + width)`).
    pub bucket_low_w: f64,
    /// Samples of the GPU in the bucket with temperature and power.
    pub samples: u64,
    /// Its mean temperature in the bucket.
    pub temp_mean_c: f64,
    /// Other GPUs of the model with at least [`COHORT_MIN_SAMPLES`] in the bucket.
    pub peers: usize,
    /// The median of their mean temperatures in the bucket.
    pub peer_median_c: Option<f64>,
    /// `temp_mean_c − peer_median_c`, when there are at least [`COHORT_MIN_PEERS`].
    pub excess_c: Option<f64>,
    /// The GPU's sample-weighted mean excess over its compared buckets.
    pub gpu_excess_c: Option<f64>,
    /// Whether `gpu_excess_c` is at least the outlier threshold.
    pub outlier: bool,
    /// The GPU's perf/W proxy.
    pub perf_per_watt: Option<f64>,
    /// The model's perf/W proxy (sums over its GPUs).
    pub cohort_perf_per_watt: Option<f64>,
}

/// The median of non-empty `v` (sorted here).
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The `cohorts` rows: by model (GPUs without a name form one cohort, first), GPU and
/// power bucket; a GPU's bucket needs [`COHORT_MIN_SAMPLES`] samples to have a row.
pub fn cohort_rows(day: &DayResult) -> Vec<CohortRow<'_>> {
    let width = day.options.cohort_power_bucket_w;
    let mut cohorts: BTreeMap<Option<&str>, Vec<&GpuDay>> = BTreeMap::new();
    for g in &day.gpus {
        cohorts.entry(g.gpu_name.as_deref()).or_default().push(g);
    }
    let usable = |g: &GpuDay| -> Vec<(i64, Mean)> {
        g.temp_by_power
            .iter()
            .filter(|(_, m)| m.n >= COHORT_MIN_SAMPLES)
            .copied()
            .collect()
    };
    let mut rows = Vec::new();
    for members in cohorts.values() {
        let sums = members.iter().fold(PerfSums::default(), |mut s, g| {
            s.used_mhz += g.perf_sums.used_mhz;
            s.power_w += g.perf_sums.power_w;
            s
        });
        let buckets: Vec<Vec<(i64, Mean)>> = members.iter().map(|g| usable(g)).collect();
        for (i, &g) in members.iter().enumerate() {
            let mut mine = Vec::new();
            for (bucket, mean) in &buckets[i] {
                let Some(temp) = mean.value() else { continue };
                let mut others: Vec<f64> = buckets
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .filter_map(|(_, b)| b.iter().find(|(k, _)| k == bucket))
                    .filter_map(|(_, m)| m.value())
                    .collect();
                let peers = others.len();
                let peer_median_c = median(&mut others);
                let excess_c = peer_median_c
                    .filter(|_| peers >= COHORT_MIN_PEERS)
                    .map(|m| temp - m);
                mine.push(CohortRow {
                    gpu: g,
                    cohort_gpus: members.len(),
                    bucket_low_w: *bucket as f64 * width,
                    samples: mean.n,
                    temp_mean_c: temp,
                    peers,
                    peer_median_c,
                    excess_c,
                    gpu_excess_c: None,
                    outlier: false,
                    perf_per_watt: perf_per_watt(g.perf_sums),
                    cohort_perf_per_watt: perf_per_watt(sums),
                });
            }
            let (weighted, n) = mine
                .iter()
                .filter_map(|r| r.excess_c.map(|e| (e * r.samples as f64, r.samples)))
                .fold((0.0, 0u64), |(s, n), (e, k)| (s + e, n + k));
            let gpu_excess_c = (n > 0).then(|| weighted / n as f64);
            let outlier = gpu_excess_c.is_some_and(|e| e >= day.options.cohort_outlier_c);
            for r in &mut mine {
                r.gpu_excess_c = gpu_excess_c;
                r.outlier = outlier;
            }
            rows.extend(mine);
        }
    }
    rows
}
