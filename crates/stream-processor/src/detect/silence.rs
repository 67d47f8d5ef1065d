//! Missing samples and lost GPUs (`[missing]`): silence judged against the fleet's
//! event-time watermark, not per sample, so not a detector kind.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use gpustream::anomaly::{anomaly_event_id, anomaly_id};
use gpustream::{AnomalyEvent, AnomalyState, Sample};

use super::GpuState;
use super::kind::MICROS;
use super::lifecycle::Open;
use crate::rules::MissingRules;

/// Fires "samples missing" / "GPU lost" for GPUs whose newest sample lags the fleet's
/// watermark by more than their thresholds.
///
/// The watermark is the upper median of the newest event times of the GPUs not yet lost:
/// one GPU (or a minority of partitions) running ahead cannot make the others look silent,
/// and a single GPU is never judged against itself.
pub(super) fn judge(
    m: &MissingRules,
    gpus: &mut HashMap<String, HashMap<String, GpuState>>,
    now: i64,
    out: &mut Vec<AnomalyEvent>,
) {
    if !m.enabled {
        return;
    }
    let mut times: Vec<i64> = gpus
        .values()
        .flat_map(|h| h.values())
        .filter(|g| g.lost.is_none() && g.last_time != i64::MIN)
        .map(|g| g.last_time)
        .collect();
    if times.len() < 2 {
        return;
    }
    times.sort_unstable();
    let watermark = times[times.len() / 2].min(now);
    let default_interval = m.default_interval.as_secs_f64();
    for (host, gpus) in gpus.iter_mut() {
        for (gpu, g) in gpus.iter_mut() {
            if g.last_time == i64::MIN || g.last_time >= watermark {
                continue;
            }
            let lag = (watermark - g.last_time) as f64 / MICROS;
            let interval = g.interval.unwrap_or(default_interval);
            let at = DateTime::<Utc>::from_timestamp_micros(watermark).unwrap_or_default();
            let checks = [
                (
                    g.missing_on,
                    m.missing_after_intervals,
                    &m.missing_name,
                    m.missing_severity,
                    false,
                ),
                (
                    g.lost_on,
                    m.lost_after_intervals,
                    &m.lost_name,
                    m.lost_severity,
                    true,
                ),
            ];
            for (on, intervals, name, severity, lost) in checks {
                let open = if lost { &g.lost } else { &g.missing };
                let limit = intervals * interval;
                if !on || open.is_some() || lag <= limit {
                    continue;
                }
                let ep = Open {
                    anomaly_id: anomaly_id(name, host, gpu, &g.last_event_id),
                    started_at: at,
                    severity,
                };
                out.push(AnomalyEvent {
                    event_id: anomaly_event_id(&ep.anomaly_id, AnomalyState::Firing),
                    anomaly_id: ep.anomaly_id.clone(),
                    state: AnomalyState::Firing,
                    rule: name.clone(),
                    severity,
                    host: host.clone(),
                    gpu: gpu.clone(),
                    gpu_index: g.gpu_index,
                    source: g.source,
                    session: g.session.clone(),
                    event_time: at,
                    started_at: at,
                    metric: None,
                    value: Some(lag),
                    threshold: Some(limit),
                    message: format!(
                        "no sample for {lag:.0} s ({intervals} intervals of {interval:.1} s = {limit:.0} s) while the fleet reports"
                    ),
                    sample_event_id: g.last_event_id.clone(),
                });
                if lost {
                    g.lost = Some(ep);
                } else {
                    g.missing = Some(ep);
                }
            }
        }
    }
}

/// Resolves open missing/lost episodes of a GPU that reports again.
pub(super) fn back(
    g: &mut GpuState,
    s: &Sample,
    names: &MissingRules,
    out: &mut Vec<AnomalyEvent>,
) {
    for lost in [false, true] {
        let ep = if lost {
            g.lost.take()
        } else {
            g.missing.take()
        };
        let Some(ep) = ep else { continue };
        let gap = if g.last_time == i64::MIN {
            0.0
        } else {
            (s.event_time.timestamp_micros() - g.last_time) as f64 / MICROS
        };
        out.push(AnomalyEvent {
            event_id: anomaly_event_id(&ep.anomaly_id, AnomalyState::Resolved),
            anomaly_id: ep.anomaly_id,
            state: AnomalyState::Resolved,
            rule: if lost {
                &names.lost_name
            } else {
                &names.missing_name
            }
            .clone(),
            severity: ep.severity,
            host: s.host.clone(),
            gpu: s.gpu.clone(),
            gpu_index: s.gpu_index,
            source: s.source,
            session: s.session.clone(),
            event_time: s.event_time,
            started_at: ep.started_at,
            metric: None,
            value: Some(gap),
            threshold: None,
            message: format!("samples again after a gap of {gap:.0} s"),
            sample_event_id: s.event_id.clone(),
        });
    }
}
