//! A simulated fleet of GPUs with injected, labelled faults.
//!
//! Every GPU runs the same physical model (see [`model`]): load alternates between idle and
//! busy phases, power follows load, temperature follows power through a thermal lag, fans
//! follow temperature, clocks and NVML throttle-reason bits follow power and temperature.
//! On top of that, each GPU gets a deterministic schedule of faults, one at a time with
//! healthy stretches between them, and every fault is recorded as a [`FaultLabel`]: the
//! ground truth that anomaly detection is measured against.
//!
//! A label covers the ticks `t` with `start <= t < end`. What each kind looks like:
//!
//! | kind | signature inside the label |
//! |---|---|
//! | `overheating` | the whole episode: temperature climbs from normal to a plateau of 88–95 °C, core/SM clocks drop and thermal throttle bits are set while it is ≥ 85 °C, then it cools back below 80 °C before the label ends; nothing outside an overheating label reaches 85 °C |
//! | `fan_failure` | fan 0 % and 0 RPM while the GPU keeps working; temperature drifts up (held below 84 °C so it never looks like overheating) |
//! | `power_spike` | board power 1.25–1.6 × the 300 W limit for 2–8 s, power-brake throttle bits; healthy power stays below the limit |
//! | `stuck_sensor` | `gpu_temp_c` frozen at its last value for 10–20 min while load and power move (a load phase change is forced inside) |
//! | `dropout` | no samples for 3–30 intervals |
//! | `gpu_lost` | no samples for 10–30 min (the GPU fell off the bus and was reset) |
//! | `idle_allocated` | load < 5 % with 60–90 % of memory used, for 30–45 min; healthy idle phases free their memory within a minute |
//! | `ecc_burst` | `ecc_corrected` and `ecc_uncorrected` (and `remapped_rows`) jump during 2–6 intervals; they never move outside |
//! | `xid` | the `xid` metric carries a real code (79, 48, 31, 13, 43 or 94) for one interval; absent otherwise |
//!
//! The same seed gives the same samples and labels; each GPU's streams depend only on the
//! seed and its host/GPU position, so growing the fleet does not change existing GPUs.

pub mod model;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gpustream::{Sample, Source, event_id};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use model::{ActiveFault, GpuModel, Script};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Number of hosts, named `sim-host-00`, `sim-host-01`, ...
    pub hosts: usize,
    /// GPUs per host, with ids `gpu0`..`gpu{M-1}` and indexes `0..M-1`.
    pub gpus_per_host: usize,
    /// Same seed → identical samples and labels.
    pub seed: u64,
    /// Sample interval (default 1 s). Values below 1 ms are read as 1 ms.
    pub interval: Duration,
    /// Event time of the first tick.
    pub start: DateTime<Utc>,
    /// Inject faults (default true); false = a healthy fleet only.
    pub faults: bool,
}

impl Default for FleetConfig {
    /// One host with one GPU, seed 1, 1 s interval, starting 2025-03-14 09:00:00 UTC, faults on.
    fn default() -> Self {
        FleetConfig {
            hosts: 1,
            gpus_per_host: 1,
            seed: 1,
            interval: Duration::from_secs(1),
            start: Utc
                .with_ymd_and_hms(2025, 3, 14, 9, 0, 0)
                .single()
                .unwrap_or_default(),
            faults: true,
        }
    }
}

/// The kinds of injected faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Temperature climbs past 85–90 °C, clocks drop, thermal throttle bits set.
    Overheating,
    /// Fan reads 0 % and the temperature drifts up.
    FanFailure,
    /// Board power jumps well above the power limit for a few seconds.
    PowerSpike,
    /// `gpu_temp_c` frozen at a constant while load and power move.
    StuckSensor,
    /// No samples for several intervals, then back.
    Dropout,
    /// No samples for a long stretch (the GPU fell off the bus).
    GpuLost,
    /// Load < 5 % with memory used high for at least 30 minutes.
    IdleAllocated,
    /// ECC error counters jump.
    EccBurst,
    /// An XID error code is reported.
    Xid,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Overheating,
        FaultKind::FanFailure,
        FaultKind::PowerSpike,
        FaultKind::StuckSensor,
        FaultKind::Dropout,
        FaultKind::GpuLost,
        FaultKind::IdleAllocated,
        FaultKind::EccBurst,
        FaultKind::Xid,
    ];

    /// The name used in labels (`snake_case`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::Overheating => "overheating",
            FaultKind::FanFailure => "fan_failure",
            FaultKind::PowerSpike => "power_spike",
            FaultKind::StuckSensor => "stuck_sensor",
            FaultKind::Dropout => "dropout",
            FaultKind::GpuLost => "gpu_lost",
            FaultKind::IdleAllocated => "idle_allocated",
            FaultKind::EccBurst => "ecc_burst",
            FaultKind::Xid => "xid",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ground truth for one injected fault; the labels file is JSON Lines of these.
