//! Known-answer tests of the nightly `daily_gpu` job.

use batch_analytics::cli::{Cli, run};
use batch_analytics::daily::{DAILY_METRICS, DAILY_STATS};
use batch_analytics::{Error, run_daily, run_sql};
use clap::Parser;
use datafusion::arrow::array::RecordBatch;
use gpustream_lake::Lake;

use crate::fixture::*;

/// The expected `daily_gpu` rows of the fixture day (see `fixture.rs`).
pub fn assert_known_answers(b: &RecordBatch) {
    assert_eq!(
        b.num_rows(),
        2,
        "one row per GPU of the day, gpu9 is another day's"
    );
    assert_eq!(strings(b, "date"), vec![Some(DAY.into()), Some(DAY.into())]);
    assert_eq!(
        strings(b, "host"),
        vec![Some("ws1".into()), Some("ws1".into())]
    );
    assert_eq!(
        strings(b, "gpu"),
        vec![Some("gpu0".into()), Some("gpu1".into())]
    );
    // gpu0 has 3 samples on DAY; its 2024-01-03 sample must not count.
    assert_eq!(ints(b, "samples"), vec![Some(3), Some(2)]);

    assert_eq!(ints(b, "gpu_temp_c_count"), vec![Some(2), Some(2)]);
    assert_floats(b, "gpu_temp_c_min", &[Some(60.0), Some(50.0)]);
    assert_floats(b, "gpu_temp_c_mean", &[Some(65.0), Some(52.0)]);
    assert_floats(b, "gpu_temp_c_max", &[Some(70.0), Some(54.0)]);
    assert_floats(
        b,
        "gpu_temp_c_stddev",
        &[Some(50f64.sqrt()), Some(8f64.sqrt())],
    );

    // gpu1's loads are 0 but unsupported: no value, not a minimum of 0.
    assert_eq!(ints(b, "gpu_load_pct_count"), vec![Some(3), Some(0)]);
    assert_floats(b, "gpu_load_pct_min", &[Some(10.0), None]);
    assert_floats(b, "gpu_load_pct_mean", &[Some(20.0), None]);
    assert_floats(b, "gpu_load_pct_max", &[Some(30.0), None]);
    assert_floats(b, "gpu_load_pct_stddev", &[Some(10.0), None]);
    let p95 = floats(b, "gpu_load_pct_p95");
    assert_eq!(p95[1], None, "no usable load on gpu1");
    // Exact, interpolated between ranks: 20 + 0.9 × (30 − 20).
    let p95 = p95[0].expect("gpu0 load p95");
    assert!((p95 - 29.0).abs() < 1e-9, "p95 of 10, 20, 30: {p95}");

    // Board power where usable, chip power otherwise (absent or unsupported board).
    assert_eq!(ints(b, "power_w_count"), vec![Some(3), Some(2)]);
    assert_floats(b, "power_w_min", &[Some(90.0), Some(40.0)]);
    assert_floats(b, "power_w_mean", &[Some(130.0), Some(80.0)]);
    assert_floats(b, "power_w_max", &[Some(200.0), Some(120.0)]);

    // The day's first and last samples bound it; nothing from 2024-01-03.
    let first = b.column_by_name("first_seen").expect("first_seen");
    let last = b.column_by_name("last_seen").expect("last_seen");
    let fmt = |a: &dyn datafusion::arrow::array::Array| {
        datafusion::arrow::util::display::array_value_to_string(a, 0).expect("format")
    };
    assert!(
        fmt(first.as_ref()).starts_with("2024-01-02T00:00:00"),
        "{}",
        fmt(first.as_ref())
    );
    assert!(
        fmt(last.as_ref()).starts_with("2024-01-02T23:59:59"),
        "{}",
        fmt(last.as_ref())
    );
}

