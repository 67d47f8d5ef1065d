//! The output tables as Arrow record batches, built from the model: their names,
//! columns and row order. No storage here: [`super::publish`] writes them.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};

use crate::error::Result;
use crate::model::fleet::{cohort_rows, energy_by_owner, throttling_rows, waste_rows};
use crate::model::health::health_rows;
use crate::model::{
    AnalysisMetric, Correlation, DayResult, GpuDay, HealthCounter, HourStats, JOULES_PER_KWH,
    LoadState, PairCorrelation, Spike, Summary, ThrottleReason, perf_per_watt,
};
use crate::tables::DATE_COLUMN;

/// Per GPU and day: statistics, energy, time shares.
pub const DAILY_GPU_TABLE: &str = "daily_gpu";
/// The same columns for the whole fleet (`host` = `gpu` = `*`).
pub const DAILY_FLEET_TABLE: &str = "daily_fleet";
/// Per GPU and local hour of day.
pub const HOURLY_TABLE: &str = "hourly";
/// Temperature spikes.
pub const SPIKES_TABLE: &str = "spikes";
/// Pearson correlations of the main metrics.
pub const CORRELATIONS_TABLE: &str = "correlations";
/// Anomaly counts and durations by rule and severity.
pub const ANOMALY_SUMMARY_TABLE: &str = "anomaly_summary";
/// GPUs side by side.
pub const GPU_COMPARISON_TABLE: &str = "gpu_comparison";
/// Idle allocated time and unallocated powered time, per GPU and owner.
pub const WASTE_TABLE: &str = "waste";
/// Energy per user, job and project.
pub const ENERGY_BY_OWNER_TABLE: &str = "energy_by_owner";
/// Time throttled per reason and thermal headroom, per GPU.
pub const THROTTLING_TABLE: &str = "throttling";
/// Memory errors, XID events, risk score and drain list, per GPU.
pub const HEALTH_TABLE: &str = "health";
/// GPUs beside the others of their model at equal power.
pub const COHORTS_TABLE: &str = "cohorts";

/// Every table the nightly job writes, in writing order.
pub const NIGHTLY_TABLES: [&str; 12] = [
    DAILY_GPU_TABLE,
    DAILY_FLEET_TABLE,
    HOURLY_TABLE,
    SPIKES_TABLE,
    CORRELATIONS_TABLE,
    ANOMALY_SUMMARY_TABLE,
    GPU_COMPARISON_TABLE,
    WASTE_TABLE,
    ENERGY_BY_OWNER_TABLE,
    THROTTLING_TABLE,
    HEALTH_TABLE,
    COHORTS_TABLE,
];

/// Statistic suffixes of every main metric in `daily_gpu`, in column order.
pub const DAILY_STATS: &[&str] = &["count", "min", "mean", "max", "stddev", "p50", "p95", "p99"];

/// Builds record batches column by column.
#[derive(Default)]
struct Cols {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Cols {
    fn push(&mut self, name: &str, array: ArrayRef) {
        self.fields
            .push(Field::new(name, array.data_type().clone(), true));
        self.arrays.push(array);
    }
    fn str<I: IntoIterator<Item = Option<String>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<StringArray>()));
    }
    fn f64<I: IntoIterator<Item = Option<f64>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<Float64Array>()));
    }
    fn i64<I: IntoIterator<Item = Option<i64>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<Int64Array>()));
    }
    fn bool<I: IntoIterator<Item = Option<bool>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<BooleanArray>()));
    }
    fn i32<I: IntoIterator<Item = Option<i32>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<Int32Array>()));
    }
    fn ts<I: IntoIterator<Item = Option<i64>>>(&mut self, name: &str, v: I) {
        let a = v
            .into_iter()
            .collect::<TimestampMicrosecondArray>()
            .with_timezone(gpustream_lake::columnar::UTC);
        self.push(name, Arc::new(a));
    }
    fn finish(self) -> Result<RecordBatch> {
        let schema: SchemaRef = Arc::new(Schema::new(self.fields));
        Ok(RecordBatch::try_new(schema, self.arrays)?)
    }
}

fn some<T: Clone>(v: &T) -> Option<T> {
    Some(v.clone())
}

