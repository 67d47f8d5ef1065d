//! A simulated GPU: correlated, deterministic signals for people without hardware.
//!
//! Load alternates between idle and busy phases; power follows load; temperature follows
//! power through a first-order thermal lag; fans follow temperature; clocks drop when the
//! temperature reaches its limit (thermal throttling, PerfCap bit 2).

use chrono::{Duration as ChronoDuration, NaiveDateTime};

use crate::rng::Rng;

/// One simulated reading.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReading {
    /// GPU load %.
    pub load: f64,
    /// Board power W.
    pub power: f64,
    /// GPU temperature °C.
    pub temp: f64,
    /// Hot-spot temperature °C.
    pub hot_spot: f64,
    /// Fan %.
    pub fan: f64,
    /// Core clock MHz.
    pub core_clock: f64,
    /// Memory clock MHz.
    pub mem_clock: f64,
    /// Memory used MB.
    pub mem_used: f64,
    /// Memory controller load %.
    pub mem_load: f64,
    /// PerfCap bitmask.
    pub perf_cap: u32,
    /// CPU temperature °C.
    pub cpu_temp: f64,
}

/// The physical model of one GPU.
#[derive(Debug, Clone)]
pub struct GpuModel {
    rng: Rng,
    busy: bool,
    phase_left: u32,
    temp: f64,
    load: f64,
    mem_used: f64,
    /// Idle power, W.
    pub idle_power: f64,
    /// Power limit, W.
    pub power_limit: f64,
    /// Temperature at which clocks are pulled back.
    pub temp_limit: f64,
    /// Ambient temperature.
    pub ambient: f64,
}

impl GpuModel {
    /// A 250 W-class card.
    pub fn new(seed: u64) -> Self {
        GpuModel {
            rng: Rng::new(seed),
            busy: false,
            phase_left: 0,
            temp: 35.0,
            load: 2.0,
            mem_used: 600.0,
            idle_power: 18.0,
            power_limit: 250.0,
            temp_limit: 83.0,
            ambient: 28.0,
        }
    }

    /// Advances the model by `dt` seconds.
    pub fn step(&mut self, dt: f64) -> SimReading {
        if self.phase_left == 0 {
            self.busy = !self.busy;
            self.phase_left = self.rng.range(if self.busy { 120.0 } else { 60.0 }, 600.0) as u32;
        }
        self.phase_left = self.phase_left.saturating_sub(dt.max(1.0) as u32);
        let target_load = if self.busy {
            self.rng.range(88.0, 99.0)
        } else {
            self.rng.range(0.0, 4.0)
        };
        // Load ramps rather than jumping: schedulers and kernels take a moment.
        self.load += (target_load - self.load) * (1.0 - (-dt / 3.0).exp());
        let load = self.load.clamp(0.0, 100.0);
        let mut power =
            self.idle_power + (self.power_limit - self.idle_power) * (load / 100.0).powf(1.2);
        power = (power + self.rng.range(-3.0, 3.0))
            .clamp(self.idle_power * 0.8, self.power_limit * 1.02);
        // Thermal lag: the die approaches an equilibrium set by power with a ~40 s constant.
        let equilibrium = self.ambient + 0.24 * power;
        self.temp += (equilibrium - self.temp) * (1.0 - (-dt / 40.0).exp());
        let mut perf_cap = 0;
        let mut core_clock = 300.0 + 1600.0 * (load / 100.0).sqrt();
        if self.temp >= self.temp_limit {
            core_clock *= 0.85;
            perf_cap |= 2;
        }
        if power >= self.power_limit * 0.97 {
            perf_cap |= 1;
        }
        if load < 5.0 {
            perf_cap |= 16;
        }
        let temp = (self.temp + self.rng.range(-0.3, 0.3)).max(self.ambient);
        let fan = (30.0 + (temp - 45.0) * 1.8).clamp(30.0, 100.0);
        let mem_target = if self.busy { 7800.0 } else { 600.0 };
        self.mem_used += (mem_target - self.mem_used) * 0.1;
        SimReading {
            load: load.round(),
            power: (power * 10.0).round() / 10.0,
            temp: (temp * 10.0).round() / 10.0,
            hot_spot: ((temp + 6.0 + 0.04 * power) * 10.0).round() / 10.0,
            fan: fan.round(),
            core_clock: (core_clock * 10.0).round() / 10.0,
            mem_clock: if load > 10.0 { 1750.0 } else { 405.0 },
            mem_used: self.mem_used.round(),
            mem_load: (load * 0.6).round(),
            perf_cap,
            cpu_temp: ((45.0 + load * 0.2 + self.rng.range(-1.0, 1.0)) * 10.0).round() / 10.0,
        }
    }
}

