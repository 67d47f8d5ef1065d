//! The same known-answer lake on S3 (moto), compared with the local run.
//!
//! Runs only with `GPUSTREAM_IT=1` and the services of `scripts/services.sh` (their
//! `AWS_*` and `GPUSTREAM_TEST_S3_ENDPOINT` variables, from `.tools/run/services.env`).

use batch_analytics::run_daily;
use batch_analytics::sql::render;
use gpustream_lake::Lake;

use crate::fixture::*;

pub fn enabled() -> bool {
    gpustream_test_kit::services("batch-analytics S3 tests").is_some()
}

/// A new, uniquely named bucket on the test S3 endpoint.
pub fn new_bucket(prefix: &str) -> String {
    let svc = gpustream_test_kit::services("batch-analytics S3 tests").expect("services");
    gpustream_test_kit::s3::new_bucket(svc.s3_endpoint(), prefix)
}

#[tokio::test]
async fn daily_on_s3_matches_the_local_run() {
    if !enabled() {
        return;
    }
    let bucket = new_bucket("batch-analytics-it");

    let s3 = Lake::open(&format!("s3://{bucket}/lake")).expect("open s3 lake");
    write_fixture(&s3).await;
    let (_dir, local) = local_fixture_lake().await;

    let on_s3 = run_daily(&session(&s3).await, day())
        .await
        .expect("daily on s3");
    let on_local = run_daily(&session(&local).await, day())
        .await
        .expect("daily locally");
    assert_eq!(
        on_s3.location,
        format!("s3://{bucket}/lake/analytics/daily_gpu/")
    );
    assert_known(&on_s3, &on_local);

    // Re-running on S3 replaces the day in one commit (a conditional PUT of the next
    // log entry), and it reads back.
    let again = run_daily(&session(&s3).await, day())
        .await
        .expect("re-run on s3");
    assert_known(&again, &on_local);
    assert_eq!(again.version, on_s3.version + 1);
    assert_eq!(
        files_of_day(&s3, "analytics/daily_gpu", DAY).await.len(),
        1,
        "the day's file replaced"
    );
    assert_eq!(rows_of_day(&s3, "daily_gpu", DAY).await, 2);
    let back = batch_analytics::run_sql(
        &session(&s3).await,
        "SELECT * FROM daily_gpu ORDER BY host, gpu",
    )
    .await
    .expect("read back from s3");
    crate::daily::assert_known_answers(&one_batch(&back.batches));
    let n = batch_analytics::run_sql(
        &session(&s3).await,
        &format!("SELECT count(*) AS n FROM samples WHERE date = '{DAY}'"),
    )
    .await
    .expect("count on s3");
    assert_eq!(ints(&one_batch(&n.batches), "n"), vec![Some(5)]);
}

fn assert_known(got: &batch_analytics::DailyOutput, expected: &batch_analytics::DailyOutput) {
    crate::daily::assert_known_answers(&one_batch(&got.batches));
    let show =
        |o: &batch_analytics::DailyOutput| render(o.schema.clone(), &o.batches).expect("render");
    assert_eq!(show(got), show(expected));
}
