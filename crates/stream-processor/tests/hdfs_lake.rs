//! The lake protocol on a real HDFS: files published whole and only once, progress
//! records read back. Compiled with `--features stream-processor/hdfs`; runs only when
//! `GPUSTREAM_TEST_HDFS_URL` names a writable directory (e.g.
//! `hdfs://127.0.0.1:9000/tmp/gpustream`).
#![cfg(feature = "hdfs")]

use chrono::{TimeZone, Utc};
use gpustream::{Metric, Metrics, Sample, Source};
use gpustream_lake::{Lake, Published};
use stream_processor::lake_writer::{Range, write_range};
use stream_processor::progress::{PartitionProgress, ProgressStore};

fn sample(seq: u64) -> Sample {
    let mut metrics = Metrics::default();
    metrics.set(Metric::GpuTemp, 40.0 + seq as f64);
    let session = "s".to_string();
    Sample {
        event_id: gpustream::event_id(Source::Sim, "hdfs-host", "g", &session, seq),
        event_time: Utc
            .timestamp_opt(1_700_000_000 + seq as i64, 0)
            .single()
            .expect("valid time"),
        host: "hdfs-host".into(),
        gpu: "g".into(),
        gpu_index: 0,
        gpu_name: None,
        source: Source::Sim,
        session,
        seq,
        metrics,
        unsupported: vec![],
        extra: Default::default(),
    }
}

#[tokio::test]
async fn hdfs_lake_publishes_once_and_keeps_progress() {
    let Ok(base) = std::env::var("GPUSTREAM_TEST_HDFS_URL") else {
        eprintln!("hdfs_lake: skipped (set GPUSTREAM_TEST_HDFS_URL=hdfs://HOST:PORT/dir)");
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let url = format!(
        "{}/it-{}-{nanos}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    let lake = Lake::open(&url).expect("open hdfs lake");
    assert!(
        lake.root_url().as_str().starts_with("hdfs://")
            || lake.root_url().as_str().starts_with("viewfs://")
    );

    let samples: Vec<Sample> = (0..50).map(sample).collect();
    let range = Range {
        topic: "t",
        partition: 0,
        first: 0,
        last: 49,
        closing: false,
    };
    let first = write_range(&lake, &range, &samples, &[], &[])
        .await
        .expect("publish");
    assert_eq!((first.files, first.rows), (1, 50));
    // A replay after a crash publishes the same name: found, not written twice.
    let again = write_range(&lake, &range, &samples, &[], &[])
        .await
        .expect("republish");
    assert_eq!((again.files, again.already_present), (0, 1));
    assert_eq!(
        lake.publish("samples/x.parquet", bytes::Bytes::from_static(b"a"))
            .await
            .expect("create"),
        Published::Created
    );
    assert_eq!(
        lake.publish("samples/x.parquet", bytes::Bytes::from_static(b"b"))
            .await
            .expect("create again"),
        Published::AlreadyPresent
    );

    // Read the Parquet file back.
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let listed: Vec<_> = lake
        .store()
        .list(Some(&lake.path("samples")))
        .try_collect()
        .await
        .expect("list");
    let parquet: Vec<_> = listed
        .iter()
        .filter(|o| {
            o.location
                .as_ref()
                .ends_with("00000000000000000049.parquet")
        })
        .collect();
    assert_eq!(parquet.len(), 1, "{listed:?}");
    let bytes = lake
        .store()
        .get(&parquet[0].location)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    let rows: usize = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch").num_rows())
        .sum();
    assert_eq!(rows, 50);

    let progress = ProgressStore::new(lake.clone(), "t");
    let p = PartitionProgress {
        published_through: Some(49),
        pending: None,
    };
    progress.store(0, &p).await.expect("store progress");
    assert_eq!(progress.load(0).await.expect("load progress"), p);
}
