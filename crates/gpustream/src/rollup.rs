//! One-minute (or any width) rollups: per GPU and event-time window, the count, min,
//! mean, max and last value of every metric.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::metric::Metric;
use crate::sample::{Sample, Source};

/// Aggregates of one metric in one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricAgg {
    /// Readings aggregated.
    pub count: u64,
    /// Smallest reading.
    pub min: f64,
    /// Mean of the readings.
    pub mean: f64,
    /// Largest reading.
    pub max: f64,
    /// Reading with the latest event time (ties: the later sequence number).
    pub last: f64,
}

/// A closed window of one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Window start (inclusive), UTC.
    pub window_start: DateTime<Utc>,
    /// Window end (exclusive), UTC.
    pub window_end: DateTime<Utc>,
    /// Host.
    pub host: String,
    /// GPU id.
    pub gpu: String,
    /// GPU index.
    pub gpu_index: u32,
    /// Source of the samples.
    pub source: Source,
    /// Samples in the window.
    pub count: u64,
    /// Per-metric aggregates (supported readings only), by column name.
    pub metrics: BTreeMap<String, MetricAgg>,
}

impl Rollup {
    /// Kafka key: the GPU.
    pub fn key(&self) -> String {
        format!("{}/{}", self.host, self.gpu)
    }
}

/// Running aggregate of one metric.
#[derive(Debug, Clone, Copy)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
    last_at: (DateTime<Utc>, u64),
}

/// An open window being filled.
#[derive(Debug, Clone)]
pub struct WindowAcc {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    host: String,
    gpu: String,
    gpu_index: u32,
    source: Source,
    count: u64,
    metrics: BTreeMap<Metric, Acc>,
}

impl WindowAcc {
    /// A new window for the sample's GPU.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>, s: &Sample) -> Self {
        WindowAcc {
            start,
            end,
            host: s.host.clone(),
            gpu: s.gpu.clone(),
            gpu_index: s.gpu_index,
            source: s.source,
            count: 0,
            metrics: BTreeMap::new(),
        }
    }

    /// Window start.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Window end (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Adds a sample (unsupported sensors are left out).
    pub fn add(&mut self, s: &Sample) {
        self.count += 1;
        for (m, v) in s.metrics.present() {
            if s.is_unsupported(m) {
                continue;
            }
            let at = (s.event_time, s.seq);
            let a = self.metrics.entry(m).or_insert(Acc {
                count: 0,
                sum: 0.0,
                min: v,
                max: v,
                last: v,
                last_at: at,
            });
            a.count += 1;
            a.sum += v;
            a.min = a.min.min(v);
            a.max = a.max.max(v);
            if at >= a.last_at {
                a.last = v;
                a.last_at = at;
            }
        }
    }

    /// The finished rollup.
    pub fn finish(self) -> Rollup {
        Rollup {
            window_start: self.start,
            window_end: self.end,
            host: self.host,
            gpu: self.gpu,
            gpu_index: self.gpu_index,
            source: self.source,
            count: self.count,
            metrics: self
                .metrics
                .into_iter()
                .map(|(m, a)| {
                    let agg = MetricAgg {
                        count: a.count,
                        min: a.min,
                        mean: a.sum / a.count as f64,
                        max: a.max,
                        last: a.last,
                    };
                    (m.column().to_string(), agg)
                })
                .collect(),
        }
    }
}
