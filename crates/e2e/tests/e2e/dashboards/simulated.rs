//! The NVML-style half of the data: GPU-Z logs have no ECC, XID, PCIe, P-state or energy
//! readings, so the fleet simulator's GPU model supplies them for the log's host and GPU.

use chrono::{TimeZone, Utc};
use gpustream::{Sample, Source, event_id};
use gpustream_sim::fleet::model::{ActiveFault, GpuModel, Script};
use gpustream_sim::fleet::{FaultKind, FaultLabel};

use super::{GPU, HOST, LOG_SECONDS, LOG_START};

/// NVML-style samples for [`HOST`]/[`GPU`] over the log's span, and the labelled ECC burst
/// and XID fault they contain.
pub(super) struct Simulated {
    pub(super) samples: Vec<Sample>,
    pub(super) ecc: FaultLabel,
    pub(super) xid: FaultLabel,
}

/// The XID the simulated GPU reports (79: the GPU has fallen off the bus).
pub(super) const XID_CODE: u32 = 79;

/// One simulated NVML GPU (the fleet simulator's physical model, `gpustream_sim::fleet::
/// model`) sampled every second over the log's span, as the log's host and GPU, with two
/// of the simulator's labelled faults scripted at fixed ticks rather than drawn at
/// random: an ECC burst (corrected and uncorrected counters and remapped rows jump) 5
/// minutes in and an XID 12 minutes in. Everything else (load phases, power, energy
/// counter, clocks, P-state, PCIe, throttle bits) is the model's own.
pub(super) fn simulated_nvml() -> Simulated {
    let (y, mo, d, h, mi, s) = LOG_START;
    let start = Utc
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid start");
    let at = |tick: u64| start + chrono::Duration::seconds(tick as i64);
    let label = |kind, from: u64, to: u64| FaultLabel {
        host: HOST.into(),
        gpu: GPU.into(),
        kind,
        start: at(from),
        end: at(to),
    };
    let faults = [
        (label(FaultKind::EccBurst, 300, 304), Script::Ecc),
        (
            label(FaultKind::Xid, 720, 721),
            Script::Xid { code: XID_CODE },
        ),
    ];
    let session = format!("sim-dashboards-{}", start.format("%Y%m%dT%H%M%SZ"));
    let mut model = GpuModel::new(14, 24.0);
    let mut active: Option<ActiveFault> = None;
    let mut samples = Vec::new();
    for tick in 0..LOG_SECONDS {
        if active.as_ref().is_some_and(|f| tick >= f.end) {
            active = None;
        }
        if let Some((l, script)) = faults.iter().find(|(l, _)| l.start == at(tick)) {
            let end = (l.end - start).num_seconds() as u64;
            active = Some(model.activate(l.kind, tick, end, script.clone(), 1.0));
        }
        let Some(metrics) = model.step(1.0, tick, active.as_ref()) else {
            continue;
        };
        samples.push(Sample {
            event_id: event_id(Source::Sim, HOST, GPU, &session, tick),
            event_time: at(tick),
            host: HOST.into(),
            gpu: GPU.into(),
            gpu_index: 0,
            // The GPU-Z log's identity has no model name either.
            gpu_name: None,
            source: Source::Sim,
            session: session.clone(),
            seq: tick,
            metrics,
            unsupported: Vec::new(),
            extra: Default::default(),
        });
    }
    let [(ecc, _), (xid, _)] = faults;
    Simulated { samples, ecc, xid }
}
