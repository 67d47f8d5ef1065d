//! `producer nvml`: live GPUs through NVML.
//!
//! Everything above the NVML calls lives here and works against the [`GpuBackend`] trait:
//! device and MIG enumeration, interval scheduling on an absolute clock, mapping readings
//! to samples, throttle-reason decoding, XID events, and "GPU lost" events while the other
//! GPUs keep being sampled. [`driver::NvmlBackend`] is the only code that calls NVML, so
//! all of this is tested without a GPU.

pub mod driver;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use gpustream::anomaly::{anomaly_event_id, anomaly_id};
use gpustream::{AnomalyEvent, AnomalyState, Metric, Metrics, Sample, Severity, Source, event_id};

use crate::error::Result;
use crate::sink::{DeliveryTotals, SampleSink};
use gpustream::throttle;
use gpustream_runtime::service::Health;

/// A physical GPU, or a MIG instance of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// NVML index of the physical GPU.
    pub index: u32,
    /// MIG instance index within that GPU, for a MIG device.
    pub mig: Option<u32>,
    /// NVML UUID (`GPU-...`, or `MIG-...` for an instance).
    pub uuid: String,
    /// Model name (a MIG instance gets its parent's name and its profile).
    pub name: String,
    /// PCI bus id of the physical GPU (`00000000:3B:00.0`).
    pub bus_id: String,
}

/// Why a device could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The GPU fell off the bus or stopped answering (NVML `GPU_IS_LOST`).
    Lost(String),
    /// Anything else (counts towards "lost" when it keeps happening).
    Other(String),
}

/// What NVML answered for one device at one instant; `None` = not supported or failed.
/// Units as NVML gives them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawReading {
    /// GPU utilisation %.
    pub gpu_util: Option<u32>,
    /// Memory (controller) utilisation %.
    pub mem_util: Option<u32>,
    /// Memory used, bytes.
    pub mem_used: Option<u64>,
    /// Memory total, bytes.
    pub mem_total: Option<u64>,
    /// GPU temperature °C.
    pub temp: Option<u32>,
    /// Power draw, mW.
    pub power_mw: Option<u32>,
    /// Enforced power limit, mW.
    pub power_limit_mw: Option<u32>,
    /// Energy since the driver loaded, mJ.
    pub energy_mj: Option<u64>,
    /// Graphics clock MHz.
    pub clock_graphics: Option<u32>,
    /// SM clock MHz.
    pub clock_sm: Option<u32>,
    /// Memory clock MHz.
    pub clock_mem: Option<u32>,
    /// Fan 0 speed %.
    pub fan_pct: Option<u32>,
    /// Performance state (0 = P0).
    pub pstate: Option<u32>,
    /// Clock-throttle reason bits (see [`gpustream::throttle`]).
    pub throttle: Option<u64>,
    /// ECC corrected errors (aggregate).
    pub ecc_corrected: Option<u64>,
    /// ECC uncorrected errors (aggregate).
    pub ecc_uncorrected: Option<u64>,
    /// PCIe transmit KB/s.
    pub pcie_tx_kbps: Option<u32>,
    /// PCIe receive KB/s.
    pub pcie_rx_kbps: Option<u32>,
    /// Retired memory pages (both causes).
    pub retired_pages: Option<u64>,
    /// Remapped memory rows (corrected + uncorrected).
    pub remapped_rows: Option<u64>,
}

/// The NVML calls the sampler needs, and nothing more.
pub trait GpuBackend {
    /// Number of physical GPUs.
    fn device_count(&mut self) -> std::result::Result<u32, String>;
    /// Identity of physical GPU `index`.
    fn device(&mut self, index: u32) -> std::result::Result<DeviceInfo, String>;
    /// MIG instance slots of GPU `index` when MIG mode is on; `None` when it is off or
    /// not supported.
    fn mig_slots(&mut self, index: u32) -> Option<u32>;
    /// Identity of MIG instance `slot` of GPU `index`; `Err` for an empty slot.
    fn mig_device(&mut self, index: u32, slot: u32) -> std::result::Result<DeviceInfo, String>;
    /// Reads one device.
    fn read(&mut self, dev: &DeviceInfo) -> std::result::Result<RawReading, ReadError>;
    /// XID errors reported since the last call: (device UUID, XID code).
    fn xid_events(&mut self) -> Vec<(String, u64)>;
}

