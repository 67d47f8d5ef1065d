//! A lake written by the previous version (bare Hive-layout Parquet, see
//! tests/fixtures/lake-v0.1-hive/README.md) through `convert`, then the nightly job.

use gpustream_lake::Lake;

use crate::fixture::*;

const FIXTURE_DAY: &str = "2025-03-14";

async fn scalar(lake: &Lake, sql: &str) -> i64 {
    let out = batch_analytics::run_sql(&session(lake).await, sql)
        .await
        .expect(sql);
    ints(&one_batch(&out.batches), "n")[0].expect("a value")
}

#[tokio::test]
async fn convert_then_daily_on_a_lake_of_the_previous_version() {
    let dir = gpustream_test_kit::data::copy_of_fixture(
        "crates/batch-analytics/tests/fixtures/lake-v0.1-hive",
    );
    let path = dir.path().to_str().expect("path");
    let lake = Lake::open(path).expect("lake");
    let daily = [
        "batch-analytics",
        "daily",
        "--lake",
        path,
        "--date",
        FIXTURE_DAY,
    ];

    // Before conversion there is no Delta table, and the error says what to do.
    let err = command(&daily).await.expect_err("no samples table yet");
    assert!(err.to_string().contains("batch-analytics convert"), "{err}");

    let text = command(&["batch-analytics", "convert", "--lake", path])
        .await
        .expect("convert");
    for line in [
        "converted samples: 11 file(s)",
        "converted anomalies: 10 file(s)",
        "converted rollups_1m: 13 file(s)",
        "progress carried over: gpustream:gpu-samples:0 through offset 3599",
        "progress carried over: gpustream:gpu-samples:1 through offset 3599",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let s = session(&lake).await;
    assert_eq!(
        s.table("samples").expect("samples").partition_columns,
        vec!["date", "hour"]
    );

    let text = command(&daily).await.expect("daily");
    assert!(
        text.contains(&format!("daily_gpu for {FIXTURE_DAY} (UTC): 2 row(s)")),
        "{text}"
    );
    // The converted day is closed: its partitions were compacted afterwards.
    assert!(
        text.contains("upkeep samples: 1 day(s), 1 compacted"),
        "{text}"
    );
    let day = |sql: &str| sql.replace("{D}", FIXTURE_DAY);
    assert_eq!(
        scalar(
            &lake,
            &day("SELECT sum(samples) AS n FROM daily_gpu WHERE date = '{D}'")
        )
        .await,
        7200
    );
    assert_eq!(
        scalar(
            &lake,
            &day("SELECT min(samples) AS n FROM daily_gpu WHERE date = '{D}' AND host = 'fixture-host'")
        )
        .await,
        3600
    );
    assert_eq!(
        scalar(
            &lake,
            &day("SELECT sum(fired) AS n FROM anomaly_summary WHERE date = '{D}'")
        )
        .await,
        26
    );
    assert_eq!(
        scalar(
            &lake,
            &day("SELECT sum(resolved) AS n FROM anomaly_summary WHERE date = '{D}'")
        )
        .await,
        26
    );
    // Every sample once, before and after compaction of the converted files.
    assert_eq!(
        scalar(&lake, "SELECT count(DISTINCT event_id) AS n FROM samples").await,
        7200
    );
    assert_eq!(
        scalar(&lake, "SELECT count(*) AS n FROM samples").await,
        7200
    );
    assert_eq!(
        scalar(&lake, "SELECT sum(count) AS n FROM rollups_1m").await,
        7200
    );

    // Converting again changes nothing.
    let text = command(&["batch-analytics", "convert", "--lake", path])
        .await
        .expect("convert again");
    assert!(text.contains("nothing to convert"), "{text}");
    assert_eq!(
        scalar(&lake, "SELECT count(*) AS n FROM samples").await,
        7200
    );
}