#[tokio::test]
async fn daily_known_answers() {
    let (_dir, lake) = local_fixture_lake().await;
    let session = session(&lake).await;
    let out = run_daily(&session, day()).await.expect("daily");
    assert_eq!(out.rows, 2);
    assert!(
        out.nightly.report_html.is_none(),
        "the report is rendered only when asked for"
    );
    assert!(
        out.location.starts_with("file://") && out.location.ends_with("analytics/daily_gpu/"),
        "{}",
        out.location
    );
    assert_known_answers(&one_batch(&out.batches));

    // Column set and order, as documented.
    let mut expected = vec!["date", "host", "gpu", "samples", "first_seen", "last_seen"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for m in DAILY_METRICS {
        for s in DAILY_STATS {
            expected.push(format!("{m}_{s}"));
        }
    }
    let names: Vec<String> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names[..expected.len()], expected[..]);
    assert_eq!(
        names[expected.len()..],
        [
            "energy_kwh",
            "integrated_hours",
            "gaps",
            "energy_counter_kwh",
            "energy_counter_diff_pct",
            "idle_share",
            "busy_share",
            "throttled_share",
            "throttled_power_share",
            "throttled_thermal_share",
            "throttled_voltage_share",
            "throttled_hw_slowdown_share",
            "throttled_other_share",
        ]
    );

    // Read back through the lake: the written file, with `date` from its partition.
    let session = crate::fixture::session(&lake).await;
    let back = run_sql(&session, "SELECT * FROM daily_gpu ORDER BY host, gpu")
        .await
        .expect("read daily_gpu back");
    assert_known_answers(&one_batch(&back.batches));
}

#[tokio::test]
async fn daily_rerun_replaces_the_output() {
    let (dir, lake) = local_fixture_lake().await;
    let table = "analytics/daily_gpu";

    let first = run_daily(&session(&lake).await, day())
        .await
        .expect("first run");
    let second = run_daily(&session(&lake).await, day())
        .await
        .expect("second run");
    assert_eq!(second.version, first.version + 1, "one commit per run");
    assert_eq!(
        files_of_day(&lake, table, DAY).await.len(),
        1,
        "the day's file was replaced, not added to"
    );
    let show = |o: &batch_analytics::DailyOutput| {
        batch_analytics::sql::render(o.schema.clone(), &o.batches).expect("render")
    };
    assert_eq!(show(&first), show(&second), "same input, same output");
    assert_eq!(
        rows_of_day(&lake, "daily_gpu", DAY).await,
        2,
        "no duplicates"
    );

    // A copy of the day's file that the log does not reference (a manual copy, a
    // crashed writer's leftover) is never read; a late sample is counted once.
    let active = files_of_day(&lake, table, DAY).await;
    let stray = dir
        .path()
        .join(table)
        .join(format!("date={DAY}"))
        .join("part-old.parquet");
    std::fs::copy(dir.path().join(table).join(&active[0]), &stray).expect("stray copy");
    let late = row_late();
    append_rows(&lake, std::slice::from_ref(&late), 900).await;
    let third = run_daily(&session(&lake).await, day())
        .await
        .expect("third run");
    let b = one_batch(&third.batches);
    assert_eq!(ints(&b, "samples"), vec![Some(4), Some(2)]);
    assert_floats(&b, "gpu_temp_c_max", &[Some(80.0), Some(54.0)]);
    let back = run_sql(
        &session(&lake).await,
        &format!("SELECT sum(samples) AS n FROM daily_gpu WHERE date = '{DAY}'"),
    )
    .await
    .expect("read back");
    assert_eq!(ints(&one_batch(&back.batches), "n"), vec![Some(6)]);

    // Another day's run leaves this day's output alone.
    let this_day = files_of_day(&lake, table, DAY).await;
    run_daily(&session(&lake).await, OTHER_DAY.parse().expect("date"))
        .await
        .expect("other day");
    assert_eq!(files_of_day(&lake, table, DAY).await, this_day);
    assert_eq!(files_of_day(&lake, table, OTHER_DAY).await.len(), 1);
    assert_eq!(rows_of_day(&lake, "daily_gpu", DAY).await, 2);
    assert_eq!(rows_of_day(&lake, "daily_gpu", OTHER_DAY).await, 2);
}

