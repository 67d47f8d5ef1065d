//! The physical model of one simulated GPU and how each fault bends it.
//!
//! The card is a 300 W, 48 GB board with a blower fan and ECC memory. Healthy limits the
//! fault labels rely on: board power stays below the power limit, temperature below
//! ~77 °C, ECC counters and `xid` never move.

use gpustream::{Metric, Metrics};

use super::FaultKind;
use crate::rng::Rng;
use gpustream::throttle;

/// Enforced power limit, W.
pub const POWER_LIMIT_W: f64 = 300.0;
/// Total memory, MB (what NVML reports for a 48 GB card).
pub const MEMORY_TOTAL_MB: f64 = 49140.0;
/// Temperature at which the driver starts pulling clocks back.
pub const SLOWDOWN_TEMP_C: f64 = 85.0;
/// Temperature at which the hardware slows down as well.
pub const HW_SLOWDOWN_TEMP_C: f64 = 90.0;
/// A GPU with a dead fan is held just below the slowdown temperature, so its label and an
/// overheating label never describe the same samples.
pub const FAN_FAILURE_CEILING_C: f64 = 83.5;

const IDLE_POWER_W: f64 = 22.0;
/// Healthy power never reaches the limit: the power cap holds it just under.
const HEALTHY_POWER_MAX_W: f64 = POWER_LIMIT_W - 1.5;
/// °C per W at equilibrium above ambient.
const THERMAL_RESISTANCE: f64 = 0.16;
const MAX_CLOCK_MHZ: f64 = 2505.0;
const IDLE_CLOCK_MHZ: f64 = 210.0;

/// How a fault bends the model; parameters drawn when it was planned.
#[derive(Debug, Clone)]
pub enum Script {
    /// Heat-up, throttled plateau, cool-down.
    Overheat {
        /// Ticks of heat-up.
        ramp: u64,
        /// Ticks at the plateau.
        plateau: u64,
        /// Ticks of cool-down.
        cool: u64,
        /// Plateau temperature.
        peak: f64,
        /// Temperature at the end of the cool-down.
        to: f64,
        /// Temperature when the fault began (set on activation).
        from: Option<f64>,
    },
    /// Fan stopped.
    FanFailure,
    /// Board power at `factor` × the limit.
    PowerSpike {
        /// Multiple of the power limit.
        factor: f64,
    },
    /// Temperature reading frozen at `value` (set on activation).
    Stuck {
        /// The frozen reading.
        value: Option<f64>,
    },
    /// No samples (dropout, GPU lost).
    Silent,
    /// Idle with memory held.
    IdleAllocated {
        /// Fraction of memory held.
        mem_frac: f64,
    },
    /// ECC counters jump.
    Ecc,
    /// An XID code is reported.
    Xid {
        /// The code.
        code: u32,
    },
}

/// A fault in progress on one GPU.
#[derive(Debug, Clone)]
pub struct ActiveFault {
    /// Kind.
    pub kind: FaultKind,
    /// First tick.
    pub start: u64,
    /// First tick after the fault.
    pub end: u64,
    /// Parameters.
    pub script: Script,
}

/// One GPU's state.
#[derive(Debug, Clone)]
pub struct GpuModel {
    rng: Rng,
    ambient: f64,
    busy: bool,
    phase_left_s: f64,
    job_mem_mb: f64,
    load: f64,
    mem_used: f64,
    temp: f64,
    last_temp_reading: f64,
    energy_mj: f64,
    ecc_corrected: f64,
    ecc_uncorrected: f64,
    remapped_rows: f64,
}

/// Rounds to one decimal, as NVML-derived readings are shown.
fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

impl GpuModel {
    /// A GPU in a room at `ambient` °C.
    pub fn new(seed: u64, ambient: f64) -> Self {
        let mut rng = Rng::new(seed);
        let busy = rng.unit() < 0.5;
        let phase_left_s = rng.range(30.0, 600.0);
        let energy_mj = rng.range(1.0e8, 5.0e10).round();
        let ecc_corrected = (rng.range(0.0, 40.0)).round();
        GpuModel {
            rng,
            ambient,
            busy,
            phase_left_s,
            job_mem_mb: MEMORY_TOTAL_MB * 0.5,
            load: if busy { 90.0 } else { 1.0 },
            mem_used: 450.0,
            temp: ambient + 8.0,
            last_temp_reading: ambient + 8.0,
            energy_mj,
            ecc_corrected,
            ecc_uncorrected: 0.0,
            remapped_rows: 0.0,
        }
    }

