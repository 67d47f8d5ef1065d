//! The closed sets the results are keyed by: the analysed metrics, the throttle
//! reasons and the load states, each with a fixed-size map keyed by it, so no figure
//! is ever looked up by position.

use std::fmt;
use std::ops::{Index, IndexMut};

use gpustream::Metric;

/// A metric the nightly job summarises (`daily_gpu`) and correlates pairwise
/// (`correlations`). The declaration order is the column and row order of every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnalysisMetric {
    /// GPU core temperature.
    GpuTemp,
    /// Hot-spot (junction) temperature.
    HotSpot,
    /// Memory temperature.
    MemoryTemp,
    /// Host CPU temperature.
    CpuTemp,
    /// GPU load.
    GpuLoad,
    /// Board power where usable, else chip power: GPUs that report only one of the
    /// two still get a power figure.
    Power,
    /// Dedicated memory used.
    MemoryUsed,
    /// Core clock.
    CoreClock,
    /// Memory clock.
    MemoryClock,
}

impl AnalysisMetric {
    /// Every analysed metric, in column order.
    pub const ALL: [AnalysisMetric; 9] = [
        AnalysisMetric::GpuTemp,
        AnalysisMetric::HotSpot,
        AnalysisMetric::MemoryTemp,
        AnalysisMetric::CpuTemp,
        AnalysisMetric::GpuLoad,
        AnalysisMetric::Power,
        AnalysisMetric::MemoryUsed,
        AnalysisMetric::CoreClock,
        AnalysisMetric::MemoryClock,
    ];

    /// Number of analysed metrics.
    pub const COUNT: usize = Self::ALL.len();

    /// Number of unordered pairs of distinct metrics (rows per GPU and load state of
    /// `correlations`).
    pub const PAIR_COUNT: usize = Self::COUNT * (Self::COUNT - 1) / 2;

    /// Position in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Column name, and prefix of the metric's statistic columns (`gpu_temp_c_p95`).
    pub const fn column(self) -> &'static str {
        match self {
            AnalysisMetric::GpuTemp => "gpu_temp_c",
            AnalysisMetric::HotSpot => "hot_spot_c",
            AnalysisMetric::MemoryTemp => "memory_temp_c",
            AnalysisMetric::CpuTemp => "cpu_temp_c",
            AnalysisMetric::GpuLoad => "gpu_load_pct",
            AnalysisMetric::Power => "power_w",
            AnalysisMetric::MemoryUsed => "memory_used_mb",
            AnalysisMetric::CoreClock => "core_clock_mhz",
            AnalysisMetric::MemoryClock => "memory_clock_mhz",
        }
    }

    /// Name for people, e.g. a chart title.
    pub const fn name(self) -> &'static str {
        match self {
            AnalysisMetric::GpuTemp => "GPU temperature",
            AnalysisMetric::HotSpot => "Hot-spot temperature",
            AnalysisMetric::MemoryTemp => "Memory temperature",
            AnalysisMetric::CpuTemp => "CPU temperature",
            AnalysisMetric::GpuLoad => "GPU load",
            AnalysisMetric::Power => "Power",
            AnalysisMetric::MemoryUsed => "Memory used",
            AnalysisMetric::CoreClock => "Core clock",
            AnalysisMetric::MemoryClock => "Memory clock",
        }
    }

    /// Abbreviation for tight spaces (the report's matrix labels).
    pub const fn short_name(self) -> &'static str {
        match self {
            AnalysisMetric::GpuTemp => "temp",
            AnalysisMetric::HotSpot => "hotspot",
            AnalysisMetric::MemoryTemp => "mem temp",
            AnalysisMetric::CpuTemp => "cpu temp",
            AnalysisMetric::GpuLoad => "load",
            AnalysisMetric::Power => "power",
            AnalysisMetric::MemoryUsed => "mem used",
            AnalysisMetric::CoreClock => "core clk",
            AnalysisMetric::MemoryClock => "mem clk",
        }
    }

    /// Unit for people.
    pub const fn unit(self) -> &'static str {
        match self {
            AnalysisMetric::GpuTemp
            | AnalysisMetric::HotSpot
            | AnalysisMetric::MemoryTemp
            | AnalysisMetric::CpuTemp => "°C",
            AnalysisMetric::GpuLoad => "%",
            AnalysisMetric::Power => "W",
            AnalysisMetric::MemoryUsed => "MB",
            AnalysisMetric::CoreClock | AnalysisMetric::MemoryClock => "MHz",
        }
    }

    /// The catalogue metrics a value is taken from, in order of preference: the first
    /// usable one wins.
    pub const fn sources(self) -> &'static [Metric] {
        match self {
            AnalysisMetric::GpuTemp => &[Metric::GpuTemp],
            AnalysisMetric::HotSpot => &[Metric::HotSpotTemp],
            AnalysisMetric::MemoryTemp => &[Metric::MemoryTemp],
            AnalysisMetric::CpuTemp => &[Metric::CpuTemp],
            AnalysisMetric::GpuLoad => &[Metric::GpuLoad],
            AnalysisMetric::Power => &[Metric::BoardPower, Metric::ChipPower],
            AnalysisMetric::MemoryUsed => &[Metric::MemoryUsed],
            AnalysisMetric::CoreClock => &[Metric::CoreClock],
            AnalysisMetric::MemoryClock => &[Metric::MemoryClock],
        }
    }

    /// The unordered pairs `(a, b)` of distinct metrics, `a` before `b` in
    /// [`ALL`](Self::ALL) order: the row order of `correlations`.
    pub fn pairs() -> impl Iterator<Item = (AnalysisMetric, AnalysisMetric)> {
        Self::ALL
            .iter()
            .enumerate()
            .flat_map(|(i, a)| Self::ALL[i + 1..].iter().map(move |b| (*a, *b)))
    }
}

