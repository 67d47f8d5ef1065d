//! Known-answer tests of the nightly `daily_gpu` job.

use batch_analytics::cli::{Cli, run};
use batch_analytics::daily::{DAILY_METRICS, DAILY_STATS, daily_gpu_path};
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
    assert!(out.removed.is_empty());
    assert!(
        out.nightly.report_html.is_none(),
        "the report is rendered only when asked for"
    );
    assert!(
        out.location
            .ends_with("analytics/daily_gpu/date=2024-01-02/part-0.parquet")
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
    let partition = format!("analytics/daily_gpu/date={DAY}");

    let first = run_daily(&session(&lake).await, day())
        .await
        .expect("first run");
    let second = run_daily(&session(&lake).await, day())
        .await
        .expect("second run");
    assert_eq!(
        parquet_files(&lake, &partition).await.len(),
        1,
        "exactly one file"
    );
    let show = |o: &batch_analytics::DailyOutput| {
        batch_analytics::sql::render(o.schema.clone(), &o.batches).expect("render")
    };
    assert_eq!(show(&first), show(&second), "same input, same output");

    // A stray file from an older run and a late sample: the re-run replaces the day's
    // output, removes the stray, and counts the new sample exactly once.
    let bytes = std::fs::read(dir.path().join(daily_gpu_path(day()))).expect("read output");
    lake.overwrite(&format!("{partition}/part-old.parquet"), bytes.into())
        .await
        .expect("stray");
    let late = row_late();
    publish_rows(&lake, "part-late.parquet", std::slice::from_ref(&late), 900).await;
    let third = run_daily(&session(&lake).await, day())
        .await
        .expect("third run");
    assert_eq!(third.removed.len(), 1, "{:?}", third.removed);
    assert_eq!(
        parquet_files(&lake, &partition).await,
        vec![format!("{partition}/part-0.parquet")]
    );
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
    run_daily(&session(&lake).await, OTHER_DAY.parse().expect("date"))
        .await
        .expect("other day");
    assert_eq!(parquet_files(&lake, &partition).await.len(), 1);
    assert_eq!(parquet_files(&lake, "analytics/daily_gpu").await.len(), 2);
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
    assert_eq!(
        parquet_files(&lake, "analytics/daily_gpu/date=2023-12-31")
            .await
            .len(),
        1
    );
    let back = run_sql(&session(&lake).await, "SELECT count(*) AS n FROM daily_gpu")
        .await
        .expect("query");
    assert_eq!(ints(&one_batch(&back.batches), "n"), vec![Some(0)]);
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
            && text.contains("date=2024-01-02/part-0.parquet"),
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