fn row_late() -> Row {
    Row {
        gpu: "gpu0",
        time: "2024-01-02T06:00:00Z",
        temp: Some(80.0),
        load: None,
        board: None,
        chip: None,
        unsupported: &[],
    }
}

#[tokio::test]
async fn daily_of_a_day_without_samples_writes_an_empty_table() {
    let (_dir, lake) = local_fixture_lake().await;
    let out = run_daily(&session(&lake).await, "2023-12-31".parse().expect("date"))
        .await
        .expect("daily");
    assert_eq!(out.rows, 0);
    // The table exists (with every column) and the day has no rows.
    assert!(version(&lake, "analytics/daily_gpu").await >= 1);
    let back = run_sql(
        &session(&lake).await,
        "SELECT count(*) AS n, count(gpu_temp_c_mean) AS m FROM daily_gpu",
    )
    .await
    .expect("query");
    assert_eq!(ints(&one_batch(&back.batches), "n"), vec![Some(0)]);

    // A day that had rows and has none any more (its samples were deleted) is emptied
    // by a re-run instead of keeping stale figures; the other day keeps its rows.
    run_daily(&session(&lake).await, day()).await.expect("day");
    run_daily(&session(&lake).await, OTHER_DAY.parse().expect("date"))
        .await
        .expect("other day");
    assert_eq!(rows_of_day(&lake, "daily_gpu", DAY).await, 2);
    delta_table(&lake, "samples")
        .await
        .delete()
        .with_predicate(format!("date = '{DAY}'"))
        .await
        .expect("delete the day's samples");
    let out = run_daily(&session(&lake).await, day())
        .await
        .expect("daily");
    assert_eq!(out.rows, 0);
    assert_eq!(rows_of_day(&lake, "daily_gpu", DAY).await, 0);
    assert_eq!(rows_of_day(&lake, "daily_gpu", OTHER_DAY).await, 2);
}

#[tokio::test]
async fn daily_on_a_fresh_lake_names_the_missing_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("path")).expect("lake");
    let err = run_daily(&session(&lake).await, day()).await.unwrap_err();
    assert!(
        matches!(err, Error::MissingTable { ref table, .. } if table == "samples"),
        "{err:?}"
    );
    assert!(err.to_string().contains("no `samples` table"), "{err}");
}

#[tokio::test]
async fn daily_command_prints_the_table_and_the_location() {
    let (dir, _lake) = local_fixture_lake().await;
    let path = dir.path().to_str().expect("path");
    let cli = Cli::try_parse_from(["batch-analytics", "daily", "--lake", path, "--date", DAY])
        .expect("parse");
    let mut out = Vec::new();
    run(cli, &mut out).await.expect("run");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("| gpu0 "), "{text}");
    assert!(text.contains("gpu_temp_c_mean"), "{text}");
    assert!(
        text.contains("2 row(s) written to file://")
            && text.contains("analytics/daily_gpu/ (version 1)"),
        "{text}"
    );
    // The day is closed: its partitions were maintained afterwards.
    assert!(text.contains("upkeep samples: 1 day(s)"), "{text}");
    assert!(
        text.contains("upkeep analytics/daily_gpu: 1 day(s)"),
        "{text}"
    );

    // Flags are checked before anything runs.
    assert!(
        Cli::try_parse_from([
            "batch-analytics",
            "daily",
            "--lake",
            path,
            "--date",
            "2024-13-01"
        ])
        .is_err()
    );
    let cli = Cli::try_parse_from([
        "batch-analytics",
        "daily",
        "--lake",
        path,
        "--timezone",
        "Nowhere/Land",
    ])
    .expect("parse");
    let err = run(cli, &mut Vec::new()).await.unwrap_err();
    assert!(err.to_string().contains("Nowhere/Land"), "{err}");
}
