//! `line_protocol_roundtrip`: samples, anomalies and rollups → InfluxDB line protocol →
//! InfluxData's parser.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use consumer_influx::line_protocol::{
    encode_anomaly, encode_rollup, encode_sample, is_reserved_sample_field,
};
use consumer_influx::schema::{
    ANOMALIES_MEASUREMENT, ROLLUPS_MEASUREMENT, RollupStat, SAMPLES_MEASUREMENT,
};
use gpustream::rollup::{MetricAgg, Rollup};
use gpustream::{AnomalyEvent, AnomalyState, Metric, Metrics, Sample, Severity, Source};
use influxdb_line_protocol::{FieldValue, ParsedLine, parse_lines};

use crate::input::Input;

/// A field value as the parser gives it back.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i64),
    /// Bits, so that `-0.0` and `0.0` differ.
    Float(u64),
    Str(String),
}

/// Builds a sample, an anomaly event and a rollup from `data`, encodes each and parses
/// the line back with `influxdb-line-protocol`. Checks:
///
/// - no panic, no hang;
/// - an event time outside the nanosecond range or a `seq` beyond `i64` is an error
///   that leaves the buffer as it was; anything else is exactly one line;
/// - the measurement, every tag and every field come back: numbers bit for bit
///   (integer metrics as `value as i64`), keys and tag values as written up to what
///   the module documents (tab, newline, carriage return → space; a trailing run of
///   backslashes gets a `_`; this parser reads `\\` as one backslash); empty tags,
///   reserved or non-finite `extra` entries and non-finite floats are left out, and
///   `skipped_fields` counts the extras left out.
pub fn line_protocol_roundtrip(data: &[u8]) {
    let mut input = Input::new(data);
    let sample = sample(&mut input);
    check_sample(&sample);
    let event = anomaly(&mut input);
    check_anomaly(&event);
    let rollup = rollup(&mut input);
    check_rollup(&rollup);
}

fn time(input: &mut Input<'_>) -> DateTime<Utc> {
    let secs = match input.byte() % 4 {
        // Anything chrono can hold, most of it outside InfluxDB's nanosecond range.
        0 => input.i64() % 8_000_000_000_000,
        1 => -i64::from(input.u32()),
        _ => 1_700_000_000 + i64::from(input.u32() % 100_000_000),
    };
    DateTime::from_timestamp(secs, input.u32() % 2_000_000_000).unwrap_or_default()
}

fn source(input: &mut Input<'_>) -> Source {
    [Source::Gpuz, Source::Nvml, Source::Sim][input.below(3)]
}

fn metric(input: &mut Input<'_>) -> Metric {
    Metric::ALL[input.below(Metric::ALL.len())]
}

fn sample(input: &mut Input<'_>) -> Sample {
    let host = input.string();
    let gpu = input.string();
    let gpu_name = input.bool().then(|| input.string());
    let event_time = time(input);
    let seq = if input.bool() {
        input.u64()
    } else {
        u64::from(input.u32())
    };
    let mut metrics = Metrics::default();
    for _ in 0..input.below(8) {
        let m = metric(input);
        metrics.set(m, input.f64());
    }
    let mut extra = BTreeMap::new();
    for _ in 0..input.below(6) {
        let name = if input.below(8) == 0 {
            // A reserved name: a tag, a fixed field or a metric column.
            ["host", "seq", "time", "unsupported", "gpu_temp_c", ""][input.below(6)].to_string()
        } else {
            input.string()
        };
        extra.insert(name, input.f64());
    }
    let unsupported = (0..input.below(3)).map(|_| metric(input)).collect();
    Sample {
        event_id: input.string(),
        event_time,
        host,
        gpu,
        gpu_index: input.u32(),
        gpu_name,
        source: source(input),
        session: input.string(),
        seq,
        metrics,
        unsupported,
        extra,
    }
}

fn anomaly(input: &mut Input<'_>) -> AnomalyEvent {
    let event_time = time(input);
    AnomalyEvent {
        event_id: input.string(),
        anomaly_id: input.string(),
        state: [AnomalyState::Firing, AnomalyState::Resolved][input.below(2)],
        rule: input.string(),
        severity: [Severity::Info, Severity::Warning, Severity::Critical][input.below(3)],
        host: input.string(),
        gpu: input.string(),
        gpu_index: input.u32(),
        source: source(input),
        session: input.string(),
        event_time,
        started_at: time(input),
        metric: input.bool().then(|| input.string()),
        value: input.bool().then(|| input.f64()),
        threshold: input.bool().then(|| input.f64()),
        message: input.string() + &input.string(),
        sample_event_id: input.string(),
    }
}