    /// Starts a fault: captures the state its script starts from.
    pub fn activate(
        &mut self,
        kind: FaultKind,
        start: u64,
        end: u64,
        script: Script,
        dt: f64,
    ) -> ActiveFault {
        let script = match script {
            Script::Overheat {
                ramp,
                plateau,
                cool,
                peak,
                to,
                ..
            } => Script::Overheat {
                ramp,
                plateau,
                cool,
                peak,
                to,
                from: Some(self.temp),
            },
            Script::Stuck { .. } => {
                // A frozen sensor is only visible while everything else moves: make the
                // workload change phase a third of the way in.
                let len_s = (end - start) as f64 * dt;
                self.phase_left_s = self.phase_left_s.min(len_s / 3.0);
                Script::Stuck {
                    value: Some(self.last_temp_reading),
                }
            }
            other => other,
        };
        ActiveFault {
            kind,
            start,
            end,
            script,
        }
    }

    /// Advances the model by one tick of `dt` seconds; `None` when the GPU reports nothing.
    pub fn step(&mut self, dt: f64, tick: u64, fault: Option<&ActiveFault>) -> Option<Metrics> {
        let script = fault.map(|f| (f.script.clone(), tick.saturating_sub(f.start)));
        let idle_alloc = match &script {
            Some((Script::IdleAllocated { mem_frac }, _)) => Some(*mem_frac),
            _ => None,
        };
        let overheating = matches!(script, Some((Script::Overheat { .. }, _)));
        let fan_failed = matches!(script, Some((Script::FanFailure, _)));

        // Workload phases: busy jobs of 2-15 minutes, idle gaps of 1-10 minutes. While a fan
        // is dead the workload keeps its phase, so the label shows the heat building up
        // rather than a job ending.
        if !fan_failed {
            self.phase_left_s -= dt;
        }
        if self.phase_left_s <= 0.0 {
            self.busy = !self.busy;
            self.phase_left_s = if self.busy {
                self.job_mem_mb = MEMORY_TOTAL_MB * self.rng.range(0.3, 0.85);
                self.rng.range(120.0, 900.0)
            } else {
                self.rng.range(60.0, 600.0)
            };
        }
        // An overheating GPU is one that works hard, and a dead fan shows under load (at
        // idle, passive cooling copes); an idle-allocated GPU does nothing.
        let busy = (self.busy || overheating || fan_failed) && idle_alloc.is_none();
        let target_load = if busy {
            self.rng.range(85.0, 99.0)
        } else {
            self.rng.range(0.0, 3.0)
        };
        // Load ramps rather than jumping: schedulers and kernels take a moment. A stalled
        // job that holds its memory drops to nothing at once.
        self.load += (target_load - self.load) * (1.0 - (-dt / 3.0).exp());
        if idle_alloc.is_some() {
            self.load = target_load;
        }
        let load = self.load.clamp(0.0, 100.0);
        let mem_target = match idle_alloc {
            Some(frac) => MEMORY_TOTAL_MB * frac,
            None if busy => self.job_mem_mb,
            None => 450.0,
        };
        self.mem_used += (mem_target - self.mem_used) * (1.0 - (-dt / 8.0).exp());
        if idle_alloc.is_some() {
            self.mem_used = mem_target + self.rng.range(-40.0, 40.0);
        }

        let mut power = IDLE_POWER_W + (POWER_LIMIT_W - IDLE_POWER_W) * (load / 100.0).powf(1.2);
        if idle_alloc.is_some() {
            // A context holding memory keeps the GPU in P0: more than a truly idle card.
            power += 35.0;
        }
        power = (power + self.rng.range(-3.0, 3.0)).clamp(IDLE_POWER_W * 0.8, HEALTHY_POWER_MAX_W);

        // Thermal lag: the die approaches an equilibrium set by power (~40 s constant).
        let mut equilibrium = self.ambient + THERMAL_RESISTANCE * power;
        let mut tau = 40.0;
        if fan_failed {
            // Passive cooling only: the die heats well above its usual equilibrium.
            equilibrium += THERMAL_RESISTANCE * 1.5 * power + 10.0;
            tau = 90.0;
        }
        self.temp += (equilibrium - self.temp) * (1.0 - (-dt / tau).exp());
        if fan_failed {
            self.temp = self.temp.min(FAN_FAILURE_CEILING_C);
        }
        if let Some((
            Script::Overheat {
                ramp,
                plateau,
                cool,
                peak,
                to,
                from,
            },
            k,
        )) = &script
        {
            let from = from.unwrap_or(self.temp);
            self.temp = if *k < *ramp {
                from + (peak - from) * ((k + 1) as f64 / *ramp as f64)
            } else if *k < ramp + plateau {
                *peak + self.rng.range(-0.4, 0.4)
            } else {
                let j = (k - ramp - plateau + 1) as f64;
                peak + (to - peak) * (j / *cool as f64).min(1.0)
            };
        }
        let temp = r1(self.temp + self.rng.range(-0.3, 0.3));

        let mut throttle = 0u64;
        let mut clock = IDLE_CLOCK_MHZ + (MAX_CLOCK_MHZ - IDLE_CLOCK_MHZ) * (load / 100.0).sqrt();
        if load < 5.0 {
            throttle |= throttle::GPU_IDLE;
        }
        if power >= POWER_LIMIT_W - 10.0 {
            throttle |= throttle::SW_POWER_CAP;
            clock *= 0.94;
        }
        if temp >= SLOWDOWN_TEMP_C {
            throttle |= throttle::SW_THERMAL_SLOWDOWN;
            clock *= 0.62;
            power *= 0.8;
        }
        if temp >= HW_SLOWDOWN_TEMP_C {
            throttle |= throttle::HW_THERMAL_SLOWDOWN | throttle::HW_SLOWDOWN;
            clock *= 0.8;
            power *= 0.9;
        }
        if let Some((Script::PowerSpike { factor }, _)) = &script {
            power = POWER_LIMIT_W * factor + self.rng.range(-4.0, 4.0);
            throttle |= throttle::HW_POWER_BRAKE_SLOWDOWN | throttle::HW_SLOWDOWN;
            clock *= 0.5;
        }
        let fan = if fan_failed {
            0.0
        } else if overheating {
            100.0
        } else {
            (30.0 + (temp - 40.0) * 1.6).clamp(30.0, 100.0).round()
        };
        self.energy_mj += (power * dt * 1000.0).round();

        let mut xid = None;
        match &script {
            Some((Script::Ecc, k)) => {
                self.ecc_corrected += self.rng.range(10.0, 400.0).round();
                // A burst always includes an uncorrectable error, which the driver answers
                // with a row remap.
                if *k == 0 {
                    self.ecc_uncorrected += 1.0;
                    self.remapped_rows += 1.0;
                } else if self.rng.unit() < 0.3 {
                    self.ecc_uncorrected += 1.0;
                }
            }
            Some((Script::Xid { code }, _)) => xid = Some(f64::from(*code)),
            _ => {}
        }
        let reported_temp = match &script {
            Some((Script::Stuck { value: Some(v) }, _)) => *v,
            _ => temp,
        };
        if matches!(script, Some((Script::Silent, _))) {
            return None;
        }
        self.last_temp_reading = reported_temp;

        let pcie_rx = if busy {
            load / 100.0 * self.rng.range(0.6, 1.0) * 4.0e6
        } else {
            self.rng.range(50.0, 400.0)
        };
        let mut m = Metrics::default();
        m.set(Metric::GpuTemp, reported_temp);
        m.set(Metric::GpuLoad, load.round());
        m.set(
            Metric::MemoryControllerLoad,
            if busy { (load * 0.55).round() } else { 0.0 },
        );
        m.set(Metric::MemoryUsed, self.mem_used.round());
        m.set(Metric::MemoryTotal, MEMORY_TOTAL_MB);
        m.set(Metric::BoardPower, r1(power));
        m.set(Metric::PowerLimit, POWER_LIMIT_W);
        m.set(Metric::Energy, self.energy_mj);
        m.set(Metric::CoreClock, clock.round());
        m.set(Metric::SmClock, clock.round());
        m.set(
            Metric::MemoryClock,
            if load > 5.0 || idle_alloc.is_some() {
                10001.0
            } else {
                405.0
            },
        );
        m.set(Metric::FanPct, fan);
        m.set(Metric::FanRpm, (fan * 46.0).round());
        m.set(
            Metric::PState,
            if load < 5.0 && idle_alloc.is_none() {
                8.0
            } else {
                0.0
            },
        );
        m.set(Metric::ThrottleReasons, throttle as f64);
        m.set(Metric::EccCorrected, self.ecc_corrected);
        m.set(Metric::EccUncorrected, self.ecc_uncorrected);
        m.set(Metric::RemappedRows, self.remapped_rows);
        m.set(Metric::PcieRx, pcie_rx.round());
        m.set(Metric::PcieTx, (pcie_rx * 0.25).round());
        if let Some(code) = xid {
            m.set(Metric::Xid, code);
        }
        Some(m)
    }
}
