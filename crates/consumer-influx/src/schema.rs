//! What consumer-influx writes to InfluxDB: the measurements and their tag and field keys.
//!
//! The encoder ([`crate::line_protocol`]) writes every key from the constants here and the
//! per-metric fields from the metric catalogue ([`gpustream::Metric`]), so whatever reads
//! InfluxDB (the Grafana dashboards and their tests) can check the names it queries
//! against what is actually written. The tests of this module encode a sample, an anomaly
//! and a rollup and compare the keys of the lines with these lists, both ways.
//!
//! | measurement | tags | fields |
//! |---|---|---|
//! | [`SAMPLES_MEASUREMENT`] | [`SAMPLE_TAGS`] | [`SAMPLE_FIXED_FIELDS`], one per [`Metric`], `extra` entries |
//! | [`ANOMALIES_MEASUREMENT`] | [`ANOMALY_TAGS`] | [`ANOMALY_FIELDS`] |
//! | [`ROLLUPS_MEASUREMENT`] | [`ROLLUP_TAGS`] | [`ROLLUP_FIXED_FIELDS`], `<metric>_<stat>` per [`Metric`] and [`RollupStat`] |
//!
//! A sample's `extra` entries (source columns outside the catalogue, e.g. GPU-Z sensors
//! without a canonical metric) become fields under their original names; they depend on
//! the data, so no list can hold them, and [`Measurement::fields`] leaves them out.

use std::collections::BTreeSet;

use gpustream::Metric;
use gpustream::rollup::MetricAgg;

/// Measurement of GPU samples.
pub const SAMPLES_MEASUREMENT: &str = "gpu_samples";
/// Measurement of anomaly transitions.
pub const ANOMALIES_MEASUREMENT: &str = "gpu_anomalies";
/// Measurement of 1-minute rollups.
pub const ROLLUPS_MEASUREMENT: &str = "gpu_rollups_1m";

/// Tag keys.
pub mod tag {
    /// Host the GPU is in (every measurement).
    pub const HOST: &str = "host";
    /// GPU id within its host (every measurement).
    pub const GPU: &str = "gpu";
    /// Source of the data, e.g. `gpuz`, `nvml` (every measurement).
    pub const SOURCE: &str = "source";
    /// Marketing name of the GPU (samples, when known).
    pub const GPU_NAME: &str = "gpu_name";
    /// Detection rule (anomalies).
    pub const RULE: &str = "rule";
    /// Severity of the rule (anomalies).
    pub const SEVERITY: &str = "severity";
    /// `firing` or `resolved` (anomalies).
    pub const STATE: &str = "state";
}

/// Field keys that are not derived from the metric catalogue.
pub mod field {
    /// Sequence number of a sample within its session (integer).
    pub const SEQ: &str = "seq";
    /// Index of the GPU within its host (integer).
    pub const GPU_INDEX: &str = "gpu_index";
    /// Comma-separated metric columns the source does not support (string).
    pub const UNSUPPORTED: &str = "unsupported";
    /// Id shared by the transitions of one anomaly (string).
    pub const ANOMALY_ID: &str = "anomaly_id";
    /// Human-readable description of a transition (string).
    pub const MESSAGE: &str = "message";
    /// Metric column the rule looks at (string, when the rule has one).
    pub const METRIC: &str = "metric";
    /// When the anomaly started, epoch milliseconds (integer).
    pub const STARTED_AT_MS: &str = "started_at_ms";
    /// The rule's threshold (float, when it has one).
    pub const THRESHOLD: &str = "threshold";
    /// The value that crossed it (float, when known).
    pub const VALUE: &str = "value";
    /// Samples in a rollup window (integer).
    pub const COUNT: &str = "count";
}

/// Tag keys of [`SAMPLES_MEASUREMENT`], in the (sorted) order they are written.
pub const SAMPLE_TAGS: &[&str] = &[tag::GPU, tag::GPU_NAME, tag::HOST, tag::SOURCE];
/// Field keys of [`SAMPLES_MEASUREMENT`] besides the metric columns and `extra` entries.
pub const SAMPLE_FIXED_FIELDS: &[&str] = &[field::SEQ, field::GPU_INDEX, field::UNSUPPORTED];

/// Tag keys of [`ANOMALIES_MEASUREMENT`], in the (sorted) order they are written.
pub const ANOMALY_TAGS: &[&str] = &[
    tag::GPU,
    tag::HOST,
    tag::RULE,
    tag::SEVERITY,
    tag::SOURCE,
    tag::STATE,
];
/// Field keys of [`ANOMALIES_MEASUREMENT`].
pub const ANOMALY_FIELDS: &[&str] = &[
    field::ANOMALY_ID,
    field::MESSAGE,
    field::METRIC,
    field::STARTED_AT_MS,
    field::THRESHOLD,
    field::VALUE,
];

