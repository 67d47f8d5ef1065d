//! Sensors that read exactly 0 for a whole logging session are unsupported, not real
//! lows: fan RPM on cards without a tachometer, VRM temperatures on AMD boards, `% TDP`
//! on cards that do not report it.
//!
//! A session's verdict needs all of its rows, so it is found by a first pass over the
//! log ([`SessionZeros`] per session, kept as [`SessionMarks`]) and applied to the
//! samples by the second.

use gpustream::metric::METRIC_COUNT;
use gpustream::{Metric, Metrics};

// One bit per metric.
const _: () = assert!(METRIC_COUNT <= 128);

fn bit(m: Metric) -> u128 {
    1 << m.index()
}

/// Metrics for which a reading of exactly 0 for a whole session cannot be real.
fn zero_means_unsupported(m: Metric) -> bool {
    use Metric::*;
    matches!(
        m,
        CoreClock
            | MemoryClock
            | SmClock
            | GpuTemp
            | HotSpotTemp
            | MemoryTemp
            | CpuTemp
            | VrmTemp
            | Mem1VrmTemp
            | Mem2VrmTemp
            | CoreVoltage
            | MemoryVoltage
            | BoardPower
            | ChipPower
            | PcieSlotVoltage
            | Pin6_1Voltage
            | Pin6_2Voltage
            | Pin8_1Voltage
            | Pin8_2Voltage
            | Pin8_3Voltage
            | PwrSrcVoltage
            | FanRpm
            | Fan2Rpm
            | PowerTdp
    )
}

/// What one session's samples held: which metrics were present, which were not 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionZeros {
    present: u128,
    nonzero: u128,
}

impl SessionZeros {
    /// Adds one sample's metrics.
    pub fn add(&mut self, metrics: &Metrics) {
        for (m, v) in metrics.present() {
            self.present |= bit(m);
            if v != 0.0 {
                self.nonzero |= bit(m);
            }
        }
    }

    fn present(&self, m: Metric) -> bool {
        self.present & bit(m) != 0
    }

    fn nonzero(&self, m: Metric) -> bool {
        self.nonzero & bit(m) != 0
    }

    /// The metrics of the session to mark unsupported, one bit per [`Metric::index`].
    pub fn unsupported(&self) -> u128 {
        let mut out = 0;
        for &m in Metric::ALL {
            let all_zero = self.present(m) && !self.nonzero(m);
            if !zero_means_unsupported(m) || !all_zero {
                continue;
            }
            let keep_as_real = match m {
                // A stopped fan reads 0 % and 0 RPM: only a spinning fan with 0 RPM is a
                // dead sensor.
                Metric::FanRpm => !self.nonzero(Metric::FanPct) && self.present(Metric::FanPct),
                Metric::Fan2Rpm => !self.nonzero(Metric::Fan2Pct) && self.present(Metric::Fan2Pct),
                // 0 % TDP is only implausible while the card draws power.
                Metric::PowerTdp => {
                    !(self.nonzero(Metric::BoardPower) || self.nonzero(Metric::ChipPower))
                }
                _ => false,
            };
            if !keep_as_real {
                out |= bit(m);
            }
        }
        out
    }
}

/// The unsupported metrics of every session of a log, by session ordinal (the 1-based
/// count of headers; 0 for rows before the first header). Runs of sessions with the
/// same marks take one entry, so a log of many alike sessions stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionMarks {
    /// `(first ordinal, last ordinal, marks)`, ordinals increasing, no overlaps.
    runs: Vec<(u32, u32, u128)>,
}

impl SessionMarks {
    /// Records the marks of session `ordinal` (after those of lower ordinals).
    pub fn push(&mut self, ordinal: u32, marks: u128) {
        if marks == 0 {
            return;
        }
        match self.runs.last_mut() {
            Some((_, last, m)) if *m == marks && last.checked_add(1) == Some(ordinal) => {
                *last = ordinal;
            }
            _ => self.runs.push((ordinal, ordinal, marks)),
        }
    }

    /// The marks of session `ordinal` (0: none).
    pub fn get(&self, ordinal: u32) -> u128 {
        // Sessions are looked up in increasing order, mostly the same one again.
        let i = self.runs.partition_point(|&(_, last, _)| last < ordinal);
        match self.runs.get(i) {
            Some(&(first, _, m)) if first <= ordinal => m,
            _ => 0,
        }
    }

    /// Sets `out` to the metrics marked in `marks`, in catalogue order.
    pub fn write(marks: u128, out: &mut Vec<Metric>) {
        out.clear();
        if marks != 0 {
            out.extend(Metric::ALL.iter().filter(|m| marks & bit(**m) != 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(rows: &[&[(Metric, f64)]]) -> SessionZeros {
        let mut z = SessionZeros::default();
        for row in rows {
            let mut m = Metrics::default();
            for &(metric, v) in *row {
                m.set(metric, v);
            }
            z.add(&m);
        }
        z
    }

    fn marked(z: SessionZeros) -> Vec<Metric> {
        let mut v = Vec::new();
        SessionMarks::write(z.unsupported(), &mut v);
        v
    }

    #[test]
    fn a_sensor_at_zero_for_the_whole_session_is_unsupported() {
        use Metric::*;
        let z = zeros(&[
            &[
                (GpuTemp, 0.0),
                (FanRpm, 0.0),
                (FanPct, 40.0),
                (GpuLoad, 0.0),
            ],
            &[(GpuTemp, 0.0), (FanRpm, 0.0), (FanPct, 41.0)],
        ]);
        // Load 0 is real (idle); a spinning fan at 0 RPM is a dead sensor.
        assert_eq!(marked(z), [GpuTemp, FanRpm]);
        let z = zeros(&[&[(GpuTemp, 0.0)], &[(GpuTemp, 35.0)]]);
        assert!(marked(z).is_empty());
    }

    #[test]
    fn a_stopped_fan_and_tdp_without_power_are_real_zeros() {
        use Metric::*;
        let z = zeros(&[&[
            (FanRpm, 0.0),
            (FanPct, 0.0),
            (PowerTdp, 0.0),
            (BoardPower, 0.0),
        ]]);
        assert_eq!(marked(z), [BoardPower]);
        let z = zeros(&[&[(PowerTdp, 0.0), (ChipPower, 120.0)], &[(FanRpm, 0.0)]]);
        assert_eq!(marked(z), [FanRpm, PowerTdp]);
    }

    #[test]
    fn marks_are_found_by_ordinal_and_runs_merge() {
        let mut m = SessionMarks::default();
        m.push(0, 0b1);
        m.push(1, 0b1);
        m.push(2, 0);
        m.push(3, 0b10);
        m.push(4, 0b10);
        m.push(5, 0b10);
        m.push(7, 0b10);
        assert_eq!(m.runs.len(), 3);
        let got: Vec<u128> = (0..9).map(|o| m.get(o)).collect();
        assert_eq!(got, [1, 1, 0, 2, 2, 2, 0, 2, 0]);
    }
}
