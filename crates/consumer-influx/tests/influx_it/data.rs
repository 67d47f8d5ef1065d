//! What the tests send: samples with awkward host names and extra fields, anomalies.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use gpustream::{AnomalyEvent, AnomalyState, Metric, Metrics, Sample, Severity, Source, event_id};

/// Hosts as sent and as InfluxDB 1.x stores them (verbatim except the documented lossy cases).
pub(crate) const HOSTS: &[(&str, &str)] = &[
    ("plain-host", "plain-host"),
    ("host with spaces", "host with spaces"),
    ("comma,host=eq", "comma,host=eq"),
    ("quote\"host", "quote\"host"),
    ("back\\slash", "back\\slash"),
    // InfluxDB 1.x keeps one extra backslash where a backslash precedes an escaped character.
    (
        "back\\,slash\\ before\\=specials\\\"",
        "back\\\\,slash\\\\ before\\\\=specials\\\"",
    ),
    ("ünïcødé 東京 🚀", "ünïcødé 東京 🚀"),
    ("ends-in\\", "ends-in\\_"),
];
/// Extra (non-standard) field names that need quoting and escaping.
pub(crate) const EXTRA_NAMES: &[&str] =
    &["GPU Clock [MHz]", "Memory Temp [°C]", "odd,name=x \"q\""];

/// The first sample's time (2023-11-14 22:13:20 UTC).
pub(crate) fn base_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0)
        .single()
        .expect("valid time")
}

/// A sample of GPU `gpu_index` on `host`; three consecutive rows share each timestamp.
pub(crate) fn sample(host: &str, gpu_index: u32, seq: u64) -> Sample {
    let gpu = format!("GPU {gpu_index}");
    let mut metrics = Metrics::default();
    metrics.set(Metric::GpuTemp, 40.0 + (seq % 50) as f64 + 0.125);
    metrics.set(Metric::BoardPower, 100.0 + seq as f64 * 0.1);
    metrics.set(Metric::PState, (seq % 3) as f64);
    metrics.set(Metric::FanRpm, 0.0);
    let mut extra = BTreeMap::new();
    for (i, name) in EXTRA_NAMES.iter().enumerate() {
        extra.insert((*name).to_string(), seq as f64 + i as f64 / 4.0);
    }
    Sample {
        event_id: event_id(Source::Gpuz, host, &gpu, "session-1", seq),
        event_time: base_time() + chrono::Duration::seconds((seq / 3) as i64),
        host: host.to_string(),
        gpu,
        gpu_index,
        gpu_name: Some("NVIDIA GeForce RTX 4090".to_string()),
        source: Source::Gpuz,
        session: "session-1".to_string(),
        seq,
        metrics,
        unsupported: vec![Metric::FanRpm],
        extra,
    }
}

/// The `gpu_temp_high` anomaly of GPU 0 on the comma host, firing (at +10 s) or resolved
/// (at +20 s).
pub(crate) fn anomaly(state: AnomalyState, message: &str) -> AnomalyEvent {
    AnomalyEvent {
        event_id: format!("ev-{}", state.as_str()),
        anomaly_id: "anomaly-1".to_string(),
        state,
        rule: "gpu_temp_high".to_string(),
        severity: Severity::Critical,
        host: "comma,host=eq".to_string(),
        gpu: "GPU 0".to_string(),
        gpu_index: 0,
        source: Source::Gpuz,
        session: "session-1".to_string(),
        event_time: base_time()
            + chrono::Duration::seconds(if state == AnomalyState::Firing {
                10
            } else {
                20
            }),
        started_at: base_time() + chrono::Duration::seconds(10),
        metric: Some("gpu_temp_c".to_string()),
        value: Some(91.5),
        threshold: Some(90.0),
        message: message.to_string(),
        sample_event_id: "x".to_string(),
    }
}
