//! A tiny lake whose daily statistics can be computed by hand.
//!
//! Day 2024-01-02 (the day under test), host `ws1`:
//!
//! | gpu  | time (UTC) | temp | load | board | chip | unsupported                  |
//! |------|------------|------|------|-------|------|------------------------------|
//! | gpu0 | 00:00:00   | 60   | 10   | 100   | 80   | (null list)                  |
//! | gpu0 | 12:00:00   | 70   | 20   | -     | 90   | (null list), file in hour=12 |
//! | gpu0 | 23:59:59   | NULL | 30   | 200   | -    | (null list)                  |
//! | gpu1 | 08:00:00   | 50   | 0    | 0     | 40   | gpu_load_pct, board_power_w  |
//! | gpu1 | 09:00:00   | 54   | 0    | 120   | 60   | gpu_load_pct                 |
//!
//! Expected `daily_gpu` (power = board if usable, else chip):
//!
//! - gpu0: 3 samples; temp n=2 60/65/70; load n=3 10/20/30 (stddev 10);
//!   power 100, 90, 200 → n=3 90/130/200.
//! - gpu1: 2 samples; temp n=2 50/52/54; load n=0 (both zeros unsupported) → NULLs;
//!   power 40 (chip, board unsupported), 120 → n=2 40/80/120.
//!
//! Day 2024-01-03 holds samples that must not leak into 2024-01-02: gpu0 with 99s
//! and a GPU `gpu9` that only exists that day.

use std::sync::Arc;

use batch_analytics::{LakeSession, RegisterOptions};
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use gpustream::{Metric, Metrics, Sample, Source, event_id};
use gpustream_lake::{Lake, date_partition, encode_parquet};

/// The day under test.
pub const DAY: &str = "2024-01-02";
/// The other day.
pub const OTHER_DAY: &str = "2024-01-03";

pub fn day() -> NaiveDate {
    DAY.parse().expect("fixture date")
}

/// One sample row of the fixture.
pub struct Row {
    pub gpu: &'static str,
    pub time: &'static str,
    pub temp: Option<f64>,
    pub load: Option<f64>,
    pub board: Option<f64>,
    pub chip: Option<f64>,
    pub unsupported: &'static [Metric],
}

pub fn sample(seq: u64, r: &Row) -> Sample {
    let event_time: DateTime<Utc> = r.time.parse().expect("fixture time");
    let mut metrics = Metrics::default();
    for (m, v) in [
        (Metric::GpuTemp, r.temp),
        (Metric::GpuLoad, r.load),
        (Metric::BoardPower, r.board),
        (Metric::ChipPower, r.chip),
    ] {
        if let Some(v) = v {
            metrics.set(m, v);
        }
    }
    Sample {
        event_id: event_id(Source::Sim, "ws1", r.gpu, "s1", seq),
        event_time,
        host: "ws1".into(),
        gpu: r.gpu.into(),
        gpu_index: if r.gpu == "gpu1" { 1 } else { 0 },
        gpu_name: Some("Test GPU".into()),
        source: Source::Sim,
        session: "s1".into(),
        seq,
        metrics,
        unsupported: r.unsupported.to_vec(),
        extra: Default::default(),
    }
}

const fn row(
    gpu: &'static str,
    time: &'static str,
    temp: Option<f64>,
    load: Option<f64>,
    board: Option<f64>,
    chip: Option<f64>,
    unsupported: &'static [Metric],
) -> Row {
    Row {
        gpu,
        time,
        temp,
        load,
        board,
        chip,
        unsupported,
    }
}