///
/// The fault is active at the ticks `t` with `start <= t < end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultLabel {
    /// Host of the faulty GPU.
    pub host: String,
    /// GPU id of the faulty GPU.
    pub gpu: String,
    /// What happened.
    pub kind: FaultKind,
    /// Event time of the first affected tick.
    pub start: DateTime<Utc>,
    /// Event time of the first tick after the fault (exclusive).
    pub end: DateTime<Utc>,
}

impl FaultLabel {
    /// Whether `t` lies inside the fault.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// A fault planned for a GPU, in ticks.
#[derive(Debug, Clone)]
struct Planned {
    kind: FaultKind,
    start: u64,
    end: u64,
    script: Script,
}

struct SimGpu {
    host: String,
    gpu: String,
    index: u32,
    model: GpuModel,
    /// Fault schedule stream, separate from the model's so a fault's parameters never
    /// shift the healthy signal.
    plan_rng: Rng,
    next: Option<Planned>,
    active: Option<ActiveFault>,
}

/// Mixes seed and position into an independent stream seed.
fn stream_seed(seed: u64, host: usize, gpu: usize, stream: u64) -> u64 {
    let mut r = Rng::new(seed ^ ((host as u64) << 40) ^ ((gpu as u64) << 20) ^ (stream << 60));
    r.next_u64()
}

/// The GPU model name every simulated GPU reports (a 300 W card with fans and ECC).
pub const GPU_NAME: &str = "NVIDIA RTX 6000 Ada Generation";

/// Length of a healthy stretch between two faults of one GPU, seconds.
const HEALTHY_GAP_S: (f64, f64) = (300.0, 1500.0);
/// At least this many ticks between faults, whatever the interval.
const MIN_GAP_TICKS: u64 = 10;

/// A simulated fleet. See the module documentation.
///
/// ```
/// use gpustream_sim::fleet::{Fleet, FleetConfig};
/// let mut fleet = Fleet::new(FleetConfig { hosts: 2, gpus_per_host: 4, ..FleetConfig::default() });
/// let tick = fleet.next_tick();
/// assert!(tick.len() <= 8);
/// assert_eq!(tick[0].host, "sim-host-00");
/// assert_eq!(tick[0].gpu, "gpu0");
/// ```
pub struct Fleet {
    cfg: FleetConfig,
    dt: f64,
    session: String,
    tick: u64,
    gpus: Vec<SimGpu>,
    labels: Vec<FaultLabel>,
}

impl Fleet {
    /// Builds the fleet; nothing is sampled until [`Fleet::next_tick`].
    pub fn new(cfg: FleetConfig) -> Fleet {
        let mut cfg = cfg;
        cfg.interval = cfg.interval.max(Duration::from_millis(1));
        let dt = cfg.interval.as_secs_f64();
        let mut gpus = Vec::with_capacity(cfg.hosts * cfg.gpus_per_host);
        for h in 0..cfg.hosts {
            // GPUs in one host share the air they breathe.
            let ambient = Rng::new(stream_seed(cfg.seed, h, 0, 3)).range(22.0, 28.0);
            for g in 0..cfg.gpus_per_host {
                let mut gpu = SimGpu {
                    host: format!("sim-host-{h:02}"),
                    gpu: format!("gpu{g}"),
                    index: g as u32,
                    model: GpuModel::new(stream_seed(cfg.seed, h, g, 1), ambient),
                    plan_rng: Rng::new(stream_seed(cfg.seed, h, g, 2)),
                    next: None,
                    active: None,
                };
                if cfg.faults {
                    gpu.next = Some(plan(&mut gpu.plan_rng, 0, dt));
                }
                gpus.push(gpu);
            }
        }
        let session = format!(
            "sim-{}-{}",
            cfg.seed,
            cfg.start.format("%Y%m%dT%H%M%S%.3fZ")
        );
        Fleet {
            cfg,
            dt,
            session,
            tick: 0,
            gpus,
            labels: Vec::new(),
        }
    }

    /// The configuration (interval clamped as documented).
    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// Ticks produced so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    /// Event time of tick `n` (0 = `start`).
    pub fn tick_time(&self, n: u64) -> DateTime<Utc> {
        tick_time(&self.cfg, n)
    }

