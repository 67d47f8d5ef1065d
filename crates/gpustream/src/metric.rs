//! The canonical metric catalogue: every quantity a GPU sample can carry, defined once.
//!
//! The Arrow schema, the JSON wire format, the GPU-Z column aliases and the InfluxDB
//! fields are all derived from this table, so adding a metric here adds it everywhere.

use serde::{Deserialize, Serialize};

/// How a metric's values are typed in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A measured quantity (temperature, load, watts): `Float64`.
    Gauge,
    /// A monotonically growing counter (energy, ECC errors): `Float64` so it never wraps.
    Counter,
    /// A set of flags or a code (PerfCap bitmask, P-state, XID): `Int64`.
    Code,
}

impl MetricKind {
    /// Whether values of this kind are integers on the wire and in storage.
    pub const fn is_integer(self) -> bool {
        matches!(self, MetricKind::Code)
    }
}

macro_rules! metric_catalogue {
    ($( $variant:ident => $column:literal, $unit:literal, $kind:ident, $doc:literal; )*) => {
        /// A canonical metric. See [`Metric::ALL`] for the catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric {
            $( #[doc = $doc] $variant, )*
        }

        impl Metric {
            /// Every metric, in storage column order.
            pub const ALL: &'static [Metric] = &[ $( Metric::$variant, )* ];

            /// Column / field name used in Parquet, JSON and InfluxDB.
            pub const fn column(self) -> &'static str {
                match self { $( Metric::$variant => $column, )* }
            }

            /// Unit of the canonical value (already normalised: `C`, `MHz`, `W`, ...).
            pub const fn unit(self) -> &'static str {
                match self { $( Metric::$variant => $unit, )* }
            }

            /// Storage type of the metric.
            pub const fn kind(self) -> MetricKind {
                match self { $( Metric::$variant => MetricKind::$kind, )* }
            }

            /// Human description.
            pub const fn description(self) -> &'static str {
                match self { $( Metric::$variant => $doc, )* }
            }

            /// Looks a metric up by its column name.
            ///
            /// ```
            /// use gpustream::Metric;
            /// assert_eq!(Metric::from_column("gpu_temp_c"), Some(Metric::GpuTemp));
            /// assert_eq!(Metric::from_column("nope"), None);
            /// ```
            pub fn from_column(name: &str) -> Option<Metric> {
                Metric::from_column_bytes(name.as_bytes())
            }

            /// [`Metric::from_column`] on raw bytes: the wire decoder looks its keys up
            /// before (instead of) validating them as UTF-8, since only a catalogue
            /// name, which is ASCII, can match.
            pub fn from_column_bytes(name: &[u8]) -> Option<Metric> {
                // A hash table built once: a `match` on strings compares them one
                // after another, which the wire decoder (12+ lookups a message) felt.
                static TABLE: std::sync::OnceLock<ColumnTable> = std::sync::OnceLock::new();
                TABLE
                    .get_or_init(|| ColumnTable::new(&[$( ($column, Metric::$variant), )*]))
                    .get(name)
            }
        }
    };
}