fn daily_batch(date: NaiveDate, rows: &[&GpuDay]) -> Result<RecordBatch> {
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| Some(date.to_string())));
    c.str("host", rows.iter().map(|g| some(&g.host)));
    c.str("gpu", rows.iter().map(|g| some(&g.gpu)));
    c.i64("samples", rows.iter().map(|g| Some(g.samples as i64)));
    c.ts(
        "first_seen",
        rows.iter().map(|g| (g.samples > 0).then_some(g.first_us)),
    );
    c.ts(
        "last_seen",
        rows.iter().map(|g| (g.samples > 0).then_some(g.last_us)),
    );
    for m in AnalysisMetric::ALL {
        let s = |f: &dyn Fn(&Summary) -> Option<f64>| -> Vec<Option<f64>> {
            rows.iter().map(|g| g.summary(m).and_then(f)).collect()
        };
        c.i64(
            &format!("{m}_count"),
            rows.iter().map(|g| Some(g.count(m) as i64)),
        );
        c.f64(&format!("{m}_min"), s(&|x| Some(x.min)));
        c.f64(&format!("{m}_mean"), s(&|x| Some(x.mean)));
        c.f64(&format!("{m}_max"), s(&|x| Some(x.max)));
        c.f64(&format!("{m}_stddev"), s(&|x| x.stddev));
        c.f64(&format!("{m}_p50"), s(&|x| Some(x.p50)));
        c.f64(&format!("{m}_p95"), s(&|x| Some(x.p95)));
        c.f64(&format!("{m}_p99"), s(&|x| Some(x.p99)));
    }
    c.f64("energy_kwh", rows.iter().map(|g| g.energy_kwh()));
    c.f64(
        "integrated_hours",
        rows.iter().map(|g| Some(g.integrated_s / 3600.0)),
    );
    c.i64("gaps", rows.iter().map(|g| Some(g.gaps as i64)));
    c.f64(
        "energy_counter_kwh",
        rows.iter()
            .map(|g| g.counter_energy_j.map(|j| j / JOULES_PER_KWH)),
    );
    c.f64(
        "energy_counter_diff_pct",
        rows.iter().map(|g| match g.counter_energy_j {
            Some(cj) if cj > 0.0 => Some((g.trapezoid_on_counter_j - cj) / cj * 100.0),
            _ => None,
        }),
    );
    c.f64("idle_share", rows.iter().map(|g| g.load_share(g.idle)));
    c.f64("busy_share", rows.iter().map(|g| g.load_share(g.busy)));
    c.f64(
        "throttled_share",
        rows.iter().map(|g| g.throttle_share(g.throttled_any)),
    );
    for reason in ThrottleReason::ALL {
        c.f64(
            &format!("throttled_{}_share", reason.name()),
            rows.iter().map(|g| g.throttle_share(g.throttled[reason])),
        );
    }
    c.finish()
}

