//! `rules_toml`: an anomaly rules file → a rule set → a detector.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use gpustream::{AnomalyEvent, Metric, Sample, Source, event_id};
use stream_processor::detect::Detector;
use stream_processor::rules::RuleSet;

use crate::{line_in_range, text};

/// The name the rules file is read under; every error must carry it.
const ORIGIN: &str = "fuzz/rules.toml";

/// Reads `data` (as UTF-8, invalid sequences replaced) as a rules file. Checks:
///
/// - no panic, no hang;
/// - an error names the file, and a line it names is a line of the file;
/// - a rule set that loads can run: a detector given it digests a stream of samples
///   of two GPUs (every metric, a ramp through the usual ranges, negative and huge
///   values, a gap, a new session, a sample out of order, a sensor marked unsupported,
///   the first and last years an event time can have) and the rules of every GPU
///   resolve with the overrides applied.
pub fn rules_toml(data: &[u8]) {
    let text = text(data);
    let rules = match RuleSet::from_toml(&text, ORIGIN) {
        Ok(r) => r,
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.contains(ORIGIN), "error without the file: {shown}");
            line_in_range(&shown, ORIGIN, &text);
            return;
        }
    };
    for host in ["h0", "h1", "lab-1"] {
        for gpu in ["g0", "g1"] {
            let _ = rules.for_gpu(host, gpu);
        }
    }
    let mut detector = Detector::new(rules);
    let mut out: Vec<AnomalyEvent> = Vec::new();
    static STREAM: OnceLock<Vec<Sample>> = OnceLock::new();
    for sample in STREAM.get_or_init(stream) {
        detector.observe(sample, &mut out);
    }
    for event in &out {
        assert!(!event.anomaly_id.is_empty() && !event.event_id.is_empty());
    }
}

/// The samples every rule set is run on.
fn stream() -> Vec<Sample> {
    let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut out = Vec::new();
    for i in 0..48u32 {
        let (host, gpu) = if i % 2 == 0 {
            ("h0", "g0")
        } else {
            ("lab-1", "g1")
        };
        let mut secs = i64::from(i);
        if i >= 30 {
            secs += 600; // a gap: missing / lost
        }
        if i == 40 {
            secs -= 700; // out of order
        }
        let session = if i < 36 { "s1" } else { "s2" };
        let mut metrics = gpustream::Metrics::default();
        for (k, m) in Metric::ALL.iter().enumerate() {
            let k = k as f64;
            let v = match i {
                20 => 1e300,
                21 => -1e300,
                22 => 0.0,
                _ => (f64::from(i) * 7.0 + k * 13.0) % 240.0 - 20.0,
            };
            metrics.set(*m, v);
        }
        out.push(sample(
            host,
            gpu,
            session,
            i,
            t0 + chrono::Duration::seconds(secs),
            metrics,
        ));
    }
    if let Some(s) = out.get_mut(5) {
        s.unsupported = vec![Metric::GpuTemp, Metric::FanRpm];
    }
    // The ends of the event-time range a wire message can have.
    let ends = ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"];
    for (seq, t) in [100, 101].into_iter().zip(ends) {
        let t: DateTime<Utc> = t.parse().expect("a valid time");
        let mut metrics = gpustream::Metrics::default();
        metrics.set(Metric::GpuTemp, 95.0);
        out.push(sample("h2", "g0", "s1", seq, t, metrics));
    }
    out
}

fn sample(
    host: &str,
    gpu: &str,
    session: &str,
    seq: u32,
    event_time: DateTime<Utc>,
    metrics: gpustream::Metrics,
) -> Sample {
    Sample {
        event_id: event_id(Source::Sim, host, gpu, session, u64::from(seq)),
        event_time,
        host: host.into(),
        gpu: gpu.into(),
        gpu_index: 0,
        gpu_name: None,
        source: Source::Sim,
        session: session.into(),
        seq: u64::from(seq),
        metrics,
        unsupported: Vec::new(),
        extra: Default::default(),
    }
}
