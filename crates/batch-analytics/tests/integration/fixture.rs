//! A tiny lake whose daily statistics can be computed by hand.
//!
//! Day 2024-01-02 (the day under test), host `ws1`:
//!
//! | gpu  | time (UTC) | temp | load | board | chip | unsupported                  |
//! |------|------------|------|------|-------|------|------------------------------|
//! | gpu0 | 00:00:00   | 60   | 10   | 100   | 80   | (null list)                  |
//! | gpu0 | 12:00:00   | 70   | 20   | -     | 90   | (null list), own commit      |
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
//!
//! The rows go into the lake's Delta `samples` table through the lake's
//! [`TableWriter`], one commit per group of [`fixture_files`], each row in the
//! `date`/`hour` partition of its event time (as the stream processor writes them).

use std::collections::BTreeMap;
use std::sync::Arc;

use batch_analytics::LakeSession;
use batch_analytics::cli::{Cli, run};
use batch_analytics::model::AnalysisOptions;
use batch_analytics::{NightlyOptions, NightlyOutput, run_nightly};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Parser;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use gpustream::{AnomalyEvent, Metric, Metrics, Sample, Source, event_id};
use gpustream_lake::Lake;
use gpustream_lake::delta::deltalake_core::DeltaTable;
use gpustream_lake::delta::{ANOMALIES, SAMPLES, TableSpec, TableWriter};

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

/// (label, rows). The fixture writes each group as one commit.
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

/// Appends rows to `samples` in one commit (sequence numbers from `first_seq`).
pub async fn append_rows(lake: &Lake, rows: &[Row], first_seq: u64) {
    let samples: Vec<Sample> = rows
        .iter()
        .zip(first_seq..)
        .map(|(r, seq)| sample(seq, r))
        .collect();
    append_samples(lake, &samples).await;
}

/// Appends samples to the Delta `samples` table in one commit, each in the
/// `date`/`hour` partition of its event time.
pub async fn append_samples(lake: &Lake, samples: &[Sample]) {
    append(
        lake,
        SAMPLES,
        samples,
        |s| s.event_time,
        |rows| gpustream_lake::columnar::samples_to_batch(rows.iter().copied()),
    )
    .await;
}

/// Appends anomaly events to the Delta `anomalies` table in one commit, each in the
/// `date` partition of its event time.
pub async fn append_anomalies(lake: &Lake, events: &[AnomalyEvent]) {
    append(
        lake,
        ANOMALIES,
        events,
        |e| e.event_time,
        |rows| gpustream_lake::columnar::anomalies_to_batch(rows.iter().copied()),
    )
    .await;
}

/// Groups `items` by the partition of their time and commits them to `spec`'s table
/// through the lake's writer.
async fn append<T>(
    lake: &Lake,
    spec: TableSpec,
    items: &[T],
    time: impl Fn(&T) -> DateTime<Utc>,
    to_batch: impl Fn(&[&T]) -> gpustream_lake::Result<RecordBatch>,
) {
    let mut writer = TableWriter::open(lake, spec).await.expect("open table");
    let mut groups: BTreeMap<Vec<String>, Vec<&T>> = BTreeMap::new();
    for item in items {
        groups
            .entry(writer.partition_values(time(item)))
            .or_default()
            .push(item);
    }
    let batches: Vec<RecordBatch> = groups
        .values()
        .map(|rows| {
            let batch = to_batch(rows).expect("batch");
            writer
                .with_partition(&batch, time(rows[0]))
                .expect("partition")
        })
        .collect();
    writer.append(&batches, &[]).await.expect("commit");
}

