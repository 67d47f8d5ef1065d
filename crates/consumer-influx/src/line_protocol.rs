//! A small, allocation-free InfluxDB line-protocol encoder for samples, anomalies and
//! rollups.
//!
//! Every function appends to a caller-owned `String` (the batch buffer); nothing is
//! allocated per line or per field. Measurement names and keys come from [`crate::schema`],
//! which lists them for readers of InfluxDB.
//!
//! # Escaping
//!
//! The rules are those of InfluxDB 1.x/2.x (the Go parser), which is what this sink writes to:
//!
//! - measurement: `,` and space are escaped with a backslash;
//! - tag keys, tag values and field keys: `,`, `=` and space are escaped;
//! - string field values are quoted; `"` and `\` are escaped.
//!
//! Backslashes in keys and tag values are written as they are (`C:\GPU` stays `C:\GPU`),
//! except next to a character that cannot be written verbatim. The Go parser's scanners
//! disagree there: some treat `\\` as an escaped backslash, others look only at the byte
//! before a delimiter, and InfluxDB 1.x never un-escapes `\\` in keys. Disagreement can
//! merge lines (seen with InfluxDB 1.6.7: 239 of 240 points of one host lost), so:
//!
//! - a run of backslashes before an escaped character is written with an *odd* length
//!   (every scanner then agrees the character is escaped). InfluxDB 1.x then stores one
//!   backslash more when the run was odd: `a\,b` is stored as `a\\,b`;
//! - a key or tag value that *ends* in backslashes gets a `_` appended (`ends\` is stored
//!   as `ends\_`): otherwise the backslash would escape the delimiter after it;
//! - a tab, newline or carriage return in a key or tag value becomes a space (a newline
//!   would end the line).
//!
//! Empty tag values are left out (InfluxDB rejects `tag=`), as are non-finite floats.

use std::fmt::Write as _;

use gpustream::{AnomalyEvent, Metric, Sample};

use crate::error::{Error, Result};
use crate::schema::{
    ANOMALIES_MEASUREMENT, ROLLUPS_MEASUREMENT, RollupStat, SAMPLE_FIXED_FIELDS, SAMPLE_TAGS,
    SAMPLES_MEASUREMENT, field, tag,
};

/// What [`encode_sample`] had to leave out of a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoded {
    /// `extra` entries skipped: name empty, `time`, or clashing with a tag, a fixed field
    /// or a canonical metric column; or a non-finite value.
    pub skipped_fields: usize,
}

/// Timestamp of a sample's point, in nanoseconds since the Unix epoch.
///
/// InfluxDB identifies a point by measurement, tag set and timestamp: a second point with
/// the same three *replaces* the first. GPU-Z logs have one-second resolution and can hold
/// several rows within one second (and a source may repeat a timestamp), so the event time
/// alone would make such rows overwrite each other. Adding `seq % 1_000_000` nanoseconds
/// keeps rows of the same GPU that share a timestamp apart (their sequence numbers differ),
/// moves no point by more than a millisecond, and stays deterministic: re-writing the same
/// sample (a redelivery after a crash) lands on the same point, so writes are idempotent.
pub fn sample_timestamp_ns(sample: &Sample) -> Result<i64> {
    let offset = i64::try_from(sample.seq % 1_000_000).unwrap_or(0);
    sample
        .event_time
        .timestamp_nanos_opt()
        .and_then(|ns| ns.checked_add(offset))
        .ok_or_else(|| {
            Error::Encode(format!(
                "event_time {} is outside the nanosecond timestamp range",
                sample.event_time
            ))
        })
}

/// Whether an `extra` entry named `name` must not become a field of a sample line.
pub fn is_reserved_sample_field(name: &str) -> bool {
    name.is_empty()
        || name == "time"
        || SAMPLE_TAGS.contains(&name)
        || SAMPLE_FIXED_FIELDS.contains(&name)
        || Metric::from_column(name).is_some()
}