/// Builds every table of the day, in [`NIGHTLY_TABLES`] order, `date` column first.
pub fn build_tables(day: &DayResult) -> Result<Vec<(&'static str, RecordBatch)>> {
    let date = day.date;
    let d = || Some(date.to_string());
    let gpus: Vec<&GpuDay> = day.gpus.iter().collect();
    let mut out = vec![(DAILY_GPU_TABLE, daily_batch(date, &gpus)?)];
    let fleet: Vec<&GpuDay> = if day.gpus.is_empty() {
        vec![]
    } else {
        vec![&day.fleet]
    };
    out.push((DAILY_FLEET_TABLE, daily_batch(date, &fleet)?));

    // hourly
    let tz = day.options.timezone.name().to_string();
    let hours: Vec<(&GpuDay, usize)> = gpus
        .iter()
        .flat_map(|g| {
            (0..24)
                .filter(|h| g.hours[*h].samples > 0)
                .map(move |h| (*g, h))
        })
        .collect();
    let mut c = Cols::default();
    c.str(DATE_COLUMN, hours.iter().map(|_| d()));
    c.str("host", hours.iter().map(|(g, _)| some(&g.host)));
    c.str("gpu", hours.iter().map(|(g, _)| some(&g.gpu)));
    c.i32("hour", hours.iter().map(|(_, h)| Some(*h as i32)));
    c.str("timezone", hours.iter().map(|_| Some(tz.clone())));
    let hs = |f: &dyn Fn(&HourStats) -> Option<f64>| -> Vec<Option<f64>> {
        hours.iter().map(|(g, h)| f(&g.hours[*h])).collect()
    };
    c.i64(
        "samples",
        hours.iter().map(|(g, h)| Some(g.hours[*h].samples as i64)),
    );
    c.f64("gpu_load_pct_mean", hs(&|h| h.load.value()));
    c.f64("idle_share", hs(&HourStats::idle_share));
    c.f64("busy_share", hs(&HourStats::busy_share));
    c.f64("gpu_temp_c_mean", hs(&|h| h.temp.value()));
    c.f64("gpu_temp_c_max", hs(&|h| h.temp_max));
    c.f64("power_w_mean", hs(&|h| h.power.value()));
    c.f64(
        "energy_kwh",
        hs(&|h| (h.power.n > 0).then(|| h.energy_j / JOULES_PER_KWH)),
    );
    out.push((HOURLY_TABLE, c.finish()?));

    // spikes
    let spikes: Vec<(&GpuDay, &Spike)> = gpus
        .iter()
        .flat_map(|g| g.spikes.iter().map(move |s| (*g, s)))
        .collect();
    let mut c = Cols::default();
    c.str(DATE_COLUMN, spikes.iter().map(|_| d()));
    c.str("host", spikes.iter().map(|(g, _)| some(&g.host)));
    c.str("gpu", spikes.iter().map(|(g, _)| some(&g.gpu)));
    c.str("session", spikes.iter().map(|(_, s)| some(&s.session)));
    c.str(
        "metric",
        spikes
            .iter()
            .map(|_| Some(AnalysisMetric::GpuTemp.column().to_string())),
    );
    c.ts("start_time", spikes.iter().map(|(_, s)| Some(s.start_us)));
    c.f64("start_c", spikes.iter().map(|(_, s)| Some(s.start_c)));
    c.ts("peak_time", spikes.iter().map(|(_, s)| Some(s.peak_us)));
    c.f64("peak_c", spikes.iter().map(|(_, s)| Some(s.peak_c)));
    c.ts("end_time", spikes.iter().map(|(_, s)| Some(s.end_us)));
    c.f64(
        "rise_c",
        spikes.iter().map(|(_, s)| Some(s.peak_c - s.start_c)),
    );
    c.f64(
        "rise_s",
        spikes
            .iter()
            .map(|(_, s)| Some((s.peak_us - s.start_us) as f64 / 1e6)),
    );
    c.f64(
        "duration_s",
        spikes
            .iter()
            .map(|(_, s)| Some((s.end_us - s.start_us) as f64 / 1e6)),
    );
    c.i64(
        "samples",
        spikes.iter().map(|(_, s)| Some(s.samples as i64)),
    );
    out.push((SPIKES_TABLE, c.finish()?));

    // correlations
    let rows: Vec<(&GpuDay, LoadState, &PairCorrelation)> = gpus
        .iter()
        .flat_map(|g| {
            g.correlations
                .iter()
                .flat_map(move |(state, pairs)| pairs.iter().map(move |p| (*g, state, p)))
        })
        .collect();
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| d()));
    c.str("host", rows.iter().map(|(g, _, _)| some(&g.host)));
    c.str("gpu", rows.iter().map(|(g, _, _)| some(&g.gpu)));
    c.str(
        "load_state",
        rows.iter().map(|(_, s, _)| Some(s.name().to_string())),
    );
    c.str(
        "metric_a",
        rows.iter().map(|(_, _, p)| Some(p.a.column().to_string())),
    );
    c.str(
        "metric_b",
        rows.iter().map(|(_, _, p)| Some(p.b.column().to_string())),
    );
    c.i64("n", rows.iter().map(|(_, _, p)| Some(p.n as i64)));
    c.f64(
        "r",
        rows.iter().map(|(_, _, p)| match &p.correlation {
            Correlation::R(v) => Some(*v),
            Correlation::Skipped(_) => None,
        }),
    );
    c.str(
        "skipped_reason",
        rows.iter().map(|(_, _, p)| match &p.correlation {
            Correlation::R(_) => None,
            Correlation::Skipped(why) => Some(why.clone()),
        }),
    );
    out.push((CORRELATIONS_TABLE, c.finish()?));

    // anomaly_summary
    let a = &day.anomalies;
    let mut c = Cols::default();
    c.str(DATE_COLUMN, a.iter().map(|_| d()));
    c.str("host", a.iter().map(|r| some(&r.host)));
    c.str("gpu", a.iter().map(|r| some(&r.gpu)));
    c.str("rule", a.iter().map(|r| some(&r.rule)));
    c.str("severity", a.iter().map(|r| some(&r.severity)));
    c.i64("episodes", a.iter().map(|r| Some(r.episodes as i64)));
    c.i64("fired", a.iter().map(|r| Some(r.fired as i64)));
    c.i64("resolved", a.iter().map(|r| Some(r.resolved as i64)));
    c.i64("open_at_end", a.iter().map(|r| Some(r.open_at_end as i64)));
    c.f64("total_duration_s", a.iter().map(|r| r.total_duration_s));
    c.f64("mean_duration_s", a.iter().map(|r| r.mean_duration_s));
    c.f64("max_duration_s", a.iter().map(|r| r.max_duration_s));
    c.f64("max_value", a.iter().map(|r| r.max_value));
    out.push((ANOMALY_SUMMARY_TABLE, c.finish()?));

    out.push((GPU_COMPARISON_TABLE, comparison_batch(date, &gpus)?));
    out.push((WASTE_TABLE, waste_batch(day)?));
    out.push((ENERGY_BY_OWNER_TABLE, energy_by_owner_batch(day)?));
    out.push((THROTTLING_TABLE, throttling_batch(day)?));
    out.push((HEALTH_TABLE, health_batch(day)?));
    out.push((COHORTS_TABLE, cohorts_batch(day)?));
    Ok(out)
}