fn rollup(input: &mut Input<'_>) -> Rollup {
    let window_start = time(input);
    let mut metrics = BTreeMap::new();
    for _ in 0..input.below(4) {
        let name = input.string();
        let agg = MetricAgg {
            count: input.u64(),
            min: input.f64(),
            mean: input.f64(),
            max: input.f64(),
            last: input.f64(),
        };
        metrics.insert(name, agg);
    }
    Rollup {
        window_start,
        window_end: window_start,
        host: input.string(),
        gpu: input.string(),
        gpu_index: input.u32(),
        source: source(input),
        count: input.u64(),
        metrics,
    }
}

/// What this parser reads back for a key or tag value the encoder was given: tab,
/// newline and carriage return are spaces, a run of `n` backslashes reads as
/// `ceil(n / 2)` (the encoder keeps runs as they are, or makes them odd before an
/// escaped character; this parser takes `\\` as one backslash, InfluxDB 1.x keeps
/// both), and a trailing run is followed by `_`.
fn read_back(s: &str) -> String {
    let mut out = String::new();
    let mut run = 0usize;
    for c in s.chars() {
        if c == '\\' {
            run += 1;
            continue;
        }
        out.extend(std::iter::repeat_n('\\', run.div_ceil(2)));
        run = 0;
        out.push(if matches!(c, '\t' | '\n' | '\r') {
            ' '
        } else {
            c
        });
    }
    if run > 0 {
        out.extend(std::iter::repeat_n('\\', run.div_ceil(2)));
        out.push('_');
    }
    out
}

/// One line in `text`, parsed (a string field may hold a line break: the parser reads
/// it as part of the quoted string).
fn parse_one(text: &str) -> ParsedLine<'_> {
    assert!(text.ends_with('\n'), "{text:?}");
    let mut lines: Vec<_> = parse_lines(text).collect();
    assert_eq!(lines.len(), 1, "{text:?}");
    match lines.remove(0) {
        Ok(line) => line,
        Err(e) => panic!("does not parse: {e}\n{text:?}"),
    }
}

fn tags(line: &ParsedLine<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in line.series.tag_set.iter().flatten() {
        let dup = out.insert(k.to_string(), v.to_string());
        assert!(dup.is_none(), "tag `{k}` twice");
    }
    out
}

/// The fields, the last of a repeated key winning (as InfluxDB stores them).
fn fields(line: &ParsedLine<'_>) -> BTreeMap<String, Value> {
    line.field_set
        .iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::I64(i) => Value::Int(*i),
                FieldValue::F64(f) => Value::Float(f.to_bits()),
                FieldValue::String(s) => Value::Str(s.to_string()),
                other => panic!("`{k}`: unexpected {other:?}"),
            };
            (k.to_string(), v)
        })
        .collect()
}

fn expect_tag(tags: &mut BTreeMap<String, String>, key: &str, value: &str) {
    if !value.is_empty() {
        tags.insert(key.to_string(), read_back(value));
    }
}

fn expect_float(fields: &mut BTreeMap<String, Value>, key: &str, value: f64) {
    if value.is_finite() {
        fields.insert(read_back(key), Value::Float(value.to_bits()));
    }
}

