//! Arrow schemas of the lake tables, derived from the sample model, and the builders
//! that turn samples and anomaly events into record batches.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::Result;
use gpustream::AnomalyEvent;
use gpustream::Metric;
use gpustream::Sample;

/// Timezone of every timestamp column.
pub const UTC: &str = "UTC";

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

fn list_item() -> Field {
    Field::new("element", DataType::Utf8, true)
}

fn map_field() -> Field {
    // Delta Lake's names for map entries (`key_value`, `key`, `value`) and list items
    // (`element`): files written with other names read back through a cast.
    let entries = Field::new(
        "key_value",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Float64, true),
            ]
            .into(),
        ),
        false,
    );
    Field::new("extra", DataType::Map(Arc::new(entries), false), true)
}

/// Schema of the `samples` table: identity columns, one column per [`Metric`], then
/// `unsupported` (list of metric names) and `extra` (map of unknown columns).
///
/// ```
/// let s = gpustream_lake::columnar::sample_schema();
/// assert_eq!(s.field(0).name(), "event_id");
/// assert!(s.field_with_name("gpu_temp_c").is_ok());
/// ```
pub fn sample_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_time", ts_type(), false),
        Field::new("host", DataType::Utf8, false),
        Field::new("gpu", DataType::Utf8, false),
        Field::new("gpu_index", DataType::Int32, false),
        Field::new("gpu_name", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("session", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
    ];
    for m in Metric::ALL {
        let dt = if m.kind().is_integer() {
            DataType::Int64
        } else {
            DataType::Float64
        };
        fields.push(Field::new(m.column(), dt, true));
    }
    fields.push(Field::new(
        "unsupported",
        DataType::List(Arc::new(list_item())),
        true,
    ));
    fields.push(map_field());
    Arc::new(Schema::new(fields))
}

enum MetricBuilder {
    Float(Float64Builder),
    Int(Int64Builder),
}

/// Accumulates samples into an Arrow [`RecordBatch`] with [`sample_schema`].
pub struct SampleBatchBuilder {
    event_id: StringBuilder,
    event_time: TimestampMicrosecondBuilder,
    host: StringBuilder,
    gpu: StringBuilder,
    gpu_index: Int32Builder,
    gpu_name: StringBuilder,
    source: StringBuilder,
    session: StringBuilder,
    seq: Int64Builder,
    metrics: Vec<MetricBuilder>,
    unsupported: ListBuilder<StringBuilder>,
    extra: MapBuilder<StringBuilder, Float64Builder>,
    rows: usize,
}

impl Default for SampleBatchBuilder {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl SampleBatchBuilder {
    /// A builder sized for about `rows` samples.
    pub fn with_capacity(rows: usize) -> Self {
        SampleBatchBuilder {
            event_id: StringBuilder::with_capacity(rows, rows * 32),
            event_time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC),
            host: StringBuilder::new(),
            gpu: StringBuilder::new(),
            gpu_index: Int32Builder::with_capacity(rows),
            gpu_name: StringBuilder::new(),
            source: StringBuilder::new(),
            session: StringBuilder::new(),
            seq: Int64Builder::with_capacity(rows),
            metrics: Metric::ALL
                .iter()
                .map(|m| {
                    if m.kind().is_integer() {
                        MetricBuilder::Int(Int64Builder::with_capacity(rows))
                    } else {
                        MetricBuilder::Float(Float64Builder::with_capacity(rows))
                    }
                })
                .collect(),
            unsupported: ListBuilder::new(StringBuilder::new()).with_field(list_item()),
            extra: MapBuilder::new(
                Some(arrow::array::MapFieldNames {
                    entry: "key_value".into(),
                    key: "key".into(),
                    value: "value".into(),
                }),
                StringBuilder::new(),
                Float64Builder::new(),
            ),
            rows: 0,
        }
    }