metric_catalogue! {
    CoreClock => "core_clock_mhz", "MHz", Gauge, "Graphics/core clock";
    MemoryClock => "memory_clock_mhz", "MHz", Gauge, "Memory clock";
    SmClock => "sm_clock_mhz", "MHz", Gauge, "Streaming-multiprocessor clock (NVML)";
    UvdClock => "uvd_clock_mhz", "MHz", Gauge, "AMD video decoder clock";
    GpuTemp => "gpu_temp_c", "C", Gauge, "GPU core temperature";
    HotSpotTemp => "hot_spot_c", "C", Gauge, "GPU hot-spot (junction) temperature";
    MemoryTemp => "memory_temp_c", "C", Gauge, "Memory temperature";
    CpuTemp => "cpu_temp_c", "C", Gauge, "Host CPU temperature";
    VrmTemp => "vrm_temp_c", "C", Gauge, "GPU VRM temperature";
    Mem1VrmTemp => "mem1_vrm_temp_c", "C", Gauge, "Memory VRM 1 temperature";
    Mem2VrmTemp => "mem2_vrm_temp_c", "C", Gauge, "Memory VRM 2 temperature";
    GpuLoad => "gpu_load_pct", "%", Gauge, "GPU load";
    MemoryControllerLoad => "memory_controller_load_pct", "%", Gauge, "Memory controller load";
    VideoEngineLoad => "video_engine_load_pct", "%", Gauge, "Video engine load";
    BusInterfaceLoad => "bus_interface_load_pct", "%", Gauge, "Bus interface load";
    MemoryUsed => "memory_used_mb", "MB", Gauge, "Dedicated VRAM used";
    MemoryTotal => "memory_total_mb", "MB", Gauge, "Dedicated VRAM total";
    MemoryShared => "memory_shared_mb", "MB", Gauge, "Shared (dynamic) VRAM used";
    SystemMemoryUsed => "system_memory_used_mb", "MB", Gauge, "Host system memory used";
    FanPct => "fan_pct", "%", Gauge, "Fan (1) speed in percent";
    Fan2Pct => "fan2_pct", "%", Gauge, "Fan 2 speed in percent";
    FanRpm => "fan_rpm", "RPM", Gauge, "Fan (1) speed in RPM";
    Fan2Rpm => "fan2_rpm", "RPM", Gauge, "Fan 2 speed in RPM";
    CoreVoltage => "core_voltage_v", "V", Gauge, "GPU core voltage (VDDC)";
    MemoryVoltage => "memory_voltage_v", "V", Gauge, "Memory voltage";
    BoardPower => "board_power_w", "W", Gauge, "Board power draw";
    ChipPower => "chip_power_w", "W", Gauge, "GPU chip power draw";
    PowerTdp => "power_tdp_pct", "% TDP", Gauge, "Power consumption relative to TDP";
    PowerLimit => "power_limit_w", "W", Gauge, "Enforced power limit";
    Energy => "energy_mj", "mJ", Counter, "Energy counter since driver load";
    PcieSlotPower => "pcie_slot_power_w", "W", Gauge, "PCIe slot power";
    PcieSlotVoltage => "pcie_slot_voltage_v", "V", Gauge, "PCIe slot voltage";
    Pin6_1Power => "pin6_1_power_w", "W", Gauge, "6-pin #1 power";
    Pin6_1Voltage => "pin6_1_voltage_v", "V", Gauge, "6-pin #1 voltage";
    Pin6_2Power => "pin6_2_power_w", "W", Gauge, "6-pin #2 power";
    Pin6_2Voltage => "pin6_2_voltage_v", "V", Gauge, "6-pin #2 voltage";
    Pin8_1Power => "pin8_1_power_w", "W", Gauge, "8-pin #1 power";
    Pin8_1Voltage => "pin8_1_voltage_v", "V", Gauge, "8-pin #1 voltage";
    Pin8_2Power => "pin8_2_power_w", "W", Gauge, "8-pin #2 power";
    Pin8_2Voltage => "pin8_2_voltage_v", "V", Gauge, "8-pin #2 voltage";
    Pin8_3Power => "pin8_3_power_w", "W", Gauge, "8-pin #3 power";
    Pin8_3Voltage => "pin8_3_voltage_v", "V", Gauge, "8-pin #3 voltage";
    PwrSrcPower => "pwr_src_power_w", "W", Gauge, "PWR_SRC power draw";
    PwrSrcVoltage => "pwr_src_voltage_v", "V", Gauge, "PWR_SRC voltage";
    MvddcPower => "mvddc_power_w", "W", Gauge, "MVDDC (memory) power draw";
    MvddqPower => "mvddq_power_w", "W", Gauge, "MVDDQ power draw";
    UsbcPower => "usbc_power_w", "W", Gauge, "USB-C (VirtualLink) power draw";
    PerfCap => "perf_cap", "", Code, "GPU-Z PerfCap reason bitmask (1 power, 2 thermal, 4 rel. voltage, 8 max voltage, 16 idle, 32 SLI)";
    ThrottleReasons => "throttle_reasons", "", Code, "NVML clock-throttle reason bitmask";
    PState => "pstate", "", Code, "Performance state (0 = P0)";
    EccCorrected => "ecc_corrected", "", Counter, "ECC corrected (single-bit) error count";
    EccUncorrected => "ecc_uncorrected", "", Counter, "ECC uncorrected (double-bit) error count";
    PcieTx => "pcie_tx_kbps", "KB/s", Gauge, "PCIe transmit throughput";
    PcieRx => "pcie_rx_kbps", "KB/s", Gauge, "PCIe receive throughput";
    RetiredPages => "retired_pages", "", Counter, "Retired memory pages";
    RemappedRows => "remapped_rows", "", Counter, "Remapped memory rows";
    Xid => "xid", "", Code, "Last XID error code seen in this sample interval";
}

/// Number of canonical metrics.
pub const METRIC_COUNT: usize = Metric::ALL.len();

/// Column name → metric: open addressing over 256 slots (the catalogue has 57 names).
struct ColumnTable {
    slots: [Option<(&'static str, Metric)>; 256],
}

impl ColumnTable {
    fn hash(name: &[u8]) -> usize {
        // FNV-1a: a few instructions a byte, plenty for fixed, distinct names.
        let mut h: u32 = 0x811c_9dc5;
        for &b in name {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        (h ^ (h >> 16)) as usize & 255
    }

    fn new(entries: &[(&'static str, Metric)]) -> ColumnTable {
        let mut slots = [None; 256];
        for &(name, metric) in entries {
            let mut i = Self::hash(name.as_bytes());
            while slots[i].is_some() {
                i = (i + 1) & 255;
            }
            slots[i] = Some((name, metric));
        }
        ColumnTable { slots }
    }

    fn get(&self, name: &[u8]) -> Option<Metric> {
        let mut i = Self::hash(name);
        loop {
            match self.slots[i] {
                Some((n, m)) if n.as_bytes() == name => return Some(m),
                Some(_) => i = (i + 1) & 255,
                None => return None,
            }
        }
    }
}

impl Metric {
    /// Position of the metric in [`Metric::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.column())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Metric::from_column(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown metric `{name}`")))
    }
}

/// GPU-Z `PerfCap Reason` bits and their names.
pub const PERFCAP_REASONS: &[(u32, &str)] = &[
    (1, "power"),
    (2, "thermal"),
    (4, "reliability_voltage"),
    (8, "max_voltage"),
    (16, "idle"),
    (32, "sli_sync"),
];

/// Decodes a PerfCap bitmask into reason names; unknown bits become `bit<N>`.
///
/// ```
/// assert_eq!(gpustream::metric::perfcap_reasons(5), vec!["power", "reliability_voltage"]);
/// assert!(gpustream::metric::perfcap_reasons(0).is_empty());
/// ```
pub fn perfcap_reasons(mask: u32) -> Vec<String> {
    let mut out = Vec::new();
    for bit in 0..32 {
        let flag = 1u32 << bit;
        if mask & flag != 0 {
            match PERFCAP_REASONS.iter().find(|(b, _)| *b == flag) {
                Some((_, name)) => out.push((*name).to_string()),
                None => out.push(format!("bit{bit}")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert!(seen.insert(m.column()), "duplicate column {}", m.column());
            assert_eq!(Metric::from_column(m.column()), Some(*m));
            assert_eq!(m.index(), i);
        }
    }
}