fn check_sample(s: &Sample) {
    let mut out = String::new();
    let result = encode_sample(&mut out, s);
    let in_range = s
        .event_time
        .timestamp_nanos_opt()
        .is_some_and(|ns| ns.checked_add((s.seq % 1_000_000) as i64).is_some());
    if !in_range || i64::try_from(s.seq).is_err() {
        assert!(result.is_err(), "{s:?}");
        assert!(out.is_empty(), "nothing appended on error");
        return;
    }
    let encoded = result.unwrap_or_else(|e| panic!("{e}: {s:?}"));
    let line = parse_one(&out);
    assert_eq!(line.series.measurement.as_str(), SAMPLES_MEASUREMENT);

    let mut want_tags = BTreeMap::new();
    expect_tag(&mut want_tags, "gpu", &s.gpu);
    expect_tag(
        &mut want_tags,
        "gpu_name",
        s.gpu_name.as_deref().unwrap_or(""),
    );
    expect_tag(&mut want_tags, "host", &s.host);
    expect_tag(&mut want_tags, "source", s.source.as_str());
    assert_eq!(tags(&line), want_tags, "{out:?}");

    let mut want = BTreeMap::new();
    want.insert("seq".to_string(), Value::Int(s.seq as i64));
    want.insert("gpu_index".to_string(), Value::Int(i64::from(s.gpu_index)));
    for (m, v) in s.metrics.present() {
        if m.kind().is_integer() {
            want.insert(m.column().to_string(), Value::Int(v as i64));
        } else {
            expect_float(&mut want, m.column(), v);
        }
    }
    let mut skipped = 0;
    for (name, v) in &s.extra {
        if is_reserved_sample_field(name) || !v.is_finite() {
            skipped += 1;
        } else {
            expect_float(&mut want, name, *v);
        }
    }
    if !s.unsupported.is_empty() {
        let list: Vec<&str> = s.unsupported.iter().map(|m| m.column()).collect();
        want.insert("unsupported".to_string(), Value::Str(list.join(",")));
    }
    assert_eq!(fields(&line), want, "{out:?}");
    assert_eq!(encoded.skipped_fields, skipped);
    let ts = s
        .event_time
        .timestamp_nanos_opt()
        .map(|ns| ns + (s.seq % 1_000_000) as i64);
    assert_eq!(line.timestamp, ts);
}

fn check_anomaly(e: &AnomalyEvent) {
    let mut out = String::new();
    let result = encode_anomaly(&mut out, e);
    let Some(ts) = e.event_time.timestamp_nanos_opt() else {
        assert!(result.is_err() && out.is_empty());
        return;
    };
    result.unwrap_or_else(|err| panic!("{err}: {e:?}"));
    let line = parse_one(&out);
    assert_eq!(line.series.measurement.as_str(), ANOMALIES_MEASUREMENT);
    let mut want_tags = BTreeMap::new();
    expect_tag(&mut want_tags, "gpu", &e.gpu);
    expect_tag(&mut want_tags, "host", &e.host);
    expect_tag(&mut want_tags, "rule", &e.rule);
    expect_tag(&mut want_tags, "severity", e.severity.as_str());
    expect_tag(&mut want_tags, "source", e.source.as_str());
    expect_tag(&mut want_tags, "state", e.state.as_str());
    assert_eq!(tags(&line), want_tags, "{out:?}");
    let mut want = BTreeMap::new();
    want.insert("anomaly_id".to_string(), Value::Str(e.anomaly_id.clone()));
    want.insert("message".to_string(), Value::Str(e.message.clone()));
    if let Some(m) = &e.metric {
        want.insert("metric".to_string(), Value::Str(m.clone()));
    }
    want.insert(
        "started_at_ms".to_string(),
        Value::Int(e.started_at.timestamp_millis()),
    );
    if let Some(t) = e.threshold {
        expect_float(&mut want, "threshold", t);
    }
    if let Some(v) = e.value {
        expect_float(&mut want, "value", v);
    }
    assert_eq!(fields(&line), want, "{out:?}");
    assert_eq!(line.timestamp, Some(ts));
}

fn check_rollup(r: &Rollup) {
    let mut out = String::new();
    let result = encode_rollup(&mut out, r);
    let Some(ts) = r.window_start.timestamp_nanos_opt() else {
        assert!(result.is_err() && out.is_empty());
        return;
    };
    result.unwrap_or_else(|err| panic!("{err}: {r:?}"));
    let line = parse_one(&out);
    assert_eq!(line.series.measurement.as_str(), ROLLUPS_MEASUREMENT);
    let mut want_tags = BTreeMap::new();
    expect_tag(&mut want_tags, "gpu", &r.gpu);
    expect_tag(&mut want_tags, "host", &r.host);
    expect_tag(&mut want_tags, "source", r.source.as_str());
    assert_eq!(tags(&line), want_tags, "{out:?}");
    let mut want = BTreeMap::new();
    want.insert(
        "count".to_string(),
        Value::Int(i64::try_from(r.count).unwrap_or(i64::MAX)),
    );
    for (metric, agg) in &r.metrics {
        for stat in RollupStat::ALL {
            expect_float(
                &mut want,
                &format!("{metric}_{}", stat.suffix()),
                stat.of(agg),
            );
        }
    }
    assert_eq!(fields(&line), want, "{out:?}");
    assert_eq!(line.timestamp, Some(ts));
}
