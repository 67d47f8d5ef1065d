//! Card health (`health` table): memory-error counters, XID events, a risk score and
//! the drain list.
//!
//! The score adds fixed points per sign of a failing card (see [`xid_points`] and the
//! constants below) and caps at 100; a card with at least [`DRAIN_SCORE`] is on the
//! drain list. Where the weights come from, and what the studies behind them do and do
//! not say, is written down in `docs/batch-analytics.md` (section "health").

use std::collections::BTreeMap;

use super::{GpuDay, HealthCounter, PerCounter};

/// Points for uncorrected ECC errors that day.
pub const UNCORRECTED_ECC_POINTS: u32 = 40;
/// Points for rows remapped or pages retired that day (a remap takes effect at the
/// next GPU reset).
pub const REMAP_POINTS: u32 = 40;
/// Points for uncorrected ECC errors on one of the previous [`HISTORY_DAYS`] days.
pub const RECENT_UNCORRECTED_POINTS: u32 = 20;
/// Points for a rise of corrected ECC errors (see [`CORRECTED_RISE_MIN`]).
pub const CORRECTED_RISE_POINTS: u32 = 20;
/// A corrected-ECC rise: at least this many new corrected errors in the day ...
pub const CORRECTED_RISE_MIN: f64 = 100.0;
/// ... and at least this many times the card's mean per day of the previous days.
pub const CORRECTED_RISE_FACTOR: f64 = 10.0;
/// Score from which a card is on the drain list.
pub const DRAIN_SCORE: u32 = 40;
/// Highest score.
pub const MAX_SCORE: u32 = 100;
/// Previous days the trends and the recurrence look back on.
pub const HISTORY_DAYS: u64 = 7;

/// What kind of fault an XID code reports, after NVIDIA's XID catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XidClass {
    /// The card (memory, bus, firmware, interconnect).
    Hardware,
    /// Usually the application (illegal access, exception), not the card.
    Application,
    /// Not classified here.
    Unknown,
}

/// Points of an XID code (counted once per distinct code and day) and its class.
///
/// - 79 (fallen off the bus): 60;
/// - 48 (double-bit ECC), 64 (row-remap failure), 94/95 (contained/uncontained ECC),
///   119/120 (GSP timeout/error): 40 each;
/// - 61/62 (internal micro-controller): 30;
/// - 74 (NVLink), 92 (high single-bit ECC rate): 20;
/// - 63 (ECC page retirement / row remap recorded): 10;
/// - 13, 31, 43, 45 (application-caused, per NVIDIA): 5;
/// - any other code: 10.
pub const fn xid_points(code: i64) -> (u32, XidClass) {
    match code {
        79 => (60, XidClass::Hardware),
        48 | 64 | 94 | 95 | 119 | 120 => (40, XidClass::Hardware),
        61 | 62 => (30, XidClass::Hardware),
        74 | 92 => (20, XidClass::Hardware),
        63 => (10, XidClass::Hardware),
        13 | 31 | 43 | 45 => (5, XidClass::Application),
        _ => (10, XidClass::Unknown),
    }
}

/// One counter over one GPU's day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CounterDay {
    /// Sum of its increases (a decrease is a reset and adds nothing).
    pub new: f64,
    /// Its last value of the day.
    pub last: f64,
    /// Decreases seen (resets).
    pub resets: u64,
}

/// The health figures of one GPU's day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthDay {
    /// Per counter; `None` when the GPU never reported it that day.
    pub counters: PerCounter<Option<CounterDay>>,
    /// XID code → samples that reported it, by code.
    pub xid: BTreeMap<i64, u64>,
}

impl HealthDay {
    /// New increments of `counter` (0 when not reported).
    pub fn new_of(&self, counter: HealthCounter) -> f64 {
        self.counters[counter].map_or(0.0, |c| c.new)
    }

    /// Samples with an XID code.
    pub fn xid_events(&self) -> u64 {
        self.xid.values().sum()
    }

    /// Samples with a hardware XID code.
    pub fn hardware_xid_events(&self) -> u64 {
        self.xid
            .iter()
            .filter(|(code, _)| xid_points(**code).1 == XidClass::Hardware)
            .map(|(_, n)| n)
            .sum()
    }

    /// The codes as `code:samples` pairs, by code, `;`-separated (`48:1;79:2`).
    pub fn xid_codes(&self) -> Option<String> {
        (!self.xid.is_empty()).then(|| {
            self.xid
                .iter()
                .map(|(c, n)| format!("{c}:{n}"))
                .collect::<Vec<_>>()
                .join(";")
        })
    }
}

/// A GPU's `health` rows of the previous days (up to [`HISTORY_DAYS`]), summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthHistory {
    /// Host.
    pub host: String,
    /// GPU.
    pub gpu: String,
    /// Days with a row.
    pub days: u64,
    /// Σ new corrected ECC errors.
    pub ecc_corrected: f64,
    /// Σ new uncorrected ECC errors.
    pub ecc_uncorrected: f64,
}

impl HealthHistory {
    /// Mean new corrected errors per day with a row.
    pub fn corrected_per_day(&self) -> Option<f64> {
        (self.days > 0).then(|| self.ecc_corrected / self.days as f64)
    }
}