/// Every GPU, and every MIG instance of a GPU in MIG mode (after its parent).
pub fn enumerate(backend: &mut dyn GpuBackend) -> std::result::Result<Vec<DeviceInfo>, String> {
    let mut out = Vec::new();
    for i in 0..backend.device_count()? {
        match backend.device(i) {
            Ok(d) => out.push(d),
            Err(e) => {
                tracing::warn!(index = i, "GPU {i} cannot be opened, skipped: {e}");
                continue;
            }
        }
        if let Some(slots) = backend.mig_slots(i) {
            for slot in 0..slots {
                // Slots without an instance answer "not found": the usual case.
                if let Ok(d) = backend.mig_device(i, slot) {
                    out.push(d);
                }
            }
        }
    }
    Ok(out)
}

/// Which identity becomes the sample's `gpu` id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum GpuId {
    /// NVML UUID (stable across reboots and slots).
    Uuid,
    /// PCI bus id (stable while the card stays in its slot); MIG instances use their UUID.
    BusId,
    /// `gpu<N>` by NVML index (`gpu<N>-mig<M>` for MIG instances).
    Index,
}

/// How to sample.
#[derive(Debug, Clone)]
pub struct SamplerOptions {
    /// Time between samples (down to 100 ms).
    pub interval: Duration,
    /// Host name in samples.
    pub host: String,
    /// Which identity is the `gpu` id.
    pub gpu_id: GpuId,
    /// Ticks to take; `None` = until stopped.
    pub ticks: Option<u64>,
    /// Consecutive failed reads after which a GPU counts as lost (an NVML "GPU is lost"
    /// answer counts at once).
    pub lost_after: u32,
}

/// The smallest interval `producer nvml` accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What a sampler run did.
#[derive(Debug, Default, Clone)]
pub struct SamplerReport {
    /// Devices sampled (GPUs and MIG instances).
    pub devices: usize,
    /// Ticks taken.
    pub ticks: u64,
    /// Ticks skipped because reading took longer than the interval.
    pub missed_ticks: u64,
    /// Samples handed to the sink.
    pub sent: u64,
    /// Failed reads.
    pub read_errors: u64,
    /// "GPU lost" events.
    pub lost_events: u64,
    /// Wall time spent inside the backend's read calls.
    pub read_time: Duration,
    /// Delivery totals after the final flush.
    pub delivery: DeliveryTotals,
    /// Whether the run was stopped before its end.
    pub interrupted: bool,
}

impl std::fmt::Display for SamplerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per = if self.sent + self.read_errors > 0 {
            self.read_time.as_secs_f64() * 1e3 / (self.sent + self.read_errors) as f64
        } else {
            0.0
        };
        write!(
            f,
            "devices {}, ticks {} (missed {}), samples sent {}, delivered {}, failed {}, read errors {}, GPU lost events {}, {per:.3} ms per device read{}",
            self.devices,
            self.ticks,
            self.missed_ticks,
            self.sent,
            self.delivery.delivered,
            self.delivery.failed,
            self.read_errors,
            self.lost_events,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        )
    }
}

/// Maps one reading to canonical metrics (W from mW, MiB from bytes).
pub fn to_metrics(r: &RawReading) -> Metrics {
    let mut m = Metrics::default();
    let mut set = |metric: Metric, v: Option<f64>| {
        if let Some(v) = v {
            m.set(metric, v);
        }
    };
    const MIB: f64 = 1024.0 * 1024.0;
    set(Metric::GpuLoad, r.gpu_util.map(f64::from));
    set(Metric::MemoryControllerLoad, r.mem_util.map(f64::from));
    set(
        Metric::MemoryUsed,
        r.mem_used.map(|b| (b as f64 / MIB).round()),
    );
    set(
        Metric::MemoryTotal,
        r.mem_total.map(|b| (b as f64 / MIB).round()),
    );
    set(Metric::GpuTemp, r.temp.map(f64::from));
    set(
        Metric::BoardPower,
        r.power_mw.map(|mw| f64::from(mw) / 1000.0),
    );
    set(
        Metric::PowerLimit,
        r.power_limit_mw.map(|mw| f64::from(mw) / 1000.0),
    );
    set(Metric::Energy, r.energy_mj.map(|e| e as f64));
    set(Metric::CoreClock, r.clock_graphics.map(f64::from));
    set(Metric::SmClock, r.clock_sm.map(f64::from));
    set(Metric::MemoryClock, r.clock_mem.map(f64::from));
    set(Metric::FanPct, r.fan_pct.map(f64::from));
    set(Metric::PState, r.pstate.map(f64::from));
    set(Metric::ThrottleReasons, r.throttle.map(|t| t as f64));
    set(Metric::EccCorrected, r.ecc_corrected.map(|e| e as f64));
    set(Metric::EccUncorrected, r.ecc_uncorrected.map(|e| e as f64));
    set(Metric::PcieTx, r.pcie_tx_kbps.map(f64::from));
    set(Metric::PcieRx, r.pcie_rx_kbps.map(f64::from));
    set(Metric::RetiredPages, r.retired_pages.map(|e| e as f64));
    set(Metric::RemappedRows, r.remapped_rows.map(|e| e as f64));
    m
}

