//! The `sql` command over the lake's tables.

use batch_analytics::{Error, run_sql};

use crate::fixture::*;

async fn count(lake: &gpustream_lake::Lake, sql: &str) -> i64 {
    let out = run_sql(&session(lake).await, sql).await.expect(sql);
    ints(&one_batch(&out.batches), "n")[0].expect("a count")
}

#[tokio::test]
async fn counts_samples_per_date_partition() {
    let (_dir, lake) = local_fixture_lake().await;
    let n = |date: &str| format!("SELECT count(*) AS n FROM samples WHERE date = '{date}'");
    // 5 samples on DAY (hours 00, 08, 09, 12, 23).
    assert_eq!(count(&lake, &n(DAY)).await, 5);
    assert_eq!(count(&lake, &n(OTHER_DAY)).await, 2);
    assert_eq!(count(&lake, &n("2023-12-31")).await, 0);
    assert_eq!(count(&lake, "SELECT count(*) AS n FROM samples").await, 7);
    // `unsupported` is a list column; NULL lists (nothing unsupported) do not match.
    assert_eq!(
        count(
            &lake,
            "SELECT count(*) AS n FROM samples WHERE array_has(unsupported, 'gpu_load_pct')"
        )
        .await,
        2
    );
    // `hour` is a partition column of samples too.
    assert_eq!(
        count(
            &lake,
            &format!("SELECT count(*) AS n FROM samples WHERE date = '{DAY}' AND hour = '12'")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn errors_name_the_lake_tables() {
    let (dir, lake) = local_fixture_lake().await;
    let s = session(&lake).await;

    let err = run_sql(&s, "SELEC count(*) FROM samples")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query { .. }), "{err:?}");
    assert!(
        err.to_string().contains("tables in this lake: samples"),
        "{err}"
    );

    // No anomaly has been written yet: not a table, and the message says what is.
    let err = run_sql(&s, "SELECT * FROM anomalies")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("anomalies") && err.contains("not found"),
        "{err}"
    );
    assert!(err.contains("tables in this lake: samples"), "{err}");

    let err = run_sql(&s, "SELECT no_such_column FROM samples")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_column"), "{err}");

    // Read-only: the lake is written by the pipeline, not by ad-hoc SQL.
    let err = run_sql(&s, "INSERT INTO samples (host) VALUES ('x')")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Query { .. }), "{err:?}");
    let target = dir.path().join("copy-out");
    let err = run_sql(&s, &format!("COPY (SELECT 1) TO '{}'", target.display())).await;
    assert!(err.is_err());
    assert!(!target.exists());
}

#[tokio::test]
async fn sql_command_prints_a_table() {
    let (dir, _lake) = local_fixture_lake().await;
    let path = dir.path().to_str().expect("path");
    let q = format!(
        "SELECT gpu, count(*) AS n FROM samples WHERE date = '{DAY}' GROUP BY gpu ORDER BY gpu"
    );
    let text = command(&["batch-analytics", "sql", "--lake", path, q.as_str()])
        .await
        .expect("run");
    assert!(
        text.contains("| gpu0 | 3 |") && text.contains("| gpu1 | 2 |"),
        "{text}"
    );
    assert!(text.contains("2 row(s)"), "{text}");

    // CSV for scripts: header, rows, nothing else (scripts/demo.sh takes the last line).
    let csv = |sql: &'static str| async move {
        command(&[
            "batch-analytics",
            "sql",
            "--lake",
            path,
            "--format",
            "csv",
            sql,
        ])
        .await
    };
    assert_eq!(
        csv("SELECT count(*) AS n, max(date) AS last_day FROM samples")
            .await
            .expect("csv"),
        "n,last_day\n7,2024-01-03\n"
    );
    assert_eq!(
        csv("SELECT host FROM samples WHERE date = '1999-01-01'")
            .await
            .expect("empty csv"),
        "host\n"
    );

    // SHOW TABLES works (information_schema is on).
    let tables = command(&["batch-analytics", "sql", "--lake", path, "SHOW TABLES"])
        .await
        .expect("show tables");
    assert!(tables.contains("samples"));
}