/// Tag keys of [`ROLLUPS_MEASUREMENT`], in the (sorted) order they are written.
pub const ROLLUP_TAGS: &[&str] = &[tag::GPU, tag::HOST, tag::SOURCE];
/// Field keys of [`ROLLUPS_MEASUREMENT`] besides the per-metric statistics.
pub const ROLLUP_FIXED_FIELDS: &[&str] = &[field::COUNT];

/// One statistic a rollup keeps per metric; its field is `<metric column>_<suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupStat {
    /// Smallest reading of the window.
    Min,
    /// Mean of the readings.
    Mean,
    /// Largest reading.
    Max,
    /// Reading with the latest event time.
    Last,
}

impl RollupStat {
    /// Every statistic, in the order they are written.
    pub const ALL: [RollupStat; 4] = [
        RollupStat::Min,
        RollupStat::Mean,
        RollupStat::Max,
        RollupStat::Last,
    ];

    /// Suffix of the field name: `min`, `mean`, `max`, `last`.
    pub const fn suffix(self) -> &'static str {
        match self {
            RollupStat::Min => "min",
            RollupStat::Mean => "mean",
            RollupStat::Max => "max",
            RollupStat::Last => "last",
        }
    }

    /// This statistic of an aggregate.
    pub fn of(self, agg: &MetricAgg) -> f64 {
        match self {
            RollupStat::Min => agg.min,
            RollupStat::Mean => agg.mean,
            RollupStat::Max => agg.max,
            RollupStat::Last => agg.last,
        }
    }

    /// Field name of this statistic of a metric column, e.g. `gpu_temp_c_max`.
    pub fn field(self, column: &str) -> String {
        format!("{column}_{}", self.suffix())
    }
}

/// A measurement consumer-influx writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measurement {
    /// [`SAMPLES_MEASUREMENT`]: one point per sample.
    Samples,
    /// [`ANOMALIES_MEASUREMENT`]: one point per anomaly transition.
    Anomalies,
    /// [`ROLLUPS_MEASUREMENT`]: one point per GPU and minute.
    Rollups,
}

impl Measurement {
    /// Every measurement.
    pub const ALL: [Measurement; 3] = [
        Measurement::Samples,
        Measurement::Anomalies,
        Measurement::Rollups,
    ];