/// Appends the line of one sample (measurement [`SAMPLES_MEASUREMENT`]) to `out`.
///
/// Tags: `host`, `gpu`, `source`, and `gpu_name` when present. Fields: `seq` and
/// `gpu_index` (integers), every present metric (integer metrics as integers, others as
/// floats, unsupported ones included), every `extra` entry as a float named by its
/// original name, and `unsupported`, a string of comma-separated metric columns, when the
/// sample marks any. On error nothing is appended.
pub fn encode_sample(out: &mut String, sample: &Sample) -> Result<Encoded> {
    let ts = sample_timestamp_ns(sample)?;
    let seq = i64::try_from(sample.seq).map_err(|_| {
        Error::Encode(format!(
            "seq {} does not fit a signed 64-bit integer",
            sample.seq
        ))
    })?;
    let mut skipped_fields = 0;

    let mut line = Line::start(out, SAMPLES_MEASUREMENT);
    // Tags in key order: InfluxDB sorts them otherwise.
    line.tag(tag::GPU, &sample.gpu);
    if let Some(name) = &sample.gpu_name {
        line.tag(tag::GPU_NAME, name);
    }
    line.tag(tag::HOST, &sample.host);
    line.tag(tag::SOURCE, sample.source.as_str());

    line.field_i64(field::SEQ, seq);
    line.field_i64(field::GPU_INDEX, i64::from(sample.gpu_index));
    for (metric, value) in sample.metrics.present() {
        if metric.kind().is_integer() {
            // Same conversion as the wire format's.
            line.field_i64(metric.column(), value as i64);
        } else {
            line.field_f64(metric.column(), value);
        }
    }
    for (name, value) in &sample.extra {
        if is_reserved_sample_field(name) || !value.is_finite() {
            skipped_fields += 1;
            continue;
        }
        line.field_f64(name, *value);
    }
    if !sample.unsupported.is_empty() {
        line.field_key(field::UNSUPPORTED);
        line.out.push('"');
        for (i, metric) in sample.unsupported.iter().enumerate() {
            if i > 0 {
                line.out.push(',');
            }
            push_string_content(line.out, metric.column());
        }
        line.out.push('"');
    }
    line.finish(ts);
    Ok(Encoded { skipped_fields })
}

/// Appends the line of one anomaly transition (measurement [`ANOMALIES_MEASUREMENT`]).
///
/// Tags: `host`, `gpu`, `source`, `rule`, `severity`, `state`. Fields: `anomaly_id`,
/// `message` and `metric` (strings), `value` and `threshold` (floats), `started_at_ms`
/// (integer). The timestamp is the transition's event time. On error nothing is appended.
pub fn encode_anomaly(out: &mut String, event: &AnomalyEvent) -> Result<()> {
    let ts = event.event_time.timestamp_nanos_opt().ok_or_else(|| {
        Error::Encode(format!(
            "event_time {} is outside the nanosecond timestamp range",
            event.event_time
        ))
    })?;
    let mut line = Line::start(out, ANOMALIES_MEASUREMENT);
    line.tag(tag::GPU, &event.gpu);
    line.tag(tag::HOST, &event.host);
    line.tag(tag::RULE, &event.rule);
    line.tag(tag::SEVERITY, event.severity.as_str());
    line.tag(tag::SOURCE, event.source.as_str());
    line.tag(tag::STATE, event.state.as_str());

    line.field_str(field::ANOMALY_ID, &event.anomaly_id);
    line.field_str(field::MESSAGE, &event.message);
    if let Some(metric) = &event.metric {
        line.field_str(field::METRIC, metric);
    }
    line.field_i64(field::STARTED_AT_MS, event.started_at.timestamp_millis());
    if let Some(threshold) = event.threshold {
        line.field_f64(field::THRESHOLD, threshold);
    }
    if let Some(value) = event.value {
        line.field_f64(field::VALUE, value);
    }
    line.finish(ts);
    Ok(())
}

/// Appends the line of one rollup window (measurement [`ROLLUPS_MEASUREMENT`]):
/// tags host, gpu, source; integer field `count`; `<metric>_min/_mean/_max/_last`
/// ([`RollupStat`]); timestamp = window start.
pub fn encode_rollup(out: &mut String, rollup: &gpustream::rollup::Rollup) -> Result<()> {
    let ts = rollup.window_start.timestamp_nanos_opt().ok_or_else(|| {
        Error::Encode(format!(
            "window_start {} is outside the nanosecond timestamp range",
            rollup.window_start
        ))
    })?;
    let mut line = Line::start(out, ROLLUPS_MEASUREMENT);
    line.tag(tag::GPU, &rollup.gpu);
    line.tag(tag::HOST, &rollup.host);
    line.tag(tag::SOURCE, rollup.source.as_str());
    line.field_i64(
        field::COUNT,
        i64::try_from(rollup.count).unwrap_or(i64::MAX),
    );
    let mut key = String::new();
    for (metric, agg) in &rollup.metrics {
        for stat in RollupStat::ALL {
            // The key of `RollupStat::field`, built in one reused buffer.
            key.clear();
            key.push_str(metric);
            key.push('_');
            key.push_str(stat.suffix());
            line.field_f64(&key, stat.of(agg));
        }
    }
    line.finish(ts);
    Ok(())
}

