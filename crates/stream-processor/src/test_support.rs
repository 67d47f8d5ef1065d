//! Samples for unit tests.

use chrono::{TimeZone, Utc};
use gpustream::{Metric, Metrics, Sample, Source};

/// A GPU temperature reading `secs` seconds after a minute boundary, `seq = secs`.
pub fn temp_sample(secs: i64, temp: f64) -> Sample {
    let mut m = Metrics::default();
    m.set(Metric::GpuTemp, temp);
    Sample {
        event_id: format!("e{secs}"),
        // 1_700_000_040 is a whole minute, so window arithmetic in tests is easy to read.
        event_time: Utc
            .timestamp_opt(1_700_000_040 + secs, 0)
            .single()
            .expect("valid time"),
        host: "h".into(),
        gpu: "g".into(),
        gpu_index: 0,
        gpu_name: None,
        source: Source::Sim,
        session: "s".into(),
        seq: secs as u64,
        metrics: m,
        unsupported: vec![],
        extra: Default::default(),
    }
}
