//! GPU-Z header cells → canonical metrics.
//!
//! Header cells look like `Name [unit]`; labels may be centre-padded, units may be
//! `°C`, `C` or `\u{FFFD}C`, and the same name can appear twice. Every spelling seen in
//! real logs maps to one canonical [`Metric`]; anything else is kept as an extra column.

use gpustream::Metric;

/// What a header column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// The `Date` column.
    Date,
    /// A canonical metric.
    Metric(Metric),
    /// A column the catalogue does not know (or a duplicate), kept under this name.
    Extra(String),
}

/// A parsed header: one [`Column`] per cell (the trailing empty cell already dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Columns in file order.
    pub columns: Vec<Column>,
    /// Labels as written (whitespace collapsed), for error messages.
    pub labels: Vec<String>,
}

/// Collapses runs of whitespace and trims.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits `Name [unit]` into (name, normalised unit). The unit keeps only ASCII
/// letters, digits, `%`, `/` and spaces, so `°C`, `C` and `\u{FFFD}C` all become `C`.
pub fn split_label(label: &str) -> (String, String) {
    let label = collapse(label);
    match (label.rfind('['), label.ends_with(']')) {
        (Some(open), true) => {
            let name = label[..open].trim().to_string();
            let raw_unit = &label[open + 1..label.len() - 1];
            let unit: String = raw_unit
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '%' | '/' | ' '))
                .collect();
            (name, collapse(&unit))
        }
        _ => (label, String::new()),
    }
}

/// Maps a label to its canonical metric, if it is a known spelling.
///
/// ```
/// use gpuz::columns::canonical;
/// use gpustream::Metric;
/// assert_eq!(canonical("GPU Temperature [\u{b0}C]"), Some(Metric::GpuTemp));
/// assert_eq!(canonical("  GPU Temperature [C]  "), Some(Metric::GpuTemp));
/// assert_eq!(canonical("Fan Speed [RPM]"), Some(Metric::FanRpm));
/// assert_eq!(canonical("Fan Speed [%]"), Some(Metric::FanPct));
/// assert_eq!(canonical("Flux Capacitor [GW]"), None);
/// ```
pub fn canonical(label: &str) -> Option<Metric> {
    let (name, unit) = split_label(label);
    let name = name.to_ascii_lowercase();
    let unit = unit.to_ascii_lowercase();
    use Metric::*;
    let m = match (name.as_str(), unit.as_str()) {
        ("gpu clock" | "gpu core clock" | "graphics clock", "mhz") => CoreClock,
        ("memory clock" | "gpu memory clock", "mhz") => MemoryClock,
        ("shader clock" | "sm clock", "mhz") => SmClock,
        ("uvd clock", "mhz") => UvdClock,
        ("gpu temperature", "c") => GpuTemp,
        ("hot spot" | "gpu temperature (hot spot)" | "gpu hot spot temperature", "c") => {
            HotSpotTemp
        }
        ("memory temperature" | "gpu memory temperature", "c") => MemoryTemp,
        ("gpu vrm temperature" | "vrm temperature", "c") => VrmTemp,
        ("mem1 vrm temperature", "c") => Mem1VrmTemp,
        ("mem2 vrm temperature", "c") => Mem2VrmTemp,
        ("gpu load", "%") => GpuLoad,
        ("memory controller load", "%") => MemoryControllerLoad,
        ("video engine load", "%") => VideoEngineLoad,
        ("bus interface load", "%") => BusInterfaceLoad,
        (
            "memory used" | "memory used (dedicated)" | "memory usage (dedicated)" | "memory usage",
            "mb",
        ) => MemoryUsed,
        ("memory used (dynamic)" | "memory usage (dynamic)", "mb") => MemoryShared,
        ("system memory used", "mb") => SystemMemoryUsed,
        ("fan speed (%)" | "fan speed" | "fan 1 speed (%)" | "fan 1 speed", "%") => FanPct,
        ("fan 2 speed (%)" | "fan 2 speed", "%") => Fan2Pct,
        ("fan speed (rpm)" | "fan speed" | "fan 1 speed (rpm)" | "fan 1 speed", "rpm") => FanRpm,
        ("fan 2 speed (rpm)" | "fan 2 speed", "rpm") => Fan2Rpm,
        ("gpu voltage" | "vddc", "v") => CoreVoltage,
        ("memory voltage" | "mvddc voltage", "v") => MemoryVoltage,
        ("board power draw", "w") => BoardPower,
        ("gpu chip power draw" | "gpu power", "w") => ChipPower,
        ("power consumption (%)" | "power consumption", "% tdp") => PowerTdp,
        ("perfcap reason", "") => PerfCap,
        ("pcie slot power", "w") => PcieSlotPower,
        ("pcie slot voltage", "v") => PcieSlotVoltage,
        ("6-pin #1 power", "w") => Pin6_1Power,
        ("6-pin #1 voltage", "v") => Pin6_1Voltage,
        ("6-pin #2 power", "w") => Pin6_2Power,
        ("6-pin #2 voltage", "v") => Pin6_2Voltage,
        ("8-pin #1 power", "w") => Pin8_1Power,
        ("8-pin #1 voltage", "v") => Pin8_1Voltage,
        ("8-pin #2 power", "w") => Pin8_2Power,
        ("8-pin #2 voltage", "v") => Pin8_2Voltage,
        ("8-pin #3 power", "w") => Pin8_3Power,
        ("8-pin #3 voltage", "v") => Pin8_3Voltage,
        ("pwr_src power draw" | "pwr_src power", "w") => PwrSrcPower,
        ("pwr_src voltage", "v") => PwrSrcVoltage,
        ("mvddc power draw", "w") => MvddcPower,
        ("mvddq power draw", "w") => MvddqPower,
        ("usb-c power draw", "w") => UsbcPower,
        (n, "c") if n.starts_with("cpu temperature") => CpuTemp,
        _ => return None,
    };
    Some(m)
}