/// One line being appended to a buffer.
struct Line<'a> {
    out: &'a mut String,
    start: usize,
    fields: usize,
}

impl<'a> Line<'a> {
    fn start(out: &'a mut String, measurement: &str) -> Self {
        let start = out.len();
        push_measurement(out, measurement);
        Line {
            out,
            start,
            fields: 0,
        }
    }

    fn tag(&mut self, key: &str, value: &str) {
        if key.is_empty() || value.is_empty() {
            return;
        }
        self.out.push(',');
        push_key(self.out, key);
        self.out.push('=');
        push_key(self.out, value);
    }

    fn field_key(&mut self, key: &str) {
        self.out.push(if self.fields == 0 { ' ' } else { ',' });
        self.fields += 1;
        push_key(self.out, key);
        self.out.push('=');
    }

    fn field_f64(&mut self, key: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.field_key(key);
        // `Display` writes the shortest string that reads back as the same f64, without
        // an exponent: valid line protocol for every finite value.
        let _ = write!(self.out, "{value}");
    }

    fn field_i64(&mut self, key: &str, value: i64) {
        self.field_key(key);
        let _ = write!(self.out, "{value}i");
    }

    fn field_str(&mut self, key: &str, value: &str) {
        self.field_key(key);
        self.out.push('"');
        push_string_content(self.out, value);
        self.out.push('"');
    }

    /// Ends the line with its timestamp; a line without fields is removed again.
    fn finish(self, ts_ns: i64) {
        if self.fields == 0 {
            self.out.truncate(self.start);
            return;
        }
        let _ = writeln!(self.out, " {ts_ns}");
    }
}

/// Appends a measurement name, escaping `,` and space.
pub fn push_measurement(out: &mut String, name: &str) {
    push_escaped(out, name, |c| matches!(c, ',' | ' '));
}

/// Appends a tag key, tag value or field key, escaping `,`, `=` and space (see the
/// module docs for backslashes).
pub fn push_key(out: &mut String, s: &str) {
    push_escaped(out, s, |c| matches!(c, ',' | '=' | ' '));
}

fn push_escaped(out: &mut String, s: &str, special: fn(char) -> bool) {
    if !s
        .chars()
        .any(|c| special(c) || matches!(c, '\\' | '\n' | '\r' | '\t'))
    {
        out.push_str(s);
        return;
    }
    // Literal backslashes seen but not yet written.
    let mut run = 0usize;
    for c in s.chars() {
        let c = match c {
            '\\' => {
                run += 1;
                continue;
            }
            // Cannot be represented: a newline ends the line, a tab separates.
            '\n' | '\r' | '\t' => ' ',
            c => c,
        };
        if special(c) {
            // The escaping backslash makes an odd run, which every InfluxDB 1.x scanner
            // reads as "next character escaped"; the run keeps at least the literal ones.
            push_backslashes(out, run + 1 + run % 2);
        } else {
            push_backslashes(out, run);
        }
        out.push(c);
        run = 0;
    }
    if run > 0 {
        // A trailing backslash would escape the delimiter that follows.
        push_backslashes(out, run);
        out.push('_');
    }
}

fn push_backslashes(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push('\\');
    }
}

