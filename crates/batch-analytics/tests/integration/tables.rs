//! Registration of lake tables: only what exists, partition columns from the layout.

use batch_analytics::daily::DAILY_GPU_TABLE;
use batch_analytics::{LakeSession, PartitionDiscovery, RegisterOptions, run_daily, run_sql};
use gpustream_lake::{Lake, encode_parquet};

use crate::fixture::*;

fn names(s: &LakeSession) -> Vec<&str> {
    s.tables.iter().map(|t| t.name.as_str()).collect()
}

async fn open(lake: &Lake, partitions: PartitionDiscovery) -> LakeSession {
    LakeSession::open(lake.clone(), RegisterOptions { partitions })
        .await
        .expect("open session")
}

#[tokio::test]
async fn a_fresh_lake_registers_nothing_and_does_not_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("path")).expect("lake");
    for mode in [PartitionDiscovery::DateOnly, PartitionDiscovery::Infer] {
        let s = open(&lake, mode).await;
        assert!(s.tables.is_empty());
        assert!(s.table_list().contains("none yet"), "{}", s.table_list());
    }
    // An empty table directory (a writer that crashed before its first file) is no table.
    std::fs::create_dir_all(dir.path().join("samples/date=2024-01-02")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("analytics/empty")).expect("mkdir");
    assert!(
        open(&lake, PartitionDiscovery::DateOnly)
            .await
            .tables
            .is_empty()
    );
}

#[tokio::test]
async fn registers_what_exists_with_the_date_partition() {
    let (dir, lake) = local_fixture_lake().await;
    let s = open(&lake, PartitionDiscovery::DateOnly).await;
    assert_eq!(names(&s), vec!["samples"]);
    assert_eq!(s.tables[0].partition_columns, vec!["date"]);
    assert!(s.tables[0].url.starts_with("file:///") && s.tables[0].url.ends_with("/samples/"));

    // The fixture mixes date=D/ and date=D/hour=HH/ files: `hour` is not on every
    // file, so inference keeps just `date` (registering it would drop the others).
    let s = open(&lake, PartitionDiscovery::Infer).await;
    assert_eq!(s.tables[0].partition_columns, vec!["date"]);

    // Later tables appear once they have files; odd analytics directories are skipped.
    run_daily(&s, day()).await.expect("daily");
    let empty = gpustream_lake::columnar::anomalies_to_batch(std::iter::empty()).expect("batch");
    lake.publish(
        &format!("anomalies/date={DAY}/a.parquet"),
        encode_parquet(&[empty]).expect("encode"),
    )
    .await
    .expect("publish");
    let rollup =
        gpustream_lake::columnar::samples_to_batch(&[sample(1, &row_for_rollup())]).expect("batch");
    lake.publish(
        &format!("rollups_1m/date={DAY}/r.parquet"),
        encode_parquet(&[rollup]).expect("encode"),
    )
    .await
    .expect("publish");
    std::fs::create_dir_all(dir.path().join("analytics/_scratch/date=2024-01-02")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("analytics/date=2024-01-02")).expect("mkdir");

    let s = open(&lake, PartitionDiscovery::DateOnly).await;
    // The lake's tables, then the nightly outputs in name order; `_scratch` and a
    // bare `date=` directory are not tables.
    assert_eq!(
        names(&s),
        vec![
            "samples",
            "anomalies",
            "rollups_1m",
            "anomaly_summary",
            "correlations",
            "daily_fleet",
            DAILY_GPU_TABLE,
            "gpu_comparison",
            "hourly",
            "spikes"
        ]
    );
    let daily = s.table(DAILY_GPU_TABLE).expect("daily_gpu");
    assert_eq!(daily.location, "analytics/daily_gpu");
    let out = run_sql(&s, "SELECT count(*) AS n FROM anomalies")
        .await
        .expect("anomalies");
    assert_eq!(ints(&one_batch(&out.batches), "n"), vec![Some(0)]);
    let out = run_sql(
        &s,
        &format!("SELECT count(*) AS n FROM rollups_1m WHERE date = '{DAY}'"),
    )
    .await
    .expect("rollups");
    assert_eq!(ints(&one_batch(&out.batches), "n"), vec![Some(1)]);
}

fn row_for_rollup() -> Row {
    Row {
        gpu: "gpu0",
        time: "2024-01-02T00:00:00Z",
        temp: Some(1.0),
        load: None,
        board: None,
        chip: None,
        unsupported: &[],
    }
}

#[tokio::test]
async fn hour_sub_partitions_are_read_and_can_be_inferred() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("path")).expect("lake");
    // Every file in date=D/hour=HH/: the layout after the planned change.
    for (i, (_, rows)) in fixture_files().iter().enumerate() {
        publish_rows(
            &lake,
            &format!("hour={:02}/part-{i}.parquet", i),
            rows,
            (i as u64) * 100,
        )
        .await;
    }

    let s = open(&lake, PartitionDiscovery::Infer).await;
    assert_eq!(s.tables[0].partition_columns, vec!["date", "hour"]);
    let out = run_sql(
        &s,
        &format!("SELECT hour, count(*) AS n FROM samples WHERE date = '{DAY}' GROUP BY hour ORDER BY hour"),
    )
    .await
    .expect("by hour");
    let b = one_batch(&out.batches);
    assert_eq!(
        strings(&b, "hour"),
        vec![Some("00".into()), Some("01".into()), Some("02".into())]
    );
    assert_eq!(ints(&b, "n"), vec![Some(2), Some(1), Some(2)]);

    // Without inference the same files are read; `hour` just is not a column.
    let s = open(&lake, PartitionDiscovery::DateOnly).await;
    assert_eq!(s.tables[0].partition_columns, vec!["date"]);
    let out = run_daily(&s, day()).await.expect("daily");
    crate::daily::assert_known_answers(&one_batch(&out.batches));
}