fn hours(s: f64) -> Option<f64> {
    Some(s / 3600.0)
}

fn waste_batch(day: &DayResult) -> Result<RecordBatch> {
    let rows = waste_rows(day);
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| Some(day.date.to_string())));
    c.str("host", rows.iter().map(|r| some(&r.gpu.host)));
    c.str("gpu", rows.iter().map(|r| some(&r.gpu.gpu)));
    c.str("gpu_name", rows.iter().map(|r| r.gpu.gpu_name.clone()));
    c.bool("allocated", rows.iter().map(|r| r.allocated));
    c.str(
        "user_name",
        rows.iter().map(|r| r.owner.map(|o| o.user.clone())),
    );
    c.str("job", rows.iter().map(|r| r.owner.map(|o| o.job.clone())));
    c.str(
        "project",
        rows.iter().map(|r| r.owner.and_then(|o| o.project.clone())),
    );
    c.f64(
        "observed_hours",
        rows.iter().map(|r| hours(r.usage.observed_s)),
    );
    c.f64("energy_kwh", rows.iter().map(|r| Some(r.energy_kwh())));
    c.f64("idle_hours", rows.iter().map(|r| hours(r.usage.idle_s)));
    c.i64(
        "idle_runs",
        rows.iter().map(|r| Some(r.usage.idle_runs as i64)),
    );
    c.f64(
        "idle_energy_kwh",
        rows.iter().map(|r| Some(r.idle_energy_kwh())),
    );
    c.f64("waste_hours", rows.iter().map(|r| Some(r.waste_hours())));
    c.f64(
        "waste_energy_kwh",
        rows.iter().map(|r| Some(r.waste_energy_kwh())),
    );
    c.finish()
}

fn energy_by_owner_batch(day: &DayResult) -> Result<RecordBatch> {
    let rows = energy_by_owner(day);
    let grid = day.options.grid_g_per_kwh;
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| Some(day.date.to_string())));
    c.bool("allocated", rows.iter().map(|r| r.allocated));
    c.str(
        "user_name",
        rows.iter().map(|r| r.owner.map(|o| o.user.clone())),
    );
    c.str("job", rows.iter().map(|r| r.owner.map(|o| o.job.clone())));
    c.str(
        "project",
        rows.iter().map(|r| r.owner.and_then(|o| o.project.clone())),
    );
    c.i64("gpus", rows.iter().map(|r| Some(r.gpus as i64)));
    c.f64("gpu_hours", rows.iter().map(|r| hours(r.observed_s)));
    c.f64("idle_gpu_hours", rows.iter().map(|r| hours(r.idle_s)));
    c.f64("energy_kwh", rows.iter().map(|r| Some(r.energy_kwh())));
    c.f64(
        "energy_counter_kwh",
        rows.iter().map(|r| Some(r.counter_j / JOULES_PER_KWH)),
    );
    c.f64(
        "energy_trapezoid_kwh",
        rows.iter().map(|r| Some(r.trapezoid_j / JOULES_PER_KWH)),
    );
    c.f64("grid_g_per_kwh", rows.iter().map(|_| grid));
    c.f64("co2e_kg", rows.iter().map(|r| r.co2e_kg(grid)));
    c.finish()
}

