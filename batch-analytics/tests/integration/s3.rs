//! The same known-answer lake on S3 (moto), compared with the local run.
//!
//! Runs only with `GPUSTREAM_IT=1` and the services of `scripts/services.sh` (their
//! `AWS_*` and `GPUSTREAM_TEST_S3_ENDPOINT` variables, from `.tools/run/services.env`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use batch_analytics::run_daily;
use batch_analytics::sql::render;
use gpustream::lake::Lake;

use crate::fixture::*;

pub fn enabled() -> bool {
    if std::env::var("GPUSTREAM_IT").as_deref() == Ok("1") {
        true
    } else {
        eprintln!("skipped: set GPUSTREAM_IT=1 (and start scripts/services.sh) to run the S3 test");
        false
    }
}

/// Creates a bucket with a bare `PUT /bucket` (moto accepts unsigned requests), so the
/// test needs no HTTP client dependency.
fn create_bucket(endpoint: &str, bucket: &str) {
    let authority = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| {
            panic!("GPUSTREAM_TEST_S3_ENDPOINT must be http://host:port, got {endpoint}")
        })
        .trim_end_matches('/');
    let mut conn =
        TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read response");
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 200"),
        "creating bucket {bucket}: {status}"
    );
}

/// A new, uniquely named bucket on the test S3 endpoint.
pub fn new_bucket(prefix: &str) -> String {
    let endpoint = std::env::var("GPUSTREAM_TEST_S3_ENDPOINT").expect("GPUSTREAM_TEST_S3_ENDPOINT");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let bucket = format!("{prefix}-{}-{nanos}", std::process::id());
    create_bucket(&endpoint, &bucket);
    bucket
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
        format!("s3://{bucket}/lake/analytics/daily_gpu/date={DAY}/part-0.parquet")
    );
    assert_known(&on_s3, &on_local);

    // Re-running on S3 overwrites the one object, and it reads back.
    let again = run_daily(&session(&s3).await, day())
        .await
        .expect("re-run on s3");
    assert_known(&again, &on_local);
    let partition = format!("analytics/daily_gpu/date={DAY}");
    assert_eq!(
        parquet_files(&s3, &partition).await,
        vec![format!("lake/{partition}/part-0.parquet")]
    );
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
