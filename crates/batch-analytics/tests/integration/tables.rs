//! Registration of the lake's Delta tables: only what exists, partition columns from
//! the table metadata, and partition filters that open only the matching files.

use std::collections::BTreeMap;

use batch_analytics::daily::DAILY_GPU_TABLE;
use batch_analytics::{LakeSession, run_daily, run_sql};
use gpustream_lake::Lake;
use gpustream_lake::delta::{ROLLUPS, TableWriter};

use crate::fixture::*;

fn names(s: &LakeSession) -> Vec<&str> {
    s.tables.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test]
async fn a_fresh_lake_registers_nothing_and_does_not_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("path")).expect("lake");
    let s = session(&lake).await;
    assert!(s.tables.is_empty());
    assert!(s.table_list().contains("none yet"), "{}", s.table_list());
    // Directories that are not Delta tables are no tables: empty ones, and a bare
    // Parquet file of the previous layout (which `convert` would adopt).
    std::fs::create_dir_all(dir.path().join("samples/date=2024-01-02")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("analytics/empty")).expect("mkdir");
    let old =
        gpustream_lake::encode_parquet(&[gpustream_lake::columnar::samples_to_batch(&[sample(
            1,
            &fixture_files()[0].1[0],
        )])
        .expect("batch")])
        .expect("encode");
    std::fs::write(
        dir.path().join("samples/date=2024-01-02/old.parquet"),
        old.as_ref(),
    )
    .expect("write");
    assert!(session(&lake).await.tables.is_empty());
}

#[tokio::test]
async fn registers_what_exists_with_its_partition_columns() {
    let (dir, lake) = local_fixture_lake().await;
    let s = session(&lake).await;
    assert_eq!(names(&s), vec!["samples"]);
    assert_eq!(s.tables[0].partition_columns, vec!["date", "hour"]);
    // Created by the first commit (version 0), then one commit per fixture group.
    assert_eq!(s.tables[0].version, fixture_files().len() as u64);
    assert!(s.tables[0].url.starts_with("file:///") && s.tables[0].url.ends_with("/samples/"));

    // Later tables appear once they exist; odd analytics directories are skipped.
    run_daily(&s, day()).await.expect("daily");
    append_anomalies(&lake, &[]).await;
    let rollup = gpustream::rollup::Rollup {
        window_start: "2024-01-02T00:00:00Z".parse().expect("time"),
        window_end: "2024-01-02T00:01:00Z".parse().expect("time"),
        host: "ws1".into(),
        gpu: "gpu0".into(),
        gpu_index: 0,
        source: gpustream::Source::Sim,
        count: 1,
        metrics: BTreeMap::new(),
    };
    let mut rollups = TableWriter::open(&lake, ROLLUPS).await.expect("rollups");
    let batch = gpustream_lake::columnar::rollups_to_batch([&rollup]).expect("batch");
    let batch = rollups
        .with_partition(&batch, rollup.window_start)
        .expect("partition");
    rollups.append(&[batch], &[]).await.expect("commit");
    std::fs::create_dir_all(dir.path().join("analytics/_scratch/date=2024-01-02")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("analytics/date=2024-01-02")).expect("mkdir");

    let s = session(&lake).await;
    // The lake's tables, then the nightly outputs in name order; `_scratch`, the
    // report folder and a bare `date=` directory are not tables.
    assert_eq!(
        names(&s),
        vec![
            "samples",
            "anomalies",
            "rollups_1m",
            "anomaly_summary",
            "cohorts",
            "correlations",
            "daily_fleet",
            DAILY_GPU_TABLE,
            "energy_by_owner",
            "gpu_comparison",
            "health",
            "hourly",
            "spikes",
            "throttling",
            "waste"
        ]
    );
    let daily = s.table(DAILY_GPU_TABLE).expect("daily_gpu");
    assert_eq!(daily.location, "analytics/daily_gpu");
    assert_eq!(daily.partition_columns, vec!["date"]);
    assert_eq!(
        s.table("rollups_1m").expect("rollups").partition_columns,
        vec!["date"]
    );
    let out = run_sql(&s, "SELECT count(*) AS n FROM anomalies")
        .await
        .expect("anomalies");
    assert_eq!(ints(&one_batch(&out.batches), "n"), vec![Some(0)]);
    let out = run_sql(
        &s,
        &format!("SELECT sum(count) AS n FROM rollups_1m WHERE date = '{DAY}'"),
    )
    .await
    .expect("rollups");
    assert_eq!(ints(&one_batch(&out.batches), "n"), vec![Some(1)]);
    // SHOW COLUMNS works through information_schema.
    let out = run_sql(&s, "SHOW COLUMNS FROM daily_gpu")
        .await
        .expect("columns");
    assert!(out.rows() > 50, "{}", out.rows());
}

/// Overwrites a table's files on disk with bytes that are not Parquet, leaving the log
/// referencing them.
fn corrupt(dir: &std::path::Path, table: &str, files: &[String]) {
    assert!(!files.is_empty(), "nothing to corrupt in {table}");
    for f in files {
        std::fs::write(dir.join(table).join(f), b"not parquet").expect("corrupt");
    }
}

#[tokio::test]
async fn a_partition_filter_opens_only_that_partitions_files() {
    let (dir, lake) = local_fixture_lake().await;
    // Every file of the other day is unreadable while the log still references it.
    corrupt(
        dir.path(),
        "samples",
        &files_of_day(&lake, "samples", OTHER_DAY).await,
    );
    let s = session(&lake).await;
    let rows = |sql: String| {
        let s = &s;
        async move { run_sql(s, &sql).await.map(|o| o.rows()) }
    };
    // The corruption is real: any query that opens those files fails ...
    let err = rows(format!(
        "SELECT event_id, gpu_temp_c FROM samples WHERE date = '{OTHER_DAY}'"
    ))
    .await
    .expect_err("the other day is unreadable");
    assert!(!err.to_string().is_empty());
    rows("SELECT event_id, gpu_temp_c FROM samples".into())
        .await
        .expect_err("an unfiltered scan opens every file");
    // ... and a query on one day reads its rows without opening them (data columns,
    // so no answer can come from the log's statistics alone).
    assert_eq!(
        rows(format!(
            "SELECT event_id, gpu_temp_c FROM samples WHERE date = '{DAY}'"
        ))
        .await
        .expect("pruned to the day"),
        5
    );
    // So does the nightly job, hour by hour.
    let out = run_daily(&s, day()).await.expect("daily");
    crate::daily::assert_known_answers(&one_batch(&out.batches));

    // Hours prune too: with the 12:00 file of the day unreadable, other hours still
    // read, the whole day no longer does.
    let noon: Vec<String> = files_of_day(&lake, "samples", DAY)
        .await
        .into_iter()
        .filter(|f| f.contains("hour=12"))
        .collect();
    corrupt(dir.path(), "samples", &noon);
    let s = session(&lake).await;
    let sql =
        format!("SELECT event_id, gpu_temp_c FROM samples WHERE date = '{DAY}' AND hour = '08'");
    assert_eq!(run_sql(&s, &sql).await.expect("hour 08").rows(), 1);
    let sql = format!("SELECT event_id, gpu_temp_c FROM samples WHERE date = '{DAY}'");
    run_sql(&s, &sql).await.expect_err("the day includes 12:00");
}
