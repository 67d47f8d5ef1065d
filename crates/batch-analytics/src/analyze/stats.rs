//! Exact summary statistics of one metric, streaming: constant memory except one
//! counter per distinct reading, for exact percentiles.

use std::collections::HashMap;

use crate::model::Summary;

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
}