    /// Number of rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one sample.
    pub fn push(&mut self, s: &Sample) {
        self.event_id.append_value(&s.event_id);
        self.event_time
            .append_value(s.event_time.timestamp_micros());
        self.host.append_value(&s.host);
        self.gpu.append_value(&s.gpu);
        self.gpu_index
            .append_value(i32::try_from(s.gpu_index).unwrap_or(i32::MAX));
        self.gpu_name.append_option(s.gpu_name.as_deref());
        self.source.append_value(s.source.as_str());
        self.session.append_value(&s.session);
        self.seq
            .append_value(i64::try_from(s.seq).unwrap_or(i64::MAX));
        for (m, b) in Metric::ALL.iter().zip(self.metrics.iter_mut()) {
            let v = s.metrics.get(*m);
            match b {
                MetricBuilder::Float(b) => b.append_option(v),
                MetricBuilder::Int(b) => b.append_option(v.map(|v| v as i64)),
            }
        }
        if s.unsupported.is_empty() {
            self.unsupported.append_null();
        } else {
            for m in &s.unsupported {
                self.unsupported.values().append_value(m.column());
            }
            self.unsupported.append(true);
        }
        if s.extra.is_empty() {
            // An empty map, not a null: "no unknown columns" is a known fact.
            let _ = self.extra.append(true);
        } else {
            for (k, v) in &s.extra {
                self.extra.keys().append_value(k);
                self.extra.values().append_value(*v);
            }
            let _ = self.extra.append(true);
        }
        self.rows += 1;
    }

    /// Builds the batch and resets the builder.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.event_time.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.gpu.finish()),
            Arc::new(self.gpu_index.finish()),
            Arc::new(self.gpu_name.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.seq.finish()),
        ];
        for b in &mut self.metrics {
            match b {
                MetricBuilder::Float(b) => cols.push(Arc::new(b.finish())),
                MetricBuilder::Int(b) => cols.push(Arc::new(b.finish())),
            }
        }
        cols.push(Arc::new(self.unsupported.finish()));
        cols.push(Arc::new(self.extra.finish()));
        self.rows = 0;
        Ok(RecordBatch::try_new(sample_schema(), cols)?)
    }
}

/// Builds a sample batch in one call.
pub fn samples_to_batch<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Result<RecordBatch> {
    let mut b = SampleBatchBuilder::default();
    for s in samples {
        b.push(s);
    }
    b.finish()
}

/// Schema of the `anomalies` table.
pub fn anomaly_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("anomaly_id", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, false),
        Field::new("gpu", DataType::Utf8, false),
        Field::new("gpu_index", DataType::Int32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("session", DataType::Utf8, false),
        Field::new("event_time", ts_type(), false),
        Field::new("started_at", ts_type(), false),
        Field::new("metric", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        Field::new("message", DataType::Utf8, false),
        Field::new("sample_event_id", DataType::Utf8, false),
    ]))
}