struct DevState {
    info: DeviceInfo,
    gpu: String,
    seq: u64,
    failures: u32,
    /// Set while the GPU is lost: the anomaly id of its "lost" episode and when it began.
    lost: Option<(String, DateTime<Utc>)>,
    pending_xid: Option<u64>,
    last_throttle: Option<u64>,
}

fn gpu_id(d: &DeviceInfo, how: GpuId) -> String {
    match (how, d.mig) {
        (GpuId::Uuid, _) | (GpuId::BusId, Some(_)) => d.uuid.clone(),
        (GpuId::BusId, None) => d.bus_id.clone(),
        (GpuId::Index, None) => format!("gpu{}", d.index),
        (GpuId::Index, Some(m)) => format!("gpu{}-mig{m}", d.index),
    }
}

/// Samples every device at `opts.interval` until `opts.ticks` or `stop`.
///
/// Tick `k` is due at `start + k × interval` (no drift); its samples carry that instant
/// as event time. A tick that is already past when the previous one finishes is skipped
/// and counted, not bunched. A device that answers "GPU is lost" (or fails
/// `lost_after` times in a row) produces one `gpu_lost` event through `on_event` and is
/// retried every tick; when it answers again a `resolved` event follows. The other
/// devices are sampled throughout.
pub fn run_sampler(
    backend: &mut dyn GpuBackend,
    opts: &SamplerOptions,
    sink: &mut dyn SampleSink,
    on_event: &mut dyn FnMut(&AnomalyEvent) -> Result<()>,
    stop: &Arc<AtomicBool>,
) -> Result<SamplerReport> {
    run_sampler_with_health(backend, opts, sink, on_event, stop, &Health::default())
}

/// The readiness part the sampler reports on.
pub const HEALTH_PART: &str = "nvml";