/// GPU-Z header columns written by [`write_gpuz_log`].
const GPUZ_COLUMNS: [&str; 12] = [
    "GPU Clock [MHz]",
    "Memory Clock [MHz]",
    "GPU Temperature [\u{b0}C]",
    "Hot Spot [\u{b0}C]",
    "Fan Speed (%) [%]",
    "Fan Speed (RPM) [RPM]",
    "Memory Used [MB]",
    "GPU Load [%]",
    "Memory Controller Load [%]",
    "Board Power Draw [W]",
    "PerfCap Reason []",
    "CPU Temperature [\u{b0}C]",
];

/// Writes a GPU-Z-format log (Latin-1, CRLF, padded cells, trailing commas) of
/// `sessions` logging sessions of `rows_per_session` one-second samples each, separated
/// by a pause. Deterministic for a given seed.
pub fn write_gpuz_log(
    seed: u64,
    start: NaiveDateTime,
    sessions: u32,
    rows_per_session: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_gpuz_log_to(&mut out, seed, start, sessions, rows_per_session);
    out
}

/// [`write_gpuz_log`] into a writer, a line at a time: a log of any size in a few
/// kilobytes of memory.
pub fn write_gpuz_log_to<W: std::io::Write>(
    out: &mut W,
    seed: u64,
    start: NaiveDateTime,
    sessions: u32,
    rows_per_session: u32,
) -> std::io::Result<()> {
    let mut model = GpuModel::new(seed);
    let mut rng = Rng::new(seed.wrapping_add(1));
    let mut text = String::new();
    let mut bytes = Vec::new();
    let mut t = start;
    for session in 0..sessions {
        if session > 0 {
            // A pause between sessions, as when GPU-Z is closed and reopened.
            t += ChronoDuration::seconds(rng.range(600.0, 7200.0) as i64);
        }
        text.clear();
        text.push_str(&format!("{:^19} ,", "Date"));
        for c in GPUZ_COLUMNS {
            text.push_str(&format!(" {c} ,"));
        }
        text.push_str("\r\n");
        write_latin1(out, &text, &mut bytes)?;
        for _ in 0..rows_per_session {
            let r = model.step(1.0);
            let dropout = rng.unit() < 0.002;
            let cells: [String; 12] = [
                format!("{:.1}", r.core_clock),
                format!("{:.1}", r.mem_clock),
                format!("{:.1}", r.temp),
                format!("{:.1}", r.hot_spot),
                format!("{:.0}", r.fan),
                "0".to_string(),
                format!("{:.0}", r.mem_used),
                format!("{:.0}", r.load),
                format!("{:.0}", r.mem_load),
                format!("{:.1}", r.power),
                format!("{}", r.perf_cap),
                format!("{:.1}", r.cpu_temp),
            ];
            text.clear();
            text.push_str(&format!("{} ,", t.format("%Y-%m-%d %H:%M:%S")));
            for (i, (cell, col)) in cells.iter().zip(GPUZ_COLUMNS).enumerate() {
                // A one-sample sensor dropout, as GPU-Z writes it: `-` in a group of cells.
                let cell = if dropout && i < 5 { "-" } else { cell.as_str() };
                text.push_str(&format!(
                    " {cell:>width$}   ,",
                    width = col.chars().count().saturating_sub(3)
                ));
            }
            text.push_str("\r\n");
            write_latin1(out, &text, &mut bytes)?;
            // Occasional repeated second (GPU-Z timestamp truncation jitter).
            if rng.unit() > 0.01 {
                t += ChronoDuration::seconds(1);
            }
        }
    }
    Ok(())
}

/// GPU-Z writes Windows-1252: every char here is below U+0100.
fn write_latin1<W: std::io::Write>(
    out: &mut W,
    text: &str,
    bytes: &mut Vec<u8>,
) -> std::io::Result<()> {
    bytes.clear();
    bytes.extend(
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
    );
    out.write_all(bytes)
}
