//! Feeding the accumulators: sample batches in, the model's [`DayResult`] out. No
//! storage here: [`super::scan`] decodes the batches this consumes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{Array, Float64Array, Int64Array};

use super::scan::{AnomalyEvent, SampleBatch};
use crate::analyze::{GpuAccumulator, LocalHours, Reading};
use crate::model::{
    Allocations, AnalysisMetric, AnalysisOptions, AnomalyRow, DayResult, HealthCounter,
    HealthHistory,
};

/// One UTC day being analysed: per-GPU accumulators, created as GPUs appear.
pub struct DayAccumulator {
    date: NaiveDate,
    day_start_us: i64,
    options: AnalysisOptions,
    gpus: Vec<GpuAccumulator>,
    /// (host, GPU) → position in `gpus`.
    index: HashMap<(String, String), usize>,
    hours: LocalHours,
    /// Who held which GPU when (`None`: no labels given).
    allocations: Option<Arc<Allocations>>,
    /// Reused for every row.
    reading: Reading,
}

impl DayAccumulator {
    /// An empty day, its GPUs held as `allocations` say (`None`: no labels).
    pub fn new(
        date: NaiveDate,
        options: &AnalysisOptions,
        allocations: Option<Arc<Allocations>>,
    ) -> DayAccumulator {
        DayAccumulator {
            date,
            day_start_us: date.and_time(NaiveTime::MIN).and_utc().timestamp_micros(),
            options: options.clone(),
            gpus: Vec::new(),
            index: HashMap::new(),
            hours: LocalHours::new(options.timezone),
            allocations,
            reading: Reading::default(),
        }
    }

    /// Adds a batch of samples. Rows without a time, host or GPU are skipped; non-finite
    /// values count as missing.
    pub fn feed(&mut self, batch: &SampleBatch) {
        let opt_f = |a: &Float64Array, r: usize| (!a.is_null(r)).then(|| a.value(r));
        let opt_i = |a: &Int64Array, r: usize| (!a.is_null(r)).then(|| a.value(r));
        // Rows come grouped by GPU: look the GPU up only when it changes.
        let mut current: Option<usize> = None;
        for r in 0..batch.num_rows() {
            if batch.time.is_null(r) || batch.host.is_null(r) || batch.gpu.is_null(r) {
                continue;
            }
            let (h, g) = (batch.host.value(r), batch.gpu.value(r));
            let same = current.is_some_and(|i| self.gpus[i].host == h && self.gpus[i].gpu == g);
            if !same {
                current = Some(self.gpu_index(h, g));
            }
            let Some(i) = current else { continue };
            let acc = &mut self.gpus[i];
            if acc.gpu_name.is_none() && !batch.gpu_name.is_null(r) {
                acc.gpu_name = Some(batch.gpu_name.value(r).to_string());
            }
            let reading = &mut self.reading;
            reading.t_us = batch.time.value(r);
            for m in AnalysisMetric::ALL {
                reading.values[m] = opt_f(batch.metric(m), r).filter(|v| v.is_finite());
            }
            reading.energy_mj = opt_f(&batch.energy_mj, r).filter(|v| v.is_finite());
            reading.perf_cap = opt_i(&batch.perf_cap, r);
            reading.throttle_reasons = opt_i(&batch.throttle_reasons, r);
            for c in HealthCounter::ALL {
                reading.counters[c] = opt_f(batch.counter(c), r).filter(|v| v.is_finite());
            }
            reading.xid = opt_i(&batch.xid, r);
            let session = if batch.session.is_null(r) {
                ""
            } else {
                batch.session.value(r)
            };
            let hour = self.hours.hour(reading.t_us);
            acc.add(session, reading, hour, &self.options);
        }
    }

    fn gpu_index(&mut self, host: &str, gpu: &str) -> usize {
        let key = (host.to_string(), gpu.to_string());
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        let segments = self
            .allocations
            .as_ref()
            .map(|a| a.segments(host, gpu))
            .unwrap_or_default();
        self.gpus
            .push(GpuAccumulator::new(host, gpu, self.day_start_us, segments));
        self.index.insert(key, self.gpus.len() - 1);
        self.gpus.len() - 1
    }

    /// The analysed day, with the day's anomaly events summarised and each GPU's
    /// previous health days.
    pub fn finish(self, anomalies: &[AnomalyEvent], history: Vec<HealthHistory>) -> DayResult {
        let mut gpus = self.gpus;
        gpus.sort_by(|a, b| (&a.host, &a.gpu).cmp(&(&b.host, &b.gpu)));
        let mut fleet = GpuAccumulator::new("*", "*", self.day_start_us, Vec::new());
        for g in &gpus {
            fleet.merge_fleet(g);
        }
        let opts = &self.options;
        DayResult {
            date: self.date,
            gpus: gpus.into_iter().map(|g| g.finish(opts)).collect(),
            fleet: fleet.finish(opts),
            anomalies: anomaly_rows(anomalies),
            allocations_known: self.allocations.is_some(),
            owners: self
                .allocations
                .as_ref()
                .map(|a| a.owners().to_vec())
                .unwrap_or_default(),
            health_history: history,
            options: self.options,
        }
    }
}

/// Summarises anomaly events per GPU, rule and severity, sorted by those.
pub fn anomaly_rows(events: &[AnomalyEvent]) -> Vec<AnomalyRow> {
    #[derive(Default)]
    struct Episode {
        fired: bool,
        resolved_s: Option<f64>,
    }
    type Groups<'a> =
        BTreeMap<(&'a str, &'a str, &'a str, &'a str), (AnomalyRow, HashMap<&'a str, Episode>)>;
    let mut groups: Groups = BTreeMap::new();
    for e in events {
        let key = (
            e.host.as_str(),
            e.gpu.as_str(),
            e.rule.as_str(),
            e.severity.as_str(),
        );
        let (row, episodes) = groups.entry(key).or_insert_with(|| {
            (
                AnomalyRow {
                    host: e.host.clone(),
                    gpu: e.gpu.clone(),
                    rule: e.rule.clone(),
                    severity: e.severity.clone(),
                    ..Default::default()
                },
                HashMap::new(),
            )
        });
        let ep = episodes.entry(e.anomaly_id.as_str()).or_default();
        if let Some(v) = e.value {
            row.max_value = Some(row.max_value.map_or(v, |m: f64| m.max(v)));
        }
        if e.state == "resolved" {
            row.resolved += 1;
            let d = (e.event_us - e.started_us) as f64 / 1e6;
            ep.resolved_s = Some(d.max(0.0));
        } else {
            row.fired += 1;
            ep.fired = true;
        }
    }
    groups
        .into_values()
        .map(|(mut row, episodes)| {
            row.episodes = episodes.len() as u64;
            row.open_at_end = episodes
                .values()
                .filter(|e| e.fired && e.resolved_s.is_none())
                .count() as u64;
            let durations: Vec<f64> = episodes.values().filter_map(|e| e.resolved_s).collect();
            if !durations.is_empty() {
                let total: f64 = durations.iter().sum();
                row.total_duration_s = Some(total);
                row.mean_duration_s = Some(total / durations.len() as f64);
                row.max_duration_s = durations.iter().copied().reduce(f64::max);
            }
            row
        })
        .collect()
}