/// The column name.
impl fmt::Display for AnalysisMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.column())
    }
}

/// A throttle reason of the `throttled_<reason>_share` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThrottleReason {
    /// Power limit.
    Power,
    /// Thermal limit.
    Thermal,
    /// Voltage limits (reliability or maximum voltage).
    Voltage,
    /// Hardware slowdown.
    HwSlowdown,
    /// Any other reported reason.
    Other,
}

impl ThrottleReason {
    /// Every reason, in column order.
    pub const ALL: [ThrottleReason; 5] = [
        ThrottleReason::Power,
        ThrottleReason::Thermal,
        ThrottleReason::Voltage,
        ThrottleReason::HwSlowdown,
        ThrottleReason::Other,
    ];

    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Name inside the column name (`throttled_<name>_share`).
    pub const fn name(self) -> &'static str {
        match self {
            ThrottleReason::Power => "power",
            ThrottleReason::Thermal => "thermal",
            ThrottleReason::Voltage => "voltage",
            ThrottleReason::HwSlowdown => "hw_slowdown",
            ThrottleReason::Other => "other",
        }
    }
}

/// A cumulative counter of card health (`health` table): the catalogue counters of
/// memory errors and their repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthCounter {
    /// ECC errors corrected (single-bit).
    EccCorrected,
    /// ECC errors not corrected (double-bit).
    EccUncorrected,
    /// Memory pages retired (GPUs before Ampere).
    RetiredPages,
    /// Memory rows remapped (Ampere and later).
    RemappedRows,
}

impl HealthCounter {
    /// Every counter, in column order.
    pub const ALL: [HealthCounter; 4] = [
        HealthCounter::EccCorrected,
        HealthCounter::EccUncorrected,
        HealthCounter::RetiredPages,
        HealthCounter::RemappedRows,
    ];

    /// Number of counters.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The catalogue metric it is read from.
    pub const fn source(self) -> Metric {
        match self {
            HealthCounter::EccCorrected => Metric::EccCorrected,
            HealthCounter::EccUncorrected => Metric::EccUncorrected,
            HealthCounter::RetiredPages => Metric::RetiredPages,
            HealthCounter::RemappedRows => Metric::RemappedRows,
        }
    }

