//! NVML clock-throttle (a.k.a. "clocks event") reason bits, as the `throttle_reasons`
//! metric carries them, and their names.
//!
//! The values are NVML's `nvmlClocksThrottleReason*` constants; the live sampler reads
//! them from the driver and the fleet simulator sets them the way a real GPU would.

/// Nothing is running on the GPU; clocks are lowered on purpose.
pub const GPU_IDLE: u64 = 0x1;
/// Clocks are held by an application-clocks setting.
pub const APPLICATIONS_CLOCKS_SETTING: u64 = 0x2;
/// The software power cap (power limit) holds clocks back.
pub const SW_POWER_CAP: u64 = 0x4;
/// Hardware slowdown (temperature, power brake or external signal), clocks halved or worse.
pub const HW_SLOWDOWN: u64 = 0x8;
/// Clocks synchronised with other GPUs (sync boost).
pub const SYNC_BOOST: u64 = 0x10;
/// The driver lowers clocks because the GPU is too hot.
pub const SW_THERMAL_SLOWDOWN: u64 = 0x20;
/// The hardware lowers clocks because the GPU is too hot.
pub const HW_THERMAL_SLOWDOWN: u64 = 0x40;
/// The external power brake assertion lowers clocks (power supply overload).
pub const HW_POWER_BRAKE_SLOWDOWN: u64 = 0x80;
/// Clocks follow the display clock setting.
pub const DISPLAY_CLOCK_SETTING: u64 = 0x100;

/// Every known reason bit with its name, in bit order.
pub const THROTTLE_REASONS: &[(u64, &str)] = &[
    (GPU_IDLE, "gpu_idle"),
    (APPLICATIONS_CLOCKS_SETTING, "applications_clocks_setting"),
    (SW_POWER_CAP, "sw_power_cap"),
    (HW_SLOWDOWN, "hw_slowdown"),
    (SYNC_BOOST, "sync_boost"),
    (SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
    (HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
    (HW_POWER_BRAKE_SLOWDOWN, "hw_power_brake_slowdown"),
    (DISPLAY_CLOCK_SETTING, "display_clock_setting"),
];

/// Bits that mean "too hot".
pub const THERMAL: u64 = SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN;

/// Decodes a throttle-reason bitmask into names; unknown bits become `bit<N>`.
///
/// ```
/// use gpustream::throttle::*;
/// assert_eq!(decode(SW_POWER_CAP | HW_THERMAL_SLOWDOWN), vec!["sw_power_cap", "hw_thermal_slowdown"]);
/// assert_eq!(decode(1 << 12), vec!["bit12"]);
/// assert!(decode(0).is_empty());
/// ```
pub fn decode(mask: u64) -> Vec<String> {
    (0..64)
        .map(|bit| 1u64 << bit)
        .filter(|flag| mask & flag != 0)
        .map(
            |flag| match THROTTLE_REASONS.iter().find(|(b, _)| *b == flag) {
                Some((_, name)) => (*name).to_string(),
                None => format!("bit{}", flag.trailing_zeros()),
            },
        )
        .collect()
}