    /// Its name in InfluxDB.
    pub const fn name(self) -> &'static str {
        match self {
            Measurement::Samples => SAMPLES_MEASUREMENT,
            Measurement::Anomalies => ANOMALIES_MEASUREMENT,
            Measurement::Rollups => ROLLUPS_MEASUREMENT,
        }
    }

    /// The measurement named `name`, if consumer-influx writes one.
    pub fn from_name(name: &str) -> Option<Measurement> {
        Measurement::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its tag keys.
    pub const fn tags(self) -> &'static [&'static str] {
        match self {
            Measurement::Samples => SAMPLE_TAGS,
            Measurement::Anomalies => ANOMALY_TAGS,
            Measurement::Rollups => ROLLUP_TAGS,
        }
    }

    /// Every field key it can have: the fixed ones and those of each catalogue metric.
    /// A sample's `extra` fields are not included (see the module docs).
    pub fn fields(self) -> Vec<String> {
        let metrics = Metric::ALL.iter().map(|m| m.column());
        match self {
            Measurement::Samples => SAMPLE_FIXED_FIELDS
                .iter()
                .copied()
                .chain(metrics)
                .map(str::to_string)
                .collect(),
            Measurement::Anomalies => ANOMALY_FIELDS.iter().map(|f| f.to_string()).collect(),
            Measurement::Rollups => ROLLUP_FIXED_FIELDS
                .iter()
                .map(|f| f.to_string())
                .chain(metrics.flat_map(|m| RollupStat::ALL.map(|s| s.field(m))))
                .collect(),
        }
    }

    /// Tag and field keys together: every column a query of this measurement may name.
    pub fn columns(self) -> BTreeSet<String> {
        self.tags()
            .iter()
            .map(|t| t.to_string())
            .chain(self.fields())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use gpustream::rollup::Rollup;
    use gpustream::{AnomalyEvent, AnomalyState, Metrics, Sample, Severity, Source, event_id};
    use influxdb_line_protocol::{ParsedLine, parse_lines};

    use super::*;
    use crate::line_protocol::{encode_anomaly, encode_rollup, encode_sample};

    fn parse_one(text: &str) -> ParsedLine<'_> {
        let mut lines: Vec<_> = parse_lines(text).collect();
        assert_eq!(lines.len(), 1, "{text}");
        match lines.remove(0) {
            Ok(line) => line,
            Err(e) => panic!("line protocol does not parse: {e}\n{text}"),
        }
    }

    /// The measurement, tag keys and field keys of one line.
    fn keys(text: &str) -> (String, BTreeSet<String>, BTreeSet<String>) {
        let line = parse_one(text);
        let tags = line
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, _)| k.to_string())
            .collect();
        let fields = line.field_set.iter().map(|(k, _)| k.to_string()).collect();
        (line.series.measurement.to_string(), tags, fields)
    }

    fn set(names: impl IntoIterator<Item = impl ToString>) -> BTreeSet<String> {
        names.into_iter().map(|n| n.to_string()).collect()
    }

    /// Writes a line with every optional part present, so its keys must be exactly the
    /// listed ones: a key the encoder writes but the lists lack, or a listed key it never
    /// writes, fails here.
    fn assert_written_as_listed(m: Measurement, text: &str, extra_fields: &[&str]) {
        let (measurement, tags, fields) = keys(text);
        assert_eq!(measurement, m.name(), "{text}");
        assert_eq!(tags, set(m.tags()), "tags of {measurement}: {text}");
        let mut want = set(m.fields());
        want.extend(set(extra_fields));
        assert_eq!(fields, want, "fields of {measurement}: {text}");
        assert_eq!(
            Measurement::from_name(&measurement),
            Some(m),
            "{measurement}"
        );
    }

    fn time(s: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_opt(s, 0).single().expect("valid test time")
    }

    #[test]
    fn a_sample_line_has_exactly_the_listed_keys() {
        let mut metrics = Metrics::default();
        for (i, m) in Metric::ALL.iter().enumerate() {
            metrics.set(*m, i as f64);
        }
        let sample = Sample {
            event_id: event_id(Source::Gpuz, "h", "gpu0", "s1", 7),
            event_time: time(1_700_000_000),
            host: "h".to_string(),
            gpu: "gpu0".to_string(),
            gpu_index: 0,
            gpu_name: Some("NVIDIA GeForce RTX 3080".to_string()),
            source: Source::Gpuz,
            session: "s1".to_string(),
            seq: 7,
            metrics,
            unsupported: vec![Metric::FanRpm],
            extra: BTreeMap::from([("GPU Clock [MHz]".to_string(), 1.5)]),
        };
        let mut out = String::new();
        encode_sample(&mut out, &sample).expect("encodes");
        // The one key outside the lists is the `extra` entry, under its own name.
        assert_written_as_listed(Measurement::Samples, &out, &["GPU Clock [MHz]"]);
    }

    #[test]
    fn an_anomaly_line_has_exactly_the_listed_keys() {
        let event = AnomalyEvent {
            event_id: "e1".to_string(),
            anomaly_id: "a1".to_string(),
            state: AnomalyState::Firing,
            rule: "gpu_temp_high".to_string(),
            severity: Severity::Critical,
            host: "h".to_string(),
            gpu: "gpu0".to_string(),
            gpu_index: 0,
            source: Source::Nvml,
            session: "s".to_string(),
            event_time: time(1_700_000_100),
            started_at: time(1_700_000_040),
            metric: Some("gpu_temp_c".to_string()),
            value: Some(91.5),
            threshold: Some(90.0),
            message: "hot".to_string(),
            sample_event_id: "x".to_string(),
        };
        let mut out = String::new();
        encode_anomaly(&mut out, &event).expect("encodes");
        assert_written_as_listed(Measurement::Anomalies, &out, &[]);
    }

    #[test]
    fn a_rollup_line_has_exactly_the_listed_keys() {
        let metrics = Metric::ALL
            .iter()
            .map(|m| {
                let agg = MetricAgg {
                    count: 2,
                    min: 1.0,
                    mean: 1.5,
                    max: 2.0,
                    last: 2.0,
                };
                (m.column().to_string(), agg)
            })
            .collect();
        let rollup = Rollup {
            window_start: time(1_700_000_040),
            window_end: time(1_700_000_100),
            host: "h".to_string(),
            gpu: "gpu0".to_string(),
            gpu_index: 0,
            source: Source::Gpuz,
            count: 2,
            metrics,
        };
        let mut out = String::new();
        encode_rollup(&mut out, &rollup).expect("encodes");
        assert_written_as_listed(Measurement::Rollups, &out, &[]);
    }

    #[test]
    fn measurements_are_found_by_name_only() {
        for m in Measurement::ALL {
            assert_eq!(Measurement::from_name(m.name()), Some(m));
        }
        assert_eq!(Measurement::from_name("gpu_sample"), None);
        let rollups = Measurement::Rollups.columns();
        assert!(rollups.contains("gpu_temp_c_max"), "{rollups:?}");
        assert!(!rollups.contains("gpu_temp_c"), "{rollups:?}");
    }
}