/// The risk of one card: its score and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Risk {
    /// 0–[`MAX_SCORE`].
    pub score: u32,
    /// Each sign that added points, as `name:points`, in the order of the definition.
    pub reasons: Vec<String>,
}

impl Risk {
    /// Whether the card is on the drain list.
    pub fn drain(&self) -> bool {
        self.score >= DRAIN_SCORE
    }

    fn add(&mut self, name: impl Into<String>, points: u32) {
        self.score = (self.score + points).min(MAX_SCORE);
        self.reasons.push(format!("{}:{points}", name.into()));
    }
}

/// Scores one card's day, with its previous days when known.
pub fn assess(health: &HealthDay, history: Option<&HealthHistory>) -> Risk {
    let mut risk = Risk::default();
    if health.new_of(HealthCounter::EccUncorrected) > 0.0 {
        risk.add("uncorrected_ecc", UNCORRECTED_ECC_POINTS);
    }
    if health.new_of(HealthCounter::RemappedRows) > 0.0
        || health.new_of(HealthCounter::RetiredPages) > 0.0
    {
        risk.add("remap", REMAP_POINTS);
    }
    for code in health.xid.keys() {
        risk.add(format!("xid_{code}"), xid_points(*code).0);
    }
    if let Some(h) = history {
        if h.ecc_uncorrected > 0.0 {
            risk.add("recent_uncorrected_ecc", RECENT_UNCORRECTED_POINTS);
        }
        let corrected = health.new_of(HealthCounter::EccCorrected);
        if let Some(mean) = h.corrected_per_day()
            && corrected >= CORRECTED_RISE_MIN
            && corrected >= CORRECTED_RISE_FACTOR * mean
        {
            risk.add("corrected_ecc_rise", CORRECTED_RISE_POINTS);
        }
    }
    risk
}

/// One row of `health`.
#[derive(Debug, Clone)]
pub struct HealthRow<'a> {
    /// The GPU.
    pub gpu: &'a GpuDay,
    /// Its previous days, when any were analysed.
    pub history: Option<&'a HealthHistory>,
    /// Its risk.
    pub risk: Risk,
}

/// The `health` rows: one per GPU of the day, in GPU order.
pub fn health_rows(day: &super::DayResult) -> Vec<HealthRow<'_>> {
    day.gpus
        .iter()
        .map(|g| {
            let history = day
                .health_history
                .iter()
                .find(|h| h.host == g.host && h.gpu == g.gpu);
            HealthRow {
                gpu: g,
                history,
                risk: assess(&g.health, history),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(uncorrected: f64, remapped: f64, corrected: f64, xids: &[i64]) -> HealthDay {
        let mut h = HealthDay::default();
        let c = |new| {
            Some(CounterDay {
                new,
                last: new,
                resets: 0,
            })
        };
        h.counters[HealthCounter::EccUncorrected] = c(uncorrected);
        h.counters[HealthCounter::RemappedRows] = c(remapped);
        h.counters[HealthCounter::EccCorrected] = c(corrected);
        for x in xids {
            *h.xid.entry(*x).or_default() += 1;
        }
        h
    }

    #[test]
    fn scores_add_up_cap_and_drain_from_forty() {
        assert_eq!(assess(&HealthDay::default(), None), Risk::default());
        let r = assess(&day(1.0, 1.0, 0.0, &[79, 79]), None);
        assert_eq!(r.score, 100, "40 + 40 + 60, capped");
        assert_eq!(r.reasons, ["uncorrected_ecc:40", "remap:40", "xid_79:60"]);
        assert!(r.drain());
        // Application XIDs alone never drain a card.
        let r = assess(&day(0.0, 0.0, 0.0, &[13, 31, 43, 45]), None);
        assert_eq!((r.score, r.drain()), (20, false));
        let r = assess(&day(0.0, 0.0, 0.0, &[74]), None);
        assert_eq!((r.score, r.drain()), (20, false), "NVLink alone");
        assert!(assess(&day(0.0, 0.0, 0.0, &[48]), None).drain());
        // Corrected errors need a history to be a rise.
        let busy = day(0.0, 0.0, 500.0, &[]);
        assert_eq!(assess(&busy, None).score, 0);
        let quiet = HealthHistory {
            days: 7,
            ecc_corrected: 70.0,
            ..HealthHistory::default()
        };
        let r = assess(&busy, Some(&quiet));
        assert_eq!(r.reasons, ["corrected_ecc_rise:20"]);
        let noisy = HealthHistory {
            ecc_corrected: 7000.0,
            ..quiet.clone()
        };
        assert_eq!(assess(&busy, Some(&noisy)).score, 0, "500 < 10 × 1000");
        let recurring = HealthHistory {
            ecc_uncorrected: 1.0,
            ..quiet
        };
        let r = assess(&day(1.0, 0.0, 0.0, &[]), Some(&recurring));
        assert_eq!(r.score, 60);
    }

    #[test]
    fn xid_codes_read_as_pairs() {
        let h = day(0.0, 0.0, 0.0, &[79, 13, 79]);
        assert_eq!(h.xid_codes().as_deref(), Some("13:1;79:2"));
        assert_eq!((h.xid_events(), h.hardware_xid_events()), (3, 2));
        assert_eq!(HealthDay::default().xid_codes(), None);
    }
}
