//! The Delta lake on a real HDFS: a commit with Kafka progress, read back; a second
//! writer's stale commit of the same partition detected. Compiled with `--features
//! stream-processor/hdfs`; runs only when `GPUSTREAM_TEST_HDFS_URL` names a writable
//! directory (e.g. `hdfs://127.0.0.1:9000/tmp/gpustream`).
#![cfg(feature = "hdfs")]

use gpustream::Metric;
use gpustream_lake::Lake;
use gpustream_lake::columnar::samples_to_batch;
use gpustream_lake::delta::{SAMPLES, TableWriter, app_id};
use gpustream_test_kit::SampleBuilder;

#[tokio::test]
async fn hdfs_delta_commits_progress_once() {
    let Ok(base) = std::env::var("GPUSTREAM_TEST_HDFS_URL") else {
        eprintln!("hdfs_lake: skipped (set GPUSTREAM_TEST_HDFS_URL=hdfs://HOST:PORT/dir)");
        return;
    };
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        gpustream_test_kit::unique("it")
    );
    let lake = Lake::open(&url).expect("open hdfs lake");
    assert!(
        lake.root_url().as_str().starts_with("hdfs://")
            || lake.root_url().as_str().starts_with("viewfs://")
    );
    let samples: Vec<_> = (0..50)
        .map(|i| {
            SampleBuilder::new("hdfs-host", "g")
                .seq(i)
                .at_secs(i as i64)
                .metric(Metric::GpuTemp, 40.0 + i as f64)
                .build()
        })
        .collect();
    let batch = samples_to_batch(samples.iter()).expect("batch");
    let batch = SAMPLES
        .with_partition(&batch, &["2025-03-14", "10"])
        .expect("partition");
    let id = app_id("t", 0);
    let mut first = TableWriter::open(&lake, SAMPLES).await.expect("open");
    let mut stale = TableWriter::open(&lake, SAMPLES).await.expect("open again");
    assert_eq!(stale.version_of(&id).await.expect("version"), None);
    let r = first
        .append(std::slice::from_ref(&batch), &[(id.clone(), 49)])
        .await
        .expect("commit");
    assert_eq!(r.rows, 50);
    assert_eq!(first.committed(&id).await.expect("read"), Some(49));
    // A writer that read the progress before that commit must not commit it again.
    let err = stale
        .append(std::slice::from_ref(&batch), &[(id.clone(), 49)])
        .await
        .expect_err("a second commit of the same offsets");
    assert!(err.to_string().contains("same Kafka partition"), "{err}");
    assert_eq!(stale.committed(&id).await.expect("read"), Some(49));
}