fn throttling_batch(day: &DayResult) -> Result<RecordBatch> {
    let rows = throttling_rows(day);
    let minutes = |r: &crate::model::fleet::ThrottleRow<'_>, s: f64| r.coded().then(|| s / 60.0);
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| Some(day.date.to_string())));
    c.str("host", rows.iter().map(|r| some(&r.gpu.host)));
    c.str("gpu", rows.iter().map(|r| some(&r.gpu.gpu)));
    c.str("gpu_name", rows.iter().map(|r| r.gpu.gpu_name.clone()));
    c.f64(
        "coded_minutes",
        rows.iter()
            .map(|r| Some(r.gpu.throttle_time.coded_s / 60.0)),
    );
    c.f64(
        "throttled_minutes",
        rows.iter().map(|r| minutes(r, r.gpu.throttle_time.any_s)),
    );
    for reason in ThrottleReason::ALL {
        c.f64(
            &format!("throttled_{}_minutes", reason.name()),
            rows.iter()
                .map(|r| minutes(r, r.gpu.throttle_time.reasons[reason])),
        );
    }
    c.f64("gpu_temp_c_p99", rows.iter().map(|r| r.temp_p99()));
    c.f64("temp_limit_c", rows.iter().map(|r| Some(r.limit_c)));
    c.str(
        "temp_limit_source",
        rows.iter().map(|r| Some(r.limit_source.to_string())),
    );
    c.f64("thermal_headroom_c", rows.iter().map(|r| r.headroom_c()));
    c.finish()
}

fn health_batch(day: &DayResult) -> Result<RecordBatch> {
    let rows = health_rows(day);
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| Some(day.date.to_string())));
    c.str("host", rows.iter().map(|r| some(&r.gpu.host)));
    c.str("gpu", rows.iter().map(|r| some(&r.gpu.gpu)));
    c.str("gpu_name", rows.iter().map(|r| r.gpu.gpu_name.clone()));
    for counter in HealthCounter::ALL {
        let of = |r: &crate::model::health::HealthRow<'_>| r.gpu.health.counters[counter];
        c.f64(
            &format!("{}_new", counter.column()),
            rows.iter().map(|r| of(r).map(|d| d.new)),
        );
        c.f64(
            &format!("{}_total", counter.column()),
            rows.iter().map(|r| of(r).map(|d| d.last)),
        );
    }
    c.i64(
        "counter_resets",
        rows.iter().map(|r| {
            Some(
                r.gpu
                    .health
                    .counters
                    .values()
                    .iter()
                    .flatten()
                    .map(|d| d.resets as i64)
                    .sum(),
            )
        }),
    );
    c.i64(
        "history_days",
        rows.iter()
            .map(|r| Some(r.history.map_or(0, |h| h.days as i64))),
    );
    c.f64(
        "ecc_corrected_prev_mean",
        rows.iter()
            .map(|r| r.history.and_then(|h| h.corrected_per_day())),
    );
    c.f64(
        "ecc_corrected_trend",
        rows.iter().map(|r| {
            let mean = r.history.and_then(|h| h.corrected_per_day())?;
            let today = r.gpu.health.counters[HealthCounter::EccCorrected]?;
            Some(today.new - mean)
        }),
    );
    c.f64(
        "ecc_uncorrected_prev_sum",
        rows.iter().map(|r| r.history.map(|h| h.ecc_uncorrected)),
    );
    c.i64(
        "xid_events",
        rows.iter().map(|r| Some(r.gpu.health.xid_events() as i64)),
    );
    c.i64(
        "xid_hardware_events",
        rows.iter()
            .map(|r| Some(r.gpu.health.hardware_xid_events() as i64)),
    );
    c.str("xid_codes", rows.iter().map(|r| r.gpu.health.xid_codes()));
    c.i32("risk_score", rows.iter().map(|r| Some(r.risk.score as i32)));
    c.bool("drain", rows.iter().map(|r| Some(r.risk.drain())));
    c.str(
        "risk_reasons",
        rows.iter()
            .map(|r| (!r.risk.reasons.is_empty()).then(|| r.risk.reasons.join(","))),
    );
    c.finish()
}

