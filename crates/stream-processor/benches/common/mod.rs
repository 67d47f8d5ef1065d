//! Synthetic samples shaped like a GPU-Z log row (a dozen sensors), shared by the benches.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use gpustream::{Metric, Metrics, Sample, Source};

/// GPUs the samples are spread over (one sample per GPU per second).
pub const GPUS: u64 = 16;

/// Sample `i` of a fleet of [`GPUS`] GPUs logging once a second: twelve sensors with
/// values that move, a GPU name and one column the catalogue does not know.
pub fn sample(i: u64) -> Sample {
    let gpu = format!("gpu{:02}", i % GPUS);
    let seq = i / GPUS;
    let mut metrics = Metrics::default();
    for (k, m) in Metric::ALL.iter().take(12).enumerate() {
        // A slow wave per sensor, so detectors and encoders see realistic variation.
        let v = 40.0 + ((seq as f64 / 30.0 + k as f64).sin() + 1.0) * 25.0;
        metrics.set(*m, (v * 10.0).round() / 10.0);
    }
    let session = "2025-03-14T09:00:00".to_string();
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("VDDC [V]".to_string(), 0.8 + (seq % 7) as f64 / 100.0);
    Sample {
        event_id: gpustream::event_id(Source::Gpuz, "bench-host", &gpu, &session, seq),
        event_time: Utc
            .timestamp_opt(1_741_942_800 + seq as i64, 0)
            .single()
            .expect("valid time"),
        host: "bench-host".into(),
        gpu,
        gpu_index: (i % GPUS) as u32,
        gpu_name: Some("NVIDIA GeForce RTX 4090".into()),
        source: Source::Gpuz,
        session,
        seq,
        metrics,
        unsupported: vec![],
        extra,
    }
}

/// Wire payloads of samples `0..n`.
pub fn payloads(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| gpustream::wire::encode_sample(&sample(i)).expect("encode"))
        .collect()
}

/// `VmRSS` and `VmHWM` of a process in kB, from `/proc/<pid>/status`.
pub fn rss_kb(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