/// Appends the content of a string field value (without the quotes): `"` and `\` escaped.
pub fn push_string_content(out: &mut String, s: &str) {
    if !s.bytes().any(|b| matches!(b, b'"' | b'\\')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, TimeZone, Utc};
    use gpustream::{AnomalyState, Metrics, Severity, Source, event_id};
    use influxdb_line_protocol::{FieldValue, ParsedLine, parse_lines};

    use super::*;

    fn time(s: i64, ns: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(s, ns).single().expect("valid test time")
    }

    fn sample(host: &str, seq: u64) -> Sample {
        let mut metrics = Metrics::default();
        metrics.set(Metric::GpuTemp, 63.5);
        metrics.set(Metric::BoardPower, 120.25);
        metrics.set(Metric::PState, 2.0);
        metrics.set(Metric::FanRpm, 0.0);
        Sample {
            event_id: event_id(Source::Gpuz, host, "gpu0", "s1", seq),
            event_time: time(1_700_000_000, 0),
            host: host.to_string(),
            gpu: "gpu0".to_string(),
            gpu_index: 0,
            gpu_name: Some("NVIDIA GeForce RTX 3080".to_string()),
            source: Source::Gpuz,
            session: "s1".to_string(),
            seq,
            metrics,
            unsupported: vec![],
            extra: BTreeMap::new(),
        }
    }

    fn parse_one(text: &str) -> ParsedLine<'_> {
        let mut lines: Vec<_> = parse_lines(text).collect();
        assert_eq!(lines.len(), 1, "{text}");
        match lines.remove(0) {
            Ok(line) => line,
            Err(e) => panic!("line protocol does not parse: {e}\n{text}"),
        }
    }

    fn encode(s: &Sample) -> String {
        let mut out = String::new();
        encode_sample(&mut out, s).expect("encodes");
        out
    }

    #[test]
    fn sample_line_has_expected_shape() {
        let s = sample("ws1", 12);
        let text = encode(&s);
        assert_eq!(
            text,
            "gpu_samples,gpu=gpu0,gpu_name=NVIDIA\\ GeForce\\ RTX\\ 3080,host=ws1,source=gpuz \
             seq=12i,gpu_index=0i,gpu_temp_c=63.5,fan_rpm=0,board_power_w=120.25,pstate=2i \
             1700000000000000012\n"
        );
        let line = parse_one(&text);
        assert_eq!(line.series.measurement, SAMPLES_MEASUREMENT);
        assert_eq!(line.field_value("seq"), Some(&FieldValue::I64(12)));
        assert_eq!(line.field_value("pstate"), Some(&FieldValue::I64(2)));
        assert_eq!(line.field_value("gpu_temp_c"), Some(&FieldValue::F64(63.5)));
        assert_eq!(line.timestamp, Some(1_700_000_000_000_000_012));
    }

    #[test]
    fn tricky_tag_values_round_trip() {
        let hosts = [
            "host with spaces",
            "comma,host",
            "eq=host",
            "a=b,c d",
            "quote\"host",
            "\"quoted\"",
            "back\\slash",
            "back\\,slash",
            "C:\\GPU\\0",
            "ünïcødé-東京-🚀",
            "trailing space ",
            " leading",
            "x\\y z",
        ];
        for host in hosts {
            let mut s = sample(host, 1);
            s.gpu = format!("gpu {host}");
            s.gpu_name = Some(format!("{host}=name"));
            let text = encode(&s);
            let line = parse_one(&text);
            assert_eq!(
                line.tag_value("host").map(|v| v.as_str()),
                Some(host),
                "{text}"
            );
            assert_eq!(
                line.tag_value("gpu").map(|v| v.as_str()),
                Some(format!("gpu {host}").as_str()),
                "{text}"
            );
            assert_eq!(
                line.tag_value("gpu_name").map(|v| v.as_str()),
                Some(format!("{host}=name").as_str()),
                "{text}"
            );
            assert_eq!(line.field_value("seq"), Some(&FieldValue::I64(1)));
        }
    }

    /// A backslash run before an escaped character gets an odd length (see module docs).
    #[test]
    fn backslash_runs_before_special_characters_have_odd_length() {
        let cases = [
            ("a\\,b", "a\\\\\\,b"),
            ("a\\\\,b", "a\\\\\\,b"),
            ("a\\\\\\ b", "a\\\\\\\\\\ b"),
            ("x\\=y", "x\\\\\\=y"),
            ("q\\\"", "q\\\""),
            ("C:\\GPU\\0", "C:\\GPU\\0"),
            ("ends\\\\", "ends\\\\_"),
            ("tab\\\tx", "tab\\\\\\ x"),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            push_key(&mut out, input);
            assert_eq!(out, want, "{input}");
            // Odd runs before every delimiter-like character: all Go scanners agree.
            let bytes = out.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if matches!(b, b',' | b'=' | b' ') {
                    let run = bytes[..i].iter().rev().take_while(|c| **c == b'\\').count();
                    assert_eq!(run % 2, 1, "{out}");
                }
            }
        }
    }

    #[test]
    fn trailing_backslash_and_line_breaks_are_neutralised() {
        let mut s = sample("ends\\", 1);
        s.gpu = "line\nbreak\ttab\rcr".to_string();
        let text = encode(&s);
        assert_eq!(text.lines().count(), 1, "{text}");
        let line = parse_one(&text);
        assert_eq!(line.tag_value("host").map(|v| v.as_str()), Some("ends\\_"));
        assert_eq!(
            line.tag_value("gpu").map(|v| v.as_str()),
            Some("line break tab cr")
        );
    }

    #[test]
    fn extra_fields_keep_their_names() {
        let mut s = sample("ws1", 3);
        let names = [
            "GPU Clock [MHz]",
            "Memory Temperature [°C]",
            "PerfCap, Reason",
            "a=b",
            "Wert \"x\"",
            "Ünïcødé 温度",
            "back\\slash",
        ];
        for (i, name) in names.iter().enumerate() {
            s.extra.insert((*name).to_string(), i as f64 + 0.5);
        }
        let text = encode(&s);
        let line = parse_one(&text);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(
                line.field_value(name),
                Some(&FieldValue::F64(i as f64 + 0.5)),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn reserved_and_non_finite_extras_are_skipped() {
        let mut s = sample("ws1", 3);
        for name in ["", "time", "seq", "host", "gpu_temp_c", "unsupported"] {
            s.extra.insert(name.to_string(), 1.0);
        }
        s.extra.insert("nan".to_string(), f64::NAN);
        s.extra.insert("inf".to_string(), f64::INFINITY);
        s.extra.insert("kept".to_string(), 7.0);
        let mut out = String::new();
        let enc = encode_sample(&mut out, &s).expect("encodes");
        assert_eq!(enc.skipped_fields, 8);
        let line = parse_one(&out);
        assert_eq!(line.field_value("kept"), Some(&FieldValue::F64(7.0)));
        assert_eq!(line.field_value("gpu_temp_c"), Some(&FieldValue::F64(63.5)));
        assert_eq!(line.field_value("time"), None);
        assert_eq!(line.field_set.len(), 7);
    }

    #[test]
    fn unsupported_metrics_are_written_and_listed() {
        let mut s = sample("ws1", 4);
        s.unsupported = vec![Metric::FanRpm, Metric::MemoryTemp];
        let text = encode(&s);
        let line = parse_one(&text);
        assert_eq!(line.field_value("fan_rpm"), Some(&FieldValue::F64(0.0)));
        match line.field_value("unsupported") {
            Some(FieldValue::String(v)) => assert_eq!(v.as_str(), "fan_rpm,memory_temp_c"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_gpu_name_is_not_a_tag() {
        let mut s = sample("ws1", 1);
        s.gpu_name = Some(String::new());
        let text = encode(&s);
        assert!(!text.contains("gpu_name"), "{text}");
        s.gpu_name = None;
        assert!(!encode(&s).contains("gpu_name"));
    }

    #[test]
    fn rows_sharing_a_timestamp_get_distinct_points() {
        let a = sample("ws1", 41);
        let b = sample("ws1", 42);
        assert_eq!(a.event_time, b.event_time);
        let ta = sample_timestamp_ns(&a).expect("in range");
        let tb = sample_timestamp_ns(&b).expect("in range");
        assert_ne!(ta, tb);
        assert_eq!(tb - ta, 1);
        let mut c = sample("ws1", 3_000_007);
        c.event_time = time(1_700_000_000, 250_000_000);
        assert_eq!(
            sample_timestamp_ns(&c).expect("in range"),
            1_700_000_000_250_000_007
        );
    }

    #[test]
    fn out_of_range_timestamp_is_an_error_and_leaves_buffer_alone() {
        let mut s = sample("ws1", 1);
        s.event_time = time(10_000_000_000, 0); // year 2286
        let mut out = String::from("previous line\n");
        assert!(matches!(encode_sample(&mut out, &s), Err(Error::Encode(_))));
        assert_eq!(out, "previous line\n");
    }

    #[test]
    fn float_values_round_trip_exactly() {
        let mut s = sample("ws1", 1);
        let values = [
            0.1 + 0.2,
            1e-7,
            123_456_789.123_456_79,
            -0.0,
            1e21,
            f64::MIN_POSITIVE,
        ];
        for (i, v) in values.iter().enumerate() {
            s.extra.insert(format!("v{i}"), *v);
        }
        let text = encode(&s);
        let line = parse_one(&text);
        for (i, v) in values.iter().enumerate() {
            match line.field_value(&format!("v{i}")) {
                Some(FieldValue::F64(got)) => assert_eq!(got.to_bits(), v.to_bits(), "{v}"),
                other => panic!("v{i}: {other:?}"),
            }
        }
    }

    fn anomaly() -> AnomalyEvent {
        AnomalyEvent {
            event_id: "e1".to_string(),
            anomaly_id: "a1".to_string(),
            state: AnomalyState::Firing,
            rule: "gpu_temp_high".to_string(),
            severity: Severity::Critical,
            host: "rack 1, \"node\"=7".to_string(),
            gpu: "gpu0".to_string(),
            gpu_index: 0,
            source: Source::Nvml,
            session: "s".to_string(),
            event_time: time(1_700_000_100, 5),
            started_at: time(1_700_000_040, 0),
            metric: Some("gpu_temp_c".to_string()),
            value: Some(91.5),
            threshold: Some(90.0),
            message: "GPU \"hot\" at C:\\temp\nline two".to_string(),
            sample_event_id: "x".to_string(),
        }
    }

    #[test]
    fn anomaly_line_round_trips() {
        let ev = anomaly();
        let mut out = String::new();
        encode_anomaly(&mut out, &ev).expect("encodes");
        let parsed: Vec<_> = parse_lines(&out).collect();
        assert_eq!(parsed.len(), 1, "{out}");
        let line = match &parsed[0] {
            Ok(l) => l,
            Err(e) => panic!("{e}: {out}"),
        };
        assert_eq!(line.series.measurement, ANOMALIES_MEASUREMENT);
        assert_eq!(
            line.tag_value("host").map(|v| v.as_str()),
            Some(ev.host.as_str())
        );
        assert_eq!(line.tag_value("state").map(|v| v.as_str()), Some("firing"));
        assert_eq!(
            line.tag_value("severity").map(|v| v.as_str()),
            Some("critical")
        );
        assert_eq!(
            line.tag_value("rule").map(|v| v.as_str()),
            Some("gpu_temp_high")
        );
        match line.field_value("message") {
            Some(FieldValue::String(v)) => assert_eq!(v.as_str(), ev.message),
            other => panic!("{other:?}"),
        }
        assert_eq!(line.field_value("value"), Some(&FieldValue::F64(91.5)));
        assert_eq!(line.field_value("threshold"), Some(&FieldValue::F64(90.0)));
        assert_eq!(
            line.field_value("started_at_ms"),
            Some(&FieldValue::I64(1_700_000_040_000))
        );
        assert_eq!(line.timestamp, Some(1_700_000_100_000_000_005));
    }

    #[test]
    fn anomaly_without_optional_fields() {
        let mut ev = anomaly();
        ev.metric = None;
        ev.value = None;
        ev.threshold = Some(f64::NAN);
        let mut out = String::new();
        encode_anomaly(&mut out, &ev).expect("encodes");
        let line = parse_one(&out);
        assert_eq!(line.field_value("metric"), None);
        assert_eq!(line.field_value("value"), None);
        assert_eq!(line.field_value("threshold"), None);
        assert_eq!(line.field_set.len(), 3);
    }

    #[test]
    fn many_lines_parse_as_many_points() {
        let mut out = String::new();
        for seq in 0..100 {
            encode_sample(&mut out, &sample("h o,s=t", seq)).expect("encodes");
            encode_anomaly(&mut out, &anomaly()).expect("encodes");
        }
        let parsed: Vec<_> = parse_lines(&out).collect();
        assert_eq!(parsed.len(), 200);
        assert!(parsed.iter().all(Result::is_ok));
    }
}