    /// Advances one interval; returns one sample per GPU that reports at this tick (a GPU
    /// in a dropout or lost fault reports nothing), source [`Source::Sim`].
    pub fn next_tick(&mut self) -> Vec<Sample> {
        let t = self.tick;
        let time = self.tick_time(t);
        let mut out = Vec::with_capacity(self.gpus.len());
        for gpu in &mut self.gpus {
            if gpu.active.as_ref().is_some_and(|a| t >= a.end) {
                gpu.active = None;
            }
            if gpu.active.is_none()
                && let Some(next) = gpu.next.as_ref().filter(|n| n.start <= t).cloned()
            {
                let label = FaultLabel {
                    host: gpu.host.clone(),
                    gpu: gpu.gpu.clone(),
                    kind: next.kind,
                    start: time,
                    end: tick_time(&self.cfg, next.end),
                };
                self.labels.push(label);
                gpu.active =
                    Some(
                        gpu.model
                            .activate(next.kind, next.start, next.end, next.script, self.dt),
                    );
                let gap = gap_ticks(&mut gpu.plan_rng, self.dt);
                gpu.next = Some(plan(&mut gpu.plan_rng, next.end + gap, self.dt));
            }
            let reading = gpu.model.step(self.dt, t, gpu.active.as_ref());
            let Some(metrics) = reading else { continue };
            out.push(Sample {
                event_id: event_id(Source::Sim, &gpu.host, &gpu.gpu, &self.session, t),
                event_time: time,
                host: gpu.host.clone(),
                gpu: gpu.gpu.clone(),
                gpu_index: gpu.index,
                gpu_name: Some(GPU_NAME.to_string()),
                source: Source::Sim,
                session: self.session.clone(),
                seq: t,
                metrics,
                unsupported: Vec::new(),
                extra: Default::default(),
            });
        }
        self.tick += 1;
        out
    }

    /// Every fault injected so far (start <= the last tick's time); `end` may lie in the
    /// future. Ordered by start, then host and GPU.
    pub fn labels(&self) -> Vec<FaultLabel> {
        self.labels.clone()
    }

    /// Labels recorded since `from` (an index into [`Fleet::labels`]): lets a caller stream
    /// labels out as they appear without copying all of them every tick.
    pub fn labels_since(&self, from: usize) -> &[FaultLabel] {
        self.labels.get(from..).unwrap_or(&[])
    }
}

fn tick_time(cfg: &FleetConfig, n: u64) -> DateTime<Utc> {
    let nanos = cfg.interval.as_nanos().saturating_mul(u128::from(n));
    let nanos = i64::try_from(nanos).unwrap_or(i64::MAX);
    cfg.start + chrono::TimeDelta::nanoseconds(nanos)
}

/// Ticks covering `secs` seconds (at least `min`).
fn ticks(secs: f64, dt: f64, min: u64) -> u64 {
    ((secs / dt).ceil() as u64).max(min)
}

fn gap_ticks(rng: &mut Rng, dt: f64) -> u64 {
    ticks(
        rng.range(HEALTHY_GAP_S.0, HEALTHY_GAP_S.1),
        dt,
        MIN_GAP_TICKS,
    )
}

/// Plans the next fault to start after a healthy gap counted from `after`.
fn plan(rng: &mut Rng, after: u64, dt: f64) -> Planned {
    let start = after + gap_ticks(rng, dt);
    let kind = FaultKind::ALL[(rng.next_u64() % FaultKind::ALL.len() as u64) as usize];
    let (len, script) = match kind {
        FaultKind::Overheating => {
            let ramp = ticks(rng.range(30.0, 90.0), dt, 1);
            let plateau = ticks(rng.range(60.0, 300.0), dt, 1);
            let cool = ticks(rng.range(45.0, 90.0), dt, 1);
            let script = Script::Overheat {
                ramp,
                plateau,
                cool,
                peak: rng.range(88.5, 95.0),
                to: rng.range(72.0, 78.0),
                from: None,
            };
            (ramp + plateau + cool, script)
        }
        FaultKind::FanFailure => (ticks(rng.range(120.0, 600.0), dt, 2), Script::FanFailure),
        FaultKind::PowerSpike => (
            ticks(rng.range(2.0, 8.0), dt, 1),
            Script::PowerSpike {
                factor: rng.range(1.25, 1.6),
            },
        ),
        FaultKind::StuckSensor => (
            ticks(rng.range(600.0, 1200.0), dt, 3),
            Script::Stuck { value: None },
        ),
        FaultKind::Dropout => (3 + rng.next_u64() % 28, Script::Silent),
        FaultKind::GpuLost => (ticks(rng.range(600.0, 1800.0), dt, 2), Script::Silent),
        FaultKind::IdleAllocated => (
            ticks(rng.range(1800.0, 2700.0), dt, 1),
            Script::IdleAllocated {
                mem_frac: rng.range(0.6, 0.9),
            },
        ),
        FaultKind::EccBurst => (2 + rng.next_u64() % 5, Script::Ecc),
        FaultKind::Xid => {
            const CODES: [u32; 6] = [79, 48, 31, 13, 43, 94];
            let code = CODES[(rng.next_u64() % CODES.len() as u64) as usize];
            (1, Script::Xid { code })
        }
    };
    Planned {
        kind,
        start,
        end: start + len,
        script,
    }
}
