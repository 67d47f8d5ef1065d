//! One GPU's health counters and XID codes over a day.
//!
//! A counter's increases are summed per session, in the session's order; sessions are
//! then chained by their first reading, an increase from one session's last value to
//! the next one's first counting too. A decrease anywhere is a reset (the driver
//! reloaded, volatile counters cleared): it adds nothing and is counted.

use crate::model::{CounterDay, HealthCounter, HealthDay, PerCounter};

/// One counter over one session.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// (time, value) of the first and last readings.
    first: Option<(i64, f64)>,
    last: Option<(i64, f64)>,
    increase: f64,
    resets: u64,
}

/// The health accumulator of one GPU's day.
#[derive(Debug, Clone, Default)]
pub(super) struct Health {
    /// Per session index, per counter.
    sessions: Vec<PerCounter<Run>>,
    xid: std::collections::BTreeMap<i64, u64>,
}

impl Health {
    /// Adds one reading of session `session` at `t_us`.
    pub fn add(
        &mut self,
        session: usize,
        t_us: i64,
        counters: &PerCounter<Option<f64>>,
        xid: Option<i64>,
    ) {
        if let Some(code) = xid.filter(|c| *c != 0) {
            *self.xid.entry(code).or_default() += 1;
        }
        if counters.values().iter().all(Option::is_none) {
            return;
        }
        if self.sessions.len() <= session {
            self.sessions.resize(session + 1, PerCounter::default());
        }
        for (run, v) in self.sessions[session]
            .values_mut()
            .iter_mut()
            .zip(counters.values())
        {
            let Some(v) = *v else { continue };
            match run.last {
                Some((_, prev)) if v >= prev => run.increase += v - prev,
                Some(_) => run.resets += 1,
                None => run.first = Some((t_us, v)),
            }
            run.last = Some((t_us, v));
        }
    }

    /// The finished day.
    pub fn finish(self) -> HealthDay {
        let counters = PerCounter::from_fn(|c: HealthCounter| {
            let mut runs: Vec<&Run> = self
                .sessions
                .iter()
                .map(|s| &s[c])
                .filter(|r| r.first.is_some())
                .collect();
            runs.sort_by_key(|r| r.first.map(|(t, _)| t));
            let mut day: Option<CounterDay> = None;
            let mut prev_last: Option<f64> = None;
            let mut last_at = i64::MIN;
            for r in runs {
                let d = day.get_or_insert_with(CounterDay::default);
                d.new += r.increase;
                d.resets += r.resets;
                if let (Some(prev), Some((_, first))) = (prev_last, r.first) {
                    if first >= prev {
                        d.new += first - prev;
                    } else {
                        d.resets += 1;
                    }
                }
                if let Some((t, v)) = r.last {
                    prev_last = Some(v);
                    if t >= last_at {
                        last_at = t;
                        d.last = v;
                    }
                }
            }
            day
        });
        HealthDay {
            counters,
            xid: self.xid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(h: &mut Health, session: usize, t: i64, corrected: Option<f64>) {
        let mut c = PerCounter::default();
        c[HealthCounter::EccCorrected] = corrected;
        h.add(session, t, &c, None);
    }

    #[test]
    fn increases_chain_across_sessions_and_resets_add_nothing() {
        let mut h = Health::default();
        // Session 1 (read first, but later in time): 50 → 55.
        feed(&mut h, 1, 100, Some(50.0));
        feed(&mut h, 1, 101, Some(55.0));
        // Session 0: 10 → 12, reset to 0, → 3; then session 1 starts at 50: +47.
        feed(&mut h, 0, 1, Some(10.0));
        feed(&mut h, 0, 2, Some(12.0));
        feed(&mut h, 0, 3, Some(0.0));
        feed(&mut h, 0, 4, None);
        feed(&mut h, 0, 5, Some(3.0));
        h.add(0, 6, &PerCounter::default(), Some(79));
        h.add(0, 7, &PerCounter::default(), Some(0));
        let d = h.finish();
        let c = d.counters[HealthCounter::EccCorrected].expect("reported");
        assert_eq!(c.new, 2.0 + 3.0 + 47.0 + 5.0);
        assert_eq!((c.last, c.resets), (55.0, 1));
        assert_eq!(d.counters[HealthCounter::EccUncorrected], None);
        assert_eq!(
            d.xid.into_iter().collect::<Vec<_>>(),
            [(79, 1)],
            "0 is no code"
        );
    }
}