fn cohorts_batch(day: &DayResult) -> Result<RecordBatch> {
    let rows = cohort_rows(day);
    let width = day.options.cohort_power_bucket_w;
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| Some(day.date.to_string())));
    c.str("gpu_name", rows.iter().map(|r| r.gpu.gpu_name.clone()));
    c.i64(
        "cohort_gpus",
        rows.iter().map(|r| Some(r.cohort_gpus as i64)),
    );
    c.str("host", rows.iter().map(|r| some(&r.gpu.host)));
    c.str("gpu", rows.iter().map(|r| some(&r.gpu.gpu)));
    c.f64("power_w_from", rows.iter().map(|r| Some(r.bucket_low_w)));
    c.f64(
        "power_w_to",
        rows.iter().map(|r| Some(r.bucket_low_w + width)),
    );
    c.i64("samples", rows.iter().map(|r| Some(r.samples as i64)));
    c.f64("gpu_temp_c_mean", rows.iter().map(|r| Some(r.temp_mean_c)));
    c.i64("peers", rows.iter().map(|r| Some(r.peers as i64)));
    c.f64(
        "peer_gpu_temp_c_median",
        rows.iter().map(|r| r.peer_median_c),
    );
    c.f64("temp_excess_c", rows.iter().map(|r| r.excess_c));
    c.f64("gpu_temp_excess_c", rows.iter().map(|r| r.gpu_excess_c));
    c.bool("outlier", rows.iter().map(|r| Some(r.outlier)));
    c.f64("perf_per_watt", rows.iter().map(|r| r.perf_per_watt));
    c.f64(
        "cohort_perf_per_watt",
        rows.iter().map(|r| r.cohort_perf_per_watt),
    );
    c.finish()
}

fn comparison_batch(date: NaiveDate, gpus: &[&GpuDay]) -> Result<RecordBatch> {
    use AnalysisMetric::{CoreClock, GpuLoad, GpuTemp, HotSpot, Power};
    let stat = |m: AnalysisMetric, f: fn(&Summary) -> f64| -> Vec<Option<f64>> {
        gpus.iter().map(|g| g.summary(m).map(f)).collect()
    };
    let busy_mean = |m: AnalysisMetric| -> Vec<Option<f64>> {
        gpus.iter().map(|g| g.busy_means[m].value()).collect()
    };
    let ppw: Vec<Option<f64>> = gpus.iter().map(|g| perf_per_watt(g.perf_sums)).collect();
    let best = ppw.iter().flatten().copied().reduce(f64::max);
    let mut c = Cols::default();
    c.str(DATE_COLUMN, gpus.iter().map(|_| Some(date.to_string())));
    c.str("host", gpus.iter().map(|g| some(&g.host)));
    c.str("gpu", gpus.iter().map(|g| some(&g.gpu)));
    c.str("gpu_name", gpus.iter().map(|g| g.gpu_name.clone()));
    c.i64("samples", gpus.iter().map(|g| Some(g.samples as i64)));
    c.f64("gpu_load_pct_mean", stat(GpuLoad, |s| s.mean));
    c.f64("busy_share", gpus.iter().map(|g| g.load_share(g.busy)));
    c.f64("gpu_temp_c_mean", stat(GpuTemp, |s| s.mean));
    c.f64("gpu_temp_c_p95", stat(GpuTemp, |s| s.p95));
    c.f64("hot_spot_c_p95", stat(HotSpot, |s| s.p95));
    c.f64("power_w_mean", stat(Power, |s| s.mean));
    c.f64("power_w_p95", stat(Power, |s| s.p95));
    c.f64("energy_kwh", gpus.iter().map(|g| g.energy_kwh()));
    c.f64("core_clock_mhz_mean", stat(CoreClock, |s| s.mean));
    c.f64("busy_gpu_temp_c_mean", busy_mean(GpuTemp));
    c.f64("busy_power_w_mean", busy_mean(Power));
    c.f64("busy_core_clock_mhz_mean", busy_mean(CoreClock));
    c.f64("perf_per_watt", ppw.iter().copied());
    c.f64(
        "busy_perf_per_watt",
        gpus.iter().map(|g| perf_per_watt(g.busy_perf_sums)),
    );
    c.f64(
        "perf_per_watt_rel",
        ppw.iter().map(|p| match (p, best) {
            (Some(p), Some(b)) if b > 0.0 => Some(p / b),
            _ => None,
        }),
    );
    c.finish()
}