/// Builds an anomaly batch.
pub fn anomalies_to_batch<'a>(
    events: impl IntoIterator<Item = &'a AnomalyEvent>,
) -> Result<RecordBatch> {
    // Text columns in schema order, skipping the typed ones in between.
    let mut text: Vec<StringBuilder> = (0..11).map(|_| StringBuilder::new()).collect();
    let mut gpu_index = Int32Builder::new();
    let mut event_time = TimestampMicrosecondBuilder::new().with_timezone(UTC);
    let mut started_at = TimestampMicrosecondBuilder::new().with_timezone(UTC);
    let mut metric = StringBuilder::new();
    let mut value = Float64Builder::new();
    let mut threshold = Float64Builder::new();
    for e in events {
        let texts = [
            e.event_id.as_str(),
            e.anomaly_id.as_str(),
            e.state.as_str(),
            e.rule.as_str(),
            e.severity.as_str(),
            e.host.as_str(),
            e.gpu.as_str(),
            e.source.as_str(),
            e.session.as_str(),
            e.message.as_str(),
            e.sample_event_id.as_str(),
        ];
        for (b, t) in text.iter_mut().zip(texts) {
            b.append_value(t);
        }
        gpu_index.append_value(i32::try_from(e.gpu_index).unwrap_or(i32::MAX));
        event_time.append_value(e.event_time.timestamp_micros());
        started_at.append_value(e.started_at.timestamp_micros());
        metric.append_option(e.metric.as_deref());
        value.append_option(e.value);
        threshold.append_option(e.threshold);
    }
    let mut t: Vec<ArrayRef> = text
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    let mut take = |i: usize| std::mem::replace(&mut t[i], Arc::new(StringBuilder::new().finish()));
    let cols: Vec<ArrayRef> = vec![
        take(0),
        take(1),
        take(2),
        take(3),
        take(4),
        take(5),
        take(6),
        Arc::new(gpu_index.finish()),
        take(7),
        take(8),
        Arc::new(event_time.finish()),
        Arc::new(started_at.finish()),
        Arc::new(metric.finish()),
        Arc::new(value.finish()),
        Arc::new(threshold.finish()),
        take(9),
        take(10),
    ];
    Ok(RecordBatch::try_new(anomaly_schema(), cols)?)
}

/// Statistics stored per metric in the `rollups_1m` table, as column suffixes.
pub const ROLLUP_STATS: [&str; 4] = ["min", "mean", "max", "last"];

/// Schema of the `rollups_1m` table: window, GPU identity, `count`, then
/// `<metric>_min/_mean/_max/_last` for every metric of the catalogue.
pub fn rollup_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("window_start", ts_type(), false),
        Field::new("window_end", ts_type(), false),
        Field::new("host", DataType::Utf8, false),
        Field::new("gpu", DataType::Utf8, false),
        Field::new("gpu_index", DataType::Int32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
    ];
    for m in Metric::ALL {
        for stat in ROLLUP_STATS {
            fields.push(Field::new(
                format!("{}_{stat}", m.column()),
                DataType::Float64,
                true,
            ));
        }
    }
    Arc::new(Schema::new(fields))
}

/// Builds a rollup batch.
pub fn rollups_to_batch<'a>(
    rollups: impl IntoIterator<Item = &'a gpustream::rollup::Rollup>,
) -> Result<RecordBatch> {
    let mut start = TimestampMicrosecondBuilder::new().with_timezone(UTC);
    let mut end = TimestampMicrosecondBuilder::new().with_timezone(UTC);
    let (mut host, mut gpu, mut source) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut gpu_index = Int32Builder::new();
    let mut count = Int64Builder::new();
    let mut stats: Vec<Float64Builder> = (0..Metric::ALL.len() * ROLLUP_STATS.len())
        .map(|_| Float64Builder::new())
        .collect();
    for r in rollups {
        start.append_value(r.window_start.timestamp_micros());
        end.append_value(r.window_end.timestamp_micros());
        host.append_value(&r.host);
        gpu.append_value(&r.gpu);
        gpu_index.append_value(i32::try_from(r.gpu_index).unwrap_or(i32::MAX));
        source.append_value(r.source.as_str());
        count.append_value(i64::try_from(r.count).unwrap_or(i64::MAX));
        for (i, m) in Metric::ALL.iter().enumerate() {
            let agg = r.metrics.get(m.column());
            let values = agg.map(|a| [a.min, a.mean, a.max, a.last]);
            for (j, b) in stats[i * ROLLUP_STATS.len()..(i + 1) * ROLLUP_STATS.len()]
                .iter_mut()
                .enumerate()
            {
                b.append_option(values.map(|v| v[j]));
            }
        }
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(host.finish()),
        Arc::new(gpu.finish()),
        Arc::new(gpu_index.finish()),
        Arc::new(source.finish()),
        Arc::new(count.finish()),
    ];
    cols.extend(stats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    Ok(RecordBatch::try_new(rollup_schema(), cols)?)
}
