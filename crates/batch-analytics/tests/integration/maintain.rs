//! `maintain` on a day of many small commits: a handful of files afterwards, every row
//! once for a reader that keeps counting through it, and vacuum of the replaced files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Duration;
use datafusion::prelude::SessionContext;
use gpustream::{Metric, Sample};
use gpustream_lake::Lake;

use crate::fixture::*;
use crate::nightly::reading;

const SMALL_DAY: &str = "2024-02-01";

/// `count(*)` and `count(DISTINCT event_id)` of the latest version of `samples` (the
/// distinct count reads every data file: no answer from statistics).
async fn counts(lake: &Lake) -> (i64, i64) {
    let provider = gpustream_lake::delta::table_provider(lake, "samples")
        .await
        .expect("open")
        .expect("samples exists");
    let ctx = SessionContext::new();
    ctx.register_table("samples", provider).expect("register");
    let batches = ctx
        .sql("SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM samples")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("read");
    let b = one_batch(&batches);
    (
        ints(&b, "n")[0].expect("n"),
        ints(&b, "ids")[0].expect("ids"),
    )
}

async fn maintain(path: &str, extra: &[&str]) -> String {
    let mut argv = vec!["batch-analytics", "maintain", "--lake", path];
    argv.extend_from_slice(extra);
    command(&argv).await.expect("maintain")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_compacts_small_files_under_a_reader() {
    let (dir, lake) = new_lake();
    let path = dir.path().to_str().expect("path");
    // 30 commits of 20 samples each into 10:00-10:10 of one day, as a stream processor
    // flushing every few seconds leaves them; one sample of the next day.
    let t0 = at("2024-02-01T10:00:00Z");
    for c in 0..30i64 {
        let samples: Vec<Sample> = (0..20i64)
            .map(|i| {
                let n = c * 20 + i;
                reading(
                    "gpu0",
                    "s",
                    t0 + Duration::seconds(n),
                    n as u64,
                    &[(Metric::GpuTemp, 40.0 + i as f64)],
                )
            })
            .collect();
        append_samples(&lake, &samples).await;
    }
    append_samples(
        &lake,
        &[reading(
            "gpu0",
            "s",
            at("2024-02-02T01:00:00Z"),
            9999,
            &[(Metric::GpuTemp, 50.0)],
        )],
    )
    .await;
    assert_eq!(files_of_day(&lake, "samples", SMALL_DAY).await.len(), 30);
    let next_day = files_of_day(&lake, "samples", "2024-02-02").await;
    let expected = (601, 601);
    assert_eq!(counts(&lake).await, expected);

    // A reader counts without pause, on a fresh snapshot each time, while the day is
    // compacted.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (lake, done) = (lake.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(Ordering::SeqCst) || seen.len() < 3 {
                seen.push(counts(&lake).await);
            }
            seen
        })
    };
    let text = maintain(path, &["--date", SMALL_DAY]).await;
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader");
    assert!(
        seen.iter().all(|c| *c == expected),
        "the reader saw {seen:?}, expected {expected:?} every time"
    );
    assert!(
        text.contains("samples: 1 day(s), 1 compacted, files 30 -> 1, 0 file(s) removed by vacuum"),
        "{text}"
    );
    assert_eq!(files_of_day(&lake, "samples", SMALL_DAY).await.len(), 1);
    assert_eq!(
        files_of_day(&lake, "samples", "2024-02-02").await,
        next_day,
        "another day is not touched"
    );
    assert_eq!(counts(&lake).await, expected);
    // Within the retention the replaced files stay on disk for readers of older
    // versions; with none they go.
    let on_disk = |day: &str| {
        gpustream_test_kit::lake::parquet_files(&dir.path().join(format!("samples/date={day}")))
            .len()
    };
    assert_eq!(on_disk(SMALL_DAY), 31);
    let text = maintain(path, &["--date", SMALL_DAY, "--retention", "0s"]).await;
    assert!(
        text.contains("samples: 1 day(s), 0 compacted, files 1 -> 1, 30 file(s) removed by vacuum"),
        "{text}"
    );
    assert_eq!(on_disk(SMALL_DAY), 1);
    assert_eq!(counts(&lake).await, expected);

    // Without --date, every closed day is maintained; an already compacted day is not
    // rewritten.
    let text = maintain(path, &[]).await;
    assert!(
        text.contains("samples: 2 day(s), 0 compacted, files 2 -> 2"),
        "{text}"
    );
    let text = maintain(path, &["--before", "2024-02-02"]).await;
    assert!(text.contains("samples: 1 day(s), 0 compacted"), "{text}");
}
