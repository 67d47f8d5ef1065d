//! Streaming Pearson correlations of every pair of analysed metrics.

use crate::model::{AnalysisMetric, Correlation, PairCorrelation, PerMetric};

/// Minimum number of paired samples for a correlation.
pub const MIN_CORRELATION_PAIRS: u64 = 3;

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

/// The pair accumulators of one load state: one per [`AnalysisMetric::pairs`] pair,
/// in that order.
#[derive(Debug, Clone)]
pub struct CorrelationMatrix {
    pairs: Vec<PairStats>,
}

impl Default for CorrelationMatrix {
    fn default() -> Self {
        CorrelationMatrix {
            pairs: vec![PairStats::default(); AnalysisMetric::PAIR_COUNT],
        }
    }
}

impl CorrelationMatrix {
    /// Adds every pair of the sample's usable values.
    pub fn add(&mut self, values: &PerMetric<Option<f64>>) {
        const N: usize = AnalysisMetric::COUNT;
        let values = values.values();
        // `k` walks the pairs in `AnalysisMetric::pairs` order: the row-major upper
        // triangle, so a missing `x` skips its whole row at once.
        let mut k = 0;
        for i in 0..N {
            let Some(x) = values[i] else {
                k += N - i - 1;
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

    /// The correlation of every pair, in [`AnalysisMetric::pairs`] order.
    pub fn correlations(&self) -> Vec<PairCorrelation> {
        AnalysisMetric::pairs()
            .zip(&self.pairs)
            .map(|((a, b), p)| PairCorrelation {
                a,
                b,
                n: p.count(),
                correlation: p.correlation(a.column(), b.column()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
