//! The lake's Delta tables on a local directory and on S3 (moto): appends carry Kafka
//! progress, a stale writer cannot commit the same offsets twice, two writers racing
//! for the same version both land exactly once, compaction keeps every row once, and
//! a lake of the previous (Hive) layout converts in place.

use gpustream::Metric;
use gpustream_lake::Lake;
use gpustream_lake::columnar::samples_to_batch;
use gpustream_lake::delta::{self, SAMPLES, TableWriter, app_id};
use gpustream_test_kit::SampleBuilder;

fn rows(first: u64, n: u64, hour: u32) -> arrow::array::RecordBatch {
    let samples: Vec<_> = (first..first + n)
        .map(|i| {
            SampleBuilder::new("h", "g")
                .seq(i)
                .at_secs(i as i64)
                .metric(Metric::GpuTemp, 40.0 + (i % 50) as f64)
                .build()
        })
        .collect();
    let batch = samples_to_batch(samples.iter()).expect("batch");
    SAMPLES
        .with_partition(&batch, &["2025-03-14", &format!("{hour:02}")])
        .expect("partition")
}

/// Runs `sql` over the lake's `samples` table through DataFusion.
async fn query(lake: &Lake, sql: &str) -> Vec<arrow::array::RecordBatch> {
    let table = delta::open_table(lake, "samples")
        .await
        .expect("open")
        .expect("exists");
    let ctx = deltalake_core::datafusion::prelude::SessionContext::new();
    ctx.register_table("samples", table.table_provider().await.expect("provider"))
        .expect("register");
    ctx.sql(sql)
        .await
        .expect("sql")
        .collect()
        .await
        .expect("collect")
}

async fn count(lake: &Lake) -> usize {
    let batches = query(lake, "SELECT count(*) AS n FROM samples").await;
    let col = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("count");
    col.value(0) as usize
}

async fn exactly_once_protocol(lake: &Lake) {
    let id = app_id("gpu-samples", 0);
    let mut a = TableWriter::open(lake, SAMPLES).await.expect("open");
    let mut stale = TableWriter::open(lake, SAMPLES).await.expect("open");
    assert_eq!(a.committed(&id).await.expect("version"), None);
    assert_eq!(stale.version_of(&id).await.expect("version"), None);

    let r = a
        .append(&[rows(0, 100, 10)], &[(id.clone(), 99)])
        .await
        .expect("commit");
    assert_eq!((r.rows, r.files), (100, 1));
    assert_eq!(a.committed(&id).await.expect("read"), Some(99));
    // A writer that read the progress before that commit cannot commit the same
    // partition: its commit is refused, and it then sees the new progress.
    let err = stale
        .append(&[rows(0, 100, 10)], &[(id.clone(), 99)])
        .await
        .expect_err("stale writer");
    assert!(
        matches!(err, gpustream_lake::Error::ConcurrentProgress { .. }),
        "{err}"
    );
    assert_eq!(stale.version_of(&id).await.expect("reread"), Some(99));
    assert_eq!(count(lake).await, 100);

    // Appends of another partition by the other writer do not conflict.
    let other = app_id("gpu-samples", 1);
    stale
        .append(&[rows(1000, 50, 11)], &[(other.clone(), 49)])
        .await
        .expect("other partition");
    a.append(&[rows(100, 10, 10)], &[(id.clone(), 109)])
        .await
        .expect("rebased append");
    assert_eq!(count(lake).await, 160);
    assert_eq!(a.committed(&other).await.expect("read"), Some(49));
}

#[tokio::test]
async fn local_exactly_once_and_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("utf8")).expect("lake");
    exactly_once_protocol(&lake).await;

    // Many small files of one day, then compaction while a reader keeps counting.
    let mut w = TableWriter::open(&lake, SAMPLES).await.expect("open");
    for i in 0..20u64 {
        w.append(
            &[rows(10_000 + i * 10, 10, 12)],
            &[(app_id("t", 9), (i * 10 + 9) as i64)],
        )
        .await
        .expect("small commit");
    }
    let before = count(&lake).await;
    let table = delta::open_table(&lake, "samples")
        .await
        .expect("open")
        .expect("exists");
    let files_before = delta::files_in_date(&table, "2025-03-14").expect("files");
    assert!(files_before >= 22, "{files_before}");
    let reader = {
        let lake = lake.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..20 {
                seen.push(count(&lake).await);
            }
            seen
        })
    };
    let (table, report) = delta::compact(table, "2025-03-14", &delta::MaintainOptions::default())
        .await
        .expect("compact");
    let seen = reader.await.expect("reader");
    assert!(
        seen.iter().all(|n| *n == before),
        "reader saw {seen:?}, expected {before}"
    );
    assert_eq!(count(&lake).await, before);
    assert_eq!(report.files_before, files_before);
    assert!(report.files_after < files_before, "{report:?}");
    // Checkpoint and vacuum: the replaced files go, the rows stay.
    delta::checkpoint(&table).await.expect("checkpoint");
    let (_, vac) = delta::vacuum(table, std::time::Duration::ZERO)
        .await
        .expect("vacuum");
    assert!(
        vac.files_deleted >= files_before - report.files_after,
        "{vac:?}"
    );
    assert_eq!(count(&lake).await, before);
}

#[tokio::test]
async fn s3_exactly_once() {
    let Some(svc) = gpustream_test_kit::services("s3_exactly_once") else {
        return;
    };
    let bucket = gpustream_test_kit::s3::new_bucket(svc.s3_endpoint(), "delta");
    let lake = Lake::open(&format!("s3://{bucket}/lake")).expect("lake");
    exactly_once_protocol(&lake).await;
}

#[tokio::test]
async fn racing_writers_each_land_once() {
    // Eight writers of eight partitions commit at the same time: every commit lands
    // (delta-rs retries on the next version), none twice.
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("utf8")).expect("lake");
    TableWriter::open(&lake, SAMPLES).await.expect("create");
    let mut tasks = Vec::new();
    for p in 0..8u64 {
        let lake = lake.clone();
        tasks.push(tokio::spawn(async move {
            let mut w = TableWriter::open(&lake, SAMPLES).await.expect("open");
            w.append(&[rows(p * 100, 25, 10)], &[(app_id("t", p as i32), 24)])
                .await
                .expect("commit")
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(count(&lake).await, 200);
}

/// A batch whose rows are all in one partition is written straight to its file; one
/// that spans partitions is split by delta-rs. Both land in the partitions their rows
/// name, in one commit.
#[tokio::test]
async fn single_and_mixed_partition_batches_land_in_their_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("utf8")).expect("lake");
    let mut w = TableWriter::open(&lake, SAMPLES).await.expect("open");
    let single = rows(0, 100, 10);
    let mixed =
        arrow::compute::concat_batches(&single.schema(), &[rows(100, 10, 11), rows(110, 7, 12)])
            .expect("concat");
    let r = w
        .append(&[single, mixed], &[(app_id("t", 0), 116)])
        .await
        .expect("commit");
    assert_eq!((r.rows, r.files), (117, 3));

    let batches = query(
        &lake,
        "SELECT hour, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM samples GROUP BY hour ORDER BY hour",
    )
    .await;
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string();
    for line in [
        "| 10   | 100 | 0   | 99  |",
        "| 11   | 10  | 100 | 109 |",
        "| 12   | 7   | 110 | 116 |",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    for hour in ["10", "11", "12"] {
        let files = std::fs::read_dir(
            dir.path()
                .join(format!("samples/date=2025-03-14/hour={hour}")),
        )
        .expect("partition directory")
        .count();
        assert_eq!(files, 1, "hour {hour}");
    }
}