/// [`run_sampler`], reporting to `health`: part `nvml` fails with the reason while a
/// tick has a failed read (a lost GPU keeps it failing) and is ok after a tick in which
/// every device answered.
pub fn run_sampler_with_health(
    backend: &mut dyn GpuBackend,
    opts: &SamplerOptions,
    sink: &mut dyn SampleSink,
    on_event: &mut dyn FnMut(&AnomalyEvent) -> Result<()>,
    stop: &Arc<AtomicBool>,
    health: &Health,
) -> Result<SamplerReport> {
    let interval = opts.interval.max(MIN_INTERVAL);
    let devices = enumerate(backend).map_err(|e| crate::Error::Invalid(format!("NVML: {e}")))?;
    if devices.is_empty() {
        return Err(crate::Error::Invalid("NVML found no GPU".into()));
    }
    for d in &devices {
        tracing::info!(index = d.index, mig = ?d.mig, uuid = %d.uuid, name = %d.name, bus_id = %d.bus_id, "sampling");
    }
    let mut report = SamplerReport {
        devices: devices.len(),
        ..SamplerReport::default()
    };
    let start_utc = Utc::now();
    let start = Instant::now();
    let session = format!("nvml-{}", start_utc.format("%Y%m%dT%H%M%S%.3fZ"));
    let mut state: Vec<DevState> = devices
        .into_iter()
        .map(|info| DevState {
            gpu: gpu_id(&info, opts.gpu_id),
            info,
            seq: 0,
            failures: 0,
            lost: None,
            pending_xid: None,
            last_throttle: None,
        })
        .collect();
    let by_uuid: HashMap<String, usize> = state
        .iter()
        .enumerate()
        .map(|(i, d)| (d.info.uuid.clone(), i))
        .collect();
    let mut tick: u64 = 0;
    while opts.ticks.is_none_or(|n| report.ticks < n) {
        let due = start + interval.saturating_mul(u32::try_from(tick).unwrap_or(u32::MAX));
        while let Some(left) = due.checked_duration_since(Instant::now()) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        let time = start_utc
            + TimeDelta::from_std(interval.saturating_mul(u32::try_from(tick).unwrap_or(u32::MAX)))
                .unwrap_or_default();
        for (uuid, code) in backend.xid_events() {
            match by_uuid.get(&uuid) {
                Some(&i) => {
                    tracing::warn!(gpu = %state[i].gpu, xid = code, "XID error");
                    state[i].pending_xid = Some(code);
                }
                None => tracing::warn!(%uuid, xid = code, "XID error on a device not sampled"),
            }
        }
        let mut failed_reads: Vec<String> = Vec::new();
        for d in &mut state {
            let t0 = Instant::now();
            let result = backend.read(&d.info);
            report.read_time += t0.elapsed();
            let seq = d.seq;
            d.seq += 1;
            match result {
                Ok(raw) => {
                    d.failures = 0;
                    if let Some((id, since)) = d.lost.take() {
                        tracing::warn!(gpu = %d.gpu, "GPU answers again");
                        let sample_id = event_id(Source::Nvml, &opts.host, &d.gpu, &session, seq);
                        on_event(&lost_event(
                            d,
                            &opts.host,
                            &session,
                            AnomalyState::Resolved,
                            &id,
                            since,
                            time,
                            sample_id,
                            "GPU answers NVML again".into(),
                        ))?;
                    }
                    if raw.throttle != d.last_throttle {
                        if let Some(bits) = raw.throttle.filter(|b| *b & !throttle::GPU_IDLE != 0) {
                            tracing::info!(gpu = %d.gpu, reasons = ?throttle::decode(bits), "clocks throttled");
                        }
                        d.last_throttle = raw.throttle;
                    }
                    let mut metrics = to_metrics(&raw);
                    if let Some(code) = d.pending_xid.take() {
                        metrics.set(Metric::Xid, code as f64);
                    }
                    let sample = Sample {
                        event_id: event_id(Source::Nvml, &opts.host, &d.gpu, &session, seq),
                        event_time: time,
                        host: opts.host.clone(),
                        gpu: d.gpu.clone(),
                        gpu_index: d.info.index,
                        gpu_name: Some(d.info.name.clone()),
                        source: Source::Nvml,
                        session: session.clone(),
                        seq,
                        metrics,
                        unsupported: Vec::new(),
                        extra: Default::default(),
                    };
                    sink.send(&sample)?;
                    report.sent += 1;
                }
                Err(e) => {
                    report.read_errors += 1;
                    d.failures += 1;
                    let (lost_now, why) = match &e {
                        ReadError::Lost(m) => (true, m.clone()),
                        ReadError::Other(m) => (d.failures >= opts.lost_after, m.clone()),
                    };
                    failed_reads.push(format!("{}: {why}", d.gpu));
                    if lost_now && d.lost.is_none() {
                        let sample_id = event_id(Source::Nvml, &opts.host, &d.gpu, &session, seq);
                        let id = anomaly_id("gpu_lost", &opts.host, &d.gpu, &sample_id);
                        tracing::error!(gpu = %d.gpu, uuid = %d.info.uuid, "GPU lost: {why}; the other GPUs keep being sampled");
                        let ev = lost_event(
                            d,
                            &opts.host,
                            &session,
                            AnomalyState::Firing,
                            &id,
                            time,
                            time,
                            sample_id,
                            format!("GPU lost: {why}"),
                        );
                        d.lost = Some((id, time));
                        report.lost_events += 1;
                        on_event(&ev)?;
                    } else if d.lost.is_none() {
                        tracing::warn!(gpu = %d.gpu, failures = d.failures, "read failed: {why}");
                    }
                }
            }
        }
        if failed_reads.is_empty() {
            health.ok(HEALTH_PART);
        } else {
            health.fail(
                HEALTH_PART,
                format!("read failed: {}", failed_reads.join("; ")),
            );
        }
        report.ticks += 1;
        // Skip ticks whose time has already passed rather than firing them back to back.
        let next = tick + 1;
        let now_ticks = (start.elapsed().as_nanos() / interval.as_nanos().max(1)) as u64;
        if now_ticks > next {
            report.missed_ticks += now_ticks - next;
            tracing::warn!(
                missed = now_ticks - next,
                "reading took longer than the interval: ticks skipped"
            );
            tick = now_ticks;
        } else {
            tick = next;
        }
    }
    report.delivery = sink.flush(Duration::from_secs(60))?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn lost_event(
    d: &DevState,
    host: &str,
    session: &str,
    state: AnomalyState,
    anomaly: &str,
    started_at: DateTime<Utc>,
    at: DateTime<Utc>,
    sample_event_id: String,
    message: String,
) -> AnomalyEvent {
    AnomalyEvent {
        event_id: anomaly_event_id(anomaly, state),
        anomaly_id: anomaly.to_string(),
        state,
        rule: "gpu_lost".into(),
        severity: Severity::Critical,
        host: host.to_string(),
        gpu: d.gpu.clone(),
        gpu_index: d.info.index,
        source: Source::Nvml,
        session: session.to_string(),
        event_time: at,
        started_at,
        metric: None,
        value: None,
        threshold: None,
        message,
        sample_event_id,
    }
}