/// (file below `samples/date=D/`, rows). The fixture writes each group as one file.
pub fn fixture_files() -> Vec<(&'static str, Vec<Row>)> {
    vec![
        (
            "part-gpu0.parquet",
            vec![
                row(
                    "gpu0",
                    "2024-01-02T00:00:00Z",
                    Some(60.0),
                    Some(10.0),
                    Some(100.0),
                    Some(80.0),
                    &[],
                ),
                row(
                    "gpu0",
                    "2024-01-02T23:59:59Z",
                    None,
                    Some(30.0),
                    Some(200.0),
                    None,
                    &[],
                ),
            ],
        ),
        (
            // A file in an hour sub-partition: the layout the stream processor will move to.
            "hour=12/part-gpu0.parquet",
            vec![row(
                "gpu0",
                "2024-01-02T12:00:00Z",
                Some(70.0),
                Some(20.0),
                None,
                Some(90.0),
                &[],
            )],
        ),
        (
            "part-gpu1.parquet",
            vec![
                row(
                    "gpu1",
                    "2024-01-02T08:00:00Z",
                    Some(50.0),
                    Some(0.0),
                    Some(0.0),
                    Some(40.0),
                    &[Metric::GpuLoad, Metric::BoardPower],
                ),
                row(
                    "gpu1",
                    "2024-01-02T09:00:00Z",
                    Some(54.0),
                    Some(0.0),
                    Some(120.0),
                    Some(60.0),
                    &[Metric::GpuLoad],
                ),
            ],
        ),
        (
            "part-other.parquet",
            vec![
                row(
                    "gpu0",
                    "2024-01-03T00:00:00Z",
                    Some(99.0),
                    Some(99.0),
                    Some(999.0),
                    Some(999.0),
                    &[],
                ),
                row(
                    "gpu9",
                    "2024-01-03T10:00:00Z",
                    Some(99.0),
                    Some(99.0),
                    Some(999.0),
                    Some(999.0),
                    &[],
                ),
            ],
        ),
    ]
}

/// Publishes rows as one Parquet file in the `date=` partition of their (shared) day.
pub async fn publish_rows(lake: &Lake, file: &str, rows: &[Row], first_seq: u64) {
    let samples: Vec<Sample> = rows
        .iter()
        .zip(first_seq..)
        .map(|(r, seq)| sample(seq, r))
        .collect();
    let partition = date_partition(samples[0].event_time);
    assert!(
        samples
            .iter()
            .all(|s| date_partition(s.event_time) == partition),
        "a fixture file must hold one day"
    );
    let batch = gpustream_lake::columnar::samples_to_batch(&samples).expect("sample batch");
    let bytes = encode_parquet(&[batch]).expect("encode parquet");
    lake.publish(&format!("samples/{partition}/{file}"), bytes)
        .await
        .expect("publish");
}

/// Writes the whole fixture into `lake`.
pub async fn write_fixture(lake: &Lake) {
    for (i, (file, rows)) in fixture_files().iter().enumerate() {
        publish_rows(lake, file, rows, (i as u64) * 100).await;
    }
}

/// A local lake in a fresh temp dir, with the fixture written.
pub async fn local_fixture_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("utf-8 temp path")).expect("open lake");
    write_fixture(&lake).await;
    (dir, lake)
}

pub async fn session(lake: &Lake) -> LakeSession {
    LakeSession::open(lake.clone(), RegisterOptions::default())
        .await
        .expect("open session")
}

/// All batches as one (the tests' results are tiny).
pub fn one_batch(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches.first().expect("at least one batch").schema();
    concat_batches(&schema, batches).expect("concat")
}

fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Arc<dyn Array> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()));
    cast(col, to).expect("cast")
}

pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let a = column(batch, name, &DataType::Utf8);
    a.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

pub fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let a = column(batch, name, &DataType::Float64);
    a.as_primitive::<Float64Type>().iter().collect()
}

pub fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let a = column(batch, name, &DataType::Int64);
    a.as_primitive::<Int64Type>().iter().collect()
}

/// Asserts float columns equal up to rounding.
#[track_caller]
pub fn assert_floats(batch: &RecordBatch, name: &str, expected: &[Option<f64>]) {
    let got = floats(batch, name);
    assert_eq!(got.len(), expected.len(), "{name}: {got:?}");
    for (g, e) in got.iter().zip(expected) {
        match (g, e) {
            (Some(g), Some(e)) => assert!(
                (g - e).abs() < 1e-9,
                "{name}: got {got:?}, expected {expected:?}"
            ),
            (None, None) => {}
            _ => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

/// The `.parquet` files under a lake directory (relative to the lake root).
pub async fn parquet_files(lake: &Lake, dir: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = lake.path(dir);
    let mut files: Vec<String> = lake
        .store()
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    files.retain(|f| f.ends_with(".parquet"));
    files.sort();
    files
}
