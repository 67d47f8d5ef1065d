//! Samples for tests, with the event ids the producer would give them.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use gpustream::{Metric, Metrics, Sample, Source, event_id};

/// A fixed, whole-minute time (2025-03-14 10:00:00 UTC), so window arithmetic in tests is
/// easy to read.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 10, 0, 0)
        .single()
        .expect("valid time")
}

/// Builds a [`Sample`]: simulated source, session `s`, time [`t0`], sequence 0, no
/// metrics, until set otherwise. The event id is derived at [`SampleBuilder::build`]
/// like the producer's, so equal builders give equal ids.
///
/// ```
/// use gpustream::Metric;
/// use gpustream_test_kit::SampleBuilder;
/// let s = SampleBuilder::new("host", "gpu0").seq(3).metric(Metric::GpuTemp, 71.5).build();
/// assert_eq!(s.metrics.get(Metric::GpuTemp), Some(71.5));
/// assert_eq!(s.event_id, SampleBuilder::new("host", "gpu0").seq(3).build().event_id);
/// ```
#[derive(Debug, Clone)]
pub struct SampleBuilder {
    sample: Sample,
}

impl SampleBuilder {
    /// A sample of GPU `gpu` on `host`.
    pub fn new(host: &str, gpu: &str) -> SampleBuilder {
        SampleBuilder {
            sample: Sample {
                event_id: String::new(),
                event_time: t0(),
                host: host.to_string(),
                gpu: gpu.to_string(),
                gpu_index: 0,
                gpu_name: None,
                source: Source::Sim,
                session: "s".to_string(),
                seq: 0,
                metrics: Metrics::default(),
                unsupported: Vec::new(),
                extra: BTreeMap::new(),
            },
        }
    }

    /// Event time.
    pub fn at(mut self, t: DateTime<Utc>) -> Self {
        self.sample.event_time = t;
        self
    }

    /// Event time `secs` seconds after [`t0`].
    pub fn at_secs(self, secs: i64) -> Self {
        self.at(t0() + chrono::Duration::seconds(secs))
    }

    /// Sequence number within the session.
    pub fn seq(mut self, seq: u64) -> Self {
        self.sample.seq = seq;
        self
    }

    /// Session id.
    pub fn session(mut self, session: &str) -> Self {
        self.sample.session = session.to_string();
        self
    }

    /// Where the sample came from.
    pub fn source(mut self, source: Source) -> Self {
        self.sample.source = source;
        self
    }

    /// GPU index on its host.
    pub fn index(mut self, index: u32) -> Self {
        self.sample.gpu_index = index;
        self
    }

    /// GPU model name.
    pub fn name(mut self, name: &str) -> Self {
        self.sample.gpu_name = Some(name.to_string());
        self
    }

    /// One metric reading.
    pub fn metric(mut self, metric: Metric, value: f64) -> Self {
        self.sample.metrics.set(metric, value);
        self
    }

    /// Marks a sensor unsupported in this session.
    pub fn unsupported(mut self, metric: Metric) -> Self {
        self.sample.unsupported.push(metric);
        self
    }

    /// A column the catalogue does not know, by its original name.
    pub fn extra(mut self, name: &str, value: f64) -> Self {
        self.sample.extra.insert(name.to_string(), value);
        self
    }

    /// The sample, with its producer-style event id.
    pub fn build(mut self) -> Sample {
        let s = &self.sample;
        self.sample.event_id = event_id(s.source, &s.host, &s.gpu, &s.session, s.seq);
        self.sample
    }
}
