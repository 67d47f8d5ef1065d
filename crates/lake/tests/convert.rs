//! A lake written by the previous version (commit d1d6c2b: bare Hive-layout Parquet and
//! `_progress/` records; the fixture crates/batch-analytics/tests/fixtures/lake-v0.1-hive,
//! see its README) converts in place into Delta tables that read every row once, with
//! the old progress carried over as `txn` versions; a second conversion changes
//! nothing.

use gpustream_lake::Lake;
use gpustream_lake::delta::{self, SAMPLES, TableWriter, app_id};

#[tokio::test]
async fn a_lake_of_the_previous_version_converts_in_place() {
    let dir = gpustream_test_kit::data::copy_of_fixture(
        "crates/batch-analytics/tests/fixtures/lake-v0.1-hive",
    );
    let files_before = gpustream_test_kit::lake::parquet_files(dir.path()).len();
    let lake = Lake::open(dir.path().to_str().expect("utf8")).expect("lake");

    let report = delta::convert_lake(&lake).await.expect("convert");
    let converted: Vec<(&str, u64)> = report
        .converted
        .iter()
        .map(|(t, n)| (t.as_str(), *n))
        .collect();
    assert_eq!(
        converted,
        [("samples", 11), ("anomalies", 10), ("rollups_1m", 13)],
        "{report:?}"
    );
    assert_eq!(
        report.progress,
        [
            (app_id("gpu-samples", 0), 3599),
            (app_id("gpu-samples", 1), 3599)
        ]
    );
    // Nothing copied: the same files, now referenced by the tables' logs.
    assert_eq!(
        gpustream_test_kit::lake::parquet_files(dir.path()).len(),
        files_before
    );
    let rows = |t: &'static str| {
        let lake = lake.clone();
        async move {
            gpustream_test_kit::lake::table_rows(&lake, t)
                .await
                .iter()
                .map(arrow::array::RecordBatch::num_rows)
                .sum::<usize>()
        }
    };
    assert_eq!(rows("samples").await, 7200);
    assert_eq!(rows("anomalies").await, 52);
    assert_eq!(rows("rollups_1m").await, 122);
    let ids = gpustream_test_kit::lake::sample_ids(&lake).await;
    assert_eq!(ids.len(), 7200, "every sample once");
    // The old map/list columns read back through the new names.
    let batches = gpustream_test_kit::lake::table_rows(&lake, "samples").await;
    let unsupported = batches[0]
        .column_by_name("unsupported")
        .expect("unsupported column");
    assert!(!unsupported.is_empty());

    // A processor resuming on the converted lake sees the old progress.
    let mut w = TableWriter::open(&lake, SAMPLES).await.expect("open");
    assert_eq!(
        w.committed(&app_id("gpu-samples", 1)).await.expect("read"),
        Some(3599)
    );
    // Converting again is a no-op.
    let again = delta::convert_lake(&lake).await.expect("convert again");
    assert!(again.converted.is_empty(), "{again:?}");
    assert_eq!(rows("samples").await, 7200);
}