/// Whether the first cell of a line marks a header.
pub fn is_header_cell(first: &str) -> bool {
    first
        .trim()
        .trim_start_matches('\u{feff}')
        .eq_ignore_ascii_case("date")
}

impl Header {
    /// Parses header cells (the trailing empty cell already dropped).
    pub fn parse(cells: &[&str]) -> Header {
        let mut seen = std::collections::HashSet::new();
        let mut extra_seen = std::collections::HashMap::<String, usize>::new();
        let mut columns = Vec::with_capacity(cells.len());
        let mut labels = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            let label = collapse(cell).replace('\u{fffd}', "\u{b0}");
            let col = if i == 0 && is_header_cell(cell) {
                Column::Date
            } else {
                match canonical(&label) {
                    Some(m) if seen.insert(m) => Column::Metric(m),
                    _ => {
                        // Unknown, or a second column with the same meaning (AMD writes
                        // `UVD Clock [MHz]` twice): keep it, numbered so names stay unique.
                        let n = extra_seen.entry(label.clone()).or_insert(0);
                        *n += 1;
                        let dup_of_metric = canonical(&label).is_some();
                        if *n == 1 && !dup_of_metric {
                            Column::Extra(label.clone())
                        } else {
                            Column::Extra(format!("{label} #{}", *n + usize::from(dup_of_metric)))
                        }
                    }
                }
            };
            columns.push(col);
            labels.push(label);
        }
        Header { columns, labels }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_columns_are_kept_apart() {
        let h = Header::parse(&[
            "Date",
            "UVD Clock [MHz]",
            "UVD Clock [MHz]",
            "X [V]",
            "X [V]",
        ]);
        assert_eq!(h.columns[1], Column::Metric(Metric::UvdClock));
        assert_eq!(h.columns[2], Column::Extra("UVD Clock [MHz] #2".into()));
        assert_eq!(h.columns[3], Column::Extra("X [V]".into()));
        assert_eq!(h.columns[4], Column::Extra("X [V] #2".into()));
    }

    #[test]
    fn unit_variants_normalise() {
        for l in [
            "GPU Temperature [°C]",
            "GPU Temperature [C]",
            "GPU Temperature [\u{fffd}C]",
            "   GPU  Temperature  [°C]   ",
        ] {
            assert_eq!(canonical(l), Some(Metric::GpuTemp), "{l}");
        }
        assert_eq!(
            canonical("Power Consumption (%) [% TDP]"),
            Some(Metric::PowerTdp)
        );
        assert_eq!(canonical("PerfCap Reason []"), Some(Metric::PerfCap));
        assert_eq!(canonical("CPU Temperature [°C]"), Some(Metric::CpuTemp));
    }
}