/// Writes the whole fixture into `lake`.
pub async fn write_fixture(lake: &Lake) {
    for (i, (_, rows)) in fixture_files().iter().enumerate() {
        append_rows(lake, rows, (i as u64) * 100).await;
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
    LakeSession::open(lake.clone()).await.expect("open session")
}

/// Runs the `batch-analytics` command line `argv` (program name first) and returns
/// what it printed.
pub async fn command(argv: &[&str]) -> batch_analytics::Result<String> {
    let cli = Cli::try_parse_from(argv).expect("parse");
    let mut out = Vec::new();
    run(cli, &mut out).await?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

/// A simulator sample of `host`/`gpu` (model `name`) at `t` with the given readings.
pub fn sim_sample(
    host: &str,
    gpu: &str,
    name: &str,
    session: &str,
    t: DateTime<Utc>,
    seq: u64,
    m: &[(Metric, f64)],
) -> Sample {
    let mut metrics = Metrics::default();
    for (k, v) in m {
        metrics.set(*k, *v);
    }
    Sample {
        event_id: event_id(Source::Sim, host, gpu, session, seq),
        event_time: t,
        host: host.into(),
        gpu: gpu.into(),
        gpu_index: 0,
        gpu_name: Some(name.into()),
        source: Source::Sim,
        session: session.into(),
        seq,
        metrics,
        unsupported: Vec::new(),
        extra: Default::default(),
    }
}

/// A time written in RFC 3339.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("fixture time")
}

/// An empty local lake in a temporary directory.
pub fn new_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("path")).expect("lake");
    (dir, lake)
}

/// The nightly job over `date` with a report and no CSV, with the allocation labels
/// `labels` (CSV text) when given.
pub async fn run_with(
    lake: &Lake,
    date: &str,
    analysis: AnalysisOptions,
    labels: Option<&str>,
) -> NightlyOutput {
    let allocations = labels.map(|text| {
        Arc::new(batch_analytics::allocations::parse("labels.csv", text).expect("labels"))
    });
    let options = NightlyOptions {
        analysis,
        csv: false,
        report: true,
        render_report: false,
        allocations,
    };
    let date: NaiveDate = date.parse().expect("date");
    run_nightly(&session(lake).await, date, &options)
        .await
        .expect("nightly run")
}

/// One table of a nightly run's output.
pub fn table(out: &NightlyOutput, name: &str) -> RecordBatch {
    out.table(name)
        .unwrap_or_else(|| panic!("no table {name}"))
        .batch
        .clone()
}

/// Asserts a value equal to `expected` up to rounding.
#[track_caller]
pub fn close(got: Option<f64>, expected: f64) {
    let got = got.unwrap_or_else(|| panic!("expected {expected}, got NULL"));
    assert!(
        (got - expected).abs() < 1e-9,
        "expected {expected}, got {got}"
    );
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

pub fn bools(batch: &RecordBatch, name: &str) -> Vec<Option<bool>> {
    let a = column(batch, name, &DataType::Boolean);
    a.as_boolean().iter().collect()
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

/// The loaded latest version of a lake table.
pub async fn delta_table(lake: &Lake, location: &str) -> DeltaTable {
    gpustream_lake::delta::open_table(lake, location)
        .await
        .expect("open table")
        .unwrap_or_else(|| panic!("{location} is not a Delta table"))
}

/// The latest version of a lake table.
pub async fn version(lake: &Lake, location: &str) -> u64 {
    delta_table(lake, location).await.version().expect("loaded")
}

/// The active data files of a table's latest version dated `date` (paths relative to
/// the table), sorted.
pub async fn files_of_day(lake: &Lake, location: &str, date: &str) -> Vec<String> {
    let table = delta_table(lake, location).await;
    let mut files =
        gpustream_lake::delta::active_files_in_date(&table, date).expect("active files");
    files.sort();
    files
}

/// Rows of a table for one date, read through a fresh session.
pub async fn rows_of_day(lake: &Lake, table: &str, date: &str) -> i64 {
    let out = batch_analytics::run_sql(
        &session(lake).await,
        &format!("SELECT count(*) AS n FROM {table} WHERE date = '{date}'"),
    )
    .await
    .expect("count");
    ints(&one_batch(&out.batches), "n")[0].expect("a count")
}
