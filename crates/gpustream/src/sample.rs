//! The sample model: one reading of one GPU at one instant.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::metric::{METRIC_COUNT, Metric};

/// Where a sample came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A GPU-Z "Log to file" sensor log.
    Gpuz,
    /// A live GPU read through NVML.
    Nvml,
    /// The built-in fleet simulator.
    Sim,
}

impl Source {
    /// Name used on the wire, in the lake and as an InfluxDB tag.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Gpuz => "gpuz",
            Source::Nvml => "nvml",
            Source::Sim => "sim",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The canonical metric values of a sample: one typed, nullable slot per [`Metric`].
///
/// ```
/// use gpustream::{Metric, Metrics};
/// let mut m = Metrics::default();
/// m.set(Metric::GpuTemp, 63.0);
/// assert_eq!(m.get(Metric::GpuTemp), Some(63.0));
/// assert_eq!(m.get(Metric::BoardPower), None);
/// assert_eq!(m.present().count(), 1);
/// ```
#[derive(Clone, PartialEq)]
pub struct Metrics([Option<f64>; METRIC_COUNT]);

impl Default for Metrics {
    fn default() -> Self {
        Metrics([None; METRIC_COUNT])
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.present().map(|(m, v)| (m.column(), v)))
            .finish()
    }
}

impl Metrics {
    /// Value of a metric, `None` when absent.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.0[metric.index()]
    }

    /// Sets a metric. Non-finite values are stored as absent: they have no meaning here.
    pub fn set(&mut self, metric: Metric, value: f64) {
        self.0[metric.index()] = value.is_finite().then_some(value);
    }

    /// Clears a metric.
    pub fn clear(&mut self, metric: Metric) {
        self.0[metric.index()] = None;
    }

    /// Present metrics with their values, in catalogue order.
    pub fn present(&self) -> impl Iterator<Item = (Metric, f64)> + '_ {
        Metric::ALL
            .iter()
            .zip(self.0.iter())
            .filter_map(|(m, v)| v.map(|v| (*m, v)))
    }

    /// Whether no metric is present.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

impl Serialize for Metrics {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (metric, value) in self.present() {
            if metric.kind().is_integer() {
                map.serialize_entry(metric.column(), &(value as i64))?;
            } else {
                map.serialize_entry(metric.column(), &value)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Straight into the slots: no intermediate map, and names borrowed from the
        // payload (serde's `Cow<str>` always allocates) on the decode hot path.
        struct Name<'a>(std::borrow::Cow<'a, str>);
        impl<'de> Deserialize<'de> for Name<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Name<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a metric column name")
                    }
                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                        Ok(Name(std::borrow::Cow::Borrowed(v)))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                        Ok(Name(std::borrow::Cow::Owned(v.to_string())))
                    }
                }
                d.deserialize_str(V)
            }
        }
        struct Slots;
        impl<'de> serde::de::Visitor<'de> for Slots {
            type Value = Metrics;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of metric column names to numbers")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Metrics, A::Error> {
                let mut out = Metrics::default();
                while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
                    let value: f64 = map.next_value()?;
                    let metric = Metric::from_column(&name).ok_or_else(|| {
                        serde::de::Error::custom(format!("unknown metric `{name}`"))
                    })?;
                    if !value.is_finite() {
                        return Err(serde::de::Error::custom(format!(
                            "metric `{name}` is not finite"
                        )));
                    }
                    out.set(metric, value);
                }
                Ok(out)
            }
        }
        d.deserialize_map(Slots)
    }
}

/// One reading of one GPU at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Deterministic id: the same source row always yields the same id (see [`event_id`]).
    pub event_id: String,
    /// Event time in UTC (GPU-Z local times are converted with the user's timezone).
    pub event_time: DateTime<Utc>,
    /// Host the GPU is in.
    pub host: String,
    /// Stable GPU id within the host: a user-given name, or the NVML UUID.
    pub gpu: String,
    /// GPU index on the host.
    pub gpu_index: u32,
    /// GPU model name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_name: Option<String>,
    /// Producing source.
    pub source: Source,
    /// Logging session: a GPU-Z header block, an NVML sampler run, a simulator run.
    pub session: String,
    /// Per-(host, GPU, source) sequence number; orders samples that share a timestamp.
    pub seq: u64,
    /// Canonical metrics.
    pub metrics: Metrics,
    /// Sensors this source reports but that do not work on this GPU (e.g. a fan RPM
    /// that reads 0 for a whole session). Their values must not be read as real lows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<Metric>,
    /// Columns the catalogue does not know, by their original name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

impl Sample {
    /// The Kafka message key: all samples of one GPU share it, so they keep their order.
    pub fn key(&self) -> String {
        format!("{}/{}", self.host, self.gpu)
    }

    /// Whether the metric is marked unsupported for this sample's session.
    pub fn is_unsupported(&self, metric: Metric) -> bool {
        self.unsupported.contains(&metric)
    }

    /// A metric's value if present and supported: what detection rules should read.
    pub fn reading(&self, metric: Metric) -> Option<f64> {
        if self.is_unsupported(metric) {
            None
        } else {
            self.metrics.get(metric)
        }
    }
}

/// Derives a deterministic event id from a sample's identity.
///
/// The id is a 128-bit XXH3 hash (32 hex digits) of source, host, GPU, session and
/// sequence number: re-reading the same log row gives the same id, two rows never share one.
///
/// ```
/// use gpustream::{Source, event_id};
/// let a = event_id(Source::Gpuz, "ws1", "gpu0", "s1", 7);
/// assert_eq!(a, event_id(Source::Gpuz, "ws1", "gpu0", "s1", 7));
/// assert_ne!(a, event_id(Source::Gpuz, "ws1", "gpu0", "s1", 8));
/// assert_eq!(a.len(), 32);
/// ```
pub fn event_id(source: Source, host: &str, gpu: &str, session: &str, seq: u64) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    // Unit-separator between fields so ("ab","c") and ("a","bc") differ.
    for part in [source.as_str(), host, gpu, session] {
        h.update(part.as_bytes());
        h.update(&[0x1f]);
    }
    h.update(&seq.to_le_bytes());
    format!("{:032x}", h.digest128())
}