    /// Column name, and prefix of its `health` columns (`ecc_corrected_new`).
    pub const fn column(self) -> &'static str {
        self.source().column()
    }
}

/// Which samples a correlation is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoadState {
    /// Every sample.
    All,
    /// Samples below the idle load.
    Idle,
    /// Samples at or above the busy load.
    Busy,
}

impl LoadState {
    /// Every load state, in row order of `correlations`.
    pub const ALL: [LoadState; 3] = [LoadState::All, LoadState::Idle, LoadState::Busy];

    /// Number of load states.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The `load_state` column value.
    pub const fn name(self) -> &'static str {
        match self {
            LoadState::All => "all",
            LoadState::Idle => "idle",
            LoadState::Busy => "busy",
        }
    }
}

/// Defines a map with one `T` per value of a key enum (which has `ALL`, `COUNT` and
/// `index`): a plain array underneath, indexed by the key.
macro_rules! keyed_map {
    ($(#[$doc:meta])* $map:ident, $key:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct $map<T>([T; $key::COUNT]);

        impl<T> $map<T> {
            /// A map with `f(key)` for every key.
            pub fn from_fn(f: impl FnMut($key) -> T) -> Self {
                $map($key::ALL.map(f))
            }

            /// The values, in key order.
            pub fn values(&self) -> &[T; $key::COUNT] {
                &self.0
            }

            /// The values, mutably, in key order.
            pub fn values_mut(&mut self) -> &mut [T; $key::COUNT] {
                &mut self.0
            }

            /// Keys and values, in key order.
            pub fn iter(&self) -> impl Iterator<Item = ($key, &T)> {
                $key::ALL.into_iter().zip(&self.0)
            }

            /// A map of `f(value)` for every value.
            pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> $map<U> {
                $map::from_fn(|k| f(&self.0[k.index()]))
            }
        }

        impl<T> Index<$key> for $map<T> {
            type Output = T;
            fn index(&self, key: $key) -> &T {
                &self.0[key.index()]
            }
        }

        impl<T> IndexMut<$key> for $map<T> {
            fn index_mut(&mut self, key: $key) -> &mut T {
                &mut self.0[key.index()]
            }
        }
    };
}

keyed_map!(
    /// One value per [`AnalysisMetric`].
    PerMetric,
    AnalysisMetric
);
keyed_map!(
    /// One value per [`ThrottleReason`].
    PerReason,
    ThrottleReason
);
keyed_map!(
    /// One value per [`HealthCounter`].
    PerCounter,
    HealthCounter
);
keyed_map!(
    /// One value per [`LoadState`].
    PerLoadState,
    LoadState
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_their_positions() {
        for (i, m) in AnalysisMetric::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
        }
        for (i, r) in ThrottleReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        for (i, c) in HealthCounter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        for (i, s) in LoadState::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn pairs_are_each_unordered_pair_once_in_order() {
        let pairs: Vec<_> = AnalysisMetric::pairs().collect();
        assert_eq!(pairs.len(), AnalysisMetric::PAIR_COUNT);
        assert_eq!(pairs[0], (AnalysisMetric::GpuTemp, AnalysisMetric::HotSpot));
        assert_eq!(
            pairs[AnalysisMetric::PAIR_COUNT - 1],
            (AnalysisMetric::CoreClock, AnalysisMetric::MemoryClock)
        );
        assert!(pairs.iter().all(|(a, b)| a < b));
    }

    #[test]
    fn every_source_is_a_catalogue_metric_and_power_prefers_the_board() {
        assert_eq!(
            AnalysisMetric::Power.sources(),
            &[Metric::BoardPower, Metric::ChipPower]
        );
        for m in AnalysisMetric::ALL {
            assert!(!m.sources().is_empty(), "{m}");
            if m != AnalysisMetric::Power {
                assert_eq!(m.sources()[0].column(), m.column());
            }
        }
    }
}
