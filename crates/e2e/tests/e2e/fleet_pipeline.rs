//! The simulated fleet, faults included (dropouts and lost GPUs leave holes), through the
//! real broker and the real `stream-processor` into a local lake: after a graceful stop the
//! lake holds every produced sample exactly once, no temporary file is visible, and
//! DataFusion reads the samples, the anomaly events and the rollups that account for every
//! sample.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use batch_analytics::{LakeSession, run_sql};
use gpustream_lake::Lake;
use gpustream_sim::fleet::{FaultKind, Fleet, FleetConfig};
use gpustream_test_kit::kafka::Sender;
use gpustream_test_kit::lake::lake_ids;
use gpustream_test_kit::{services, unique};
use support::{Proc, wait_lake};

const PARTITIONS: i32 = 4;
const TICKS: usize = 3 * 3600;

async fn scalar(session: &LakeSession, sql: &str) -> i64 {
    let out = run_sql(session, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let b = out
        .batches
        .first()
        .unwrap_or_else(|| panic!("{sql}: no rows"));
    let col = b.column(0);
    if col.is_null(0) {
        return 0;
    }
    col.as_primitive::<Int64Type>().value(0)
}

#[test]
fn simulated_fleet_lands_complete_and_duplicate_free_and_datafusion_reads_it() {
    let Some(svc) = services("fleet_pipeline") else {
        return;
    };
    let mut fleet = Fleet::new(FleetConfig {
        hosts: 2,
        gpus_per_host: 4,
        seed: 7,
        ..FleetConfig::default()
    });
    let topic = unique("fleet");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, PARTITIONS), (&format!("{topic}-dlq"), 1)],
    ))
    .expect("topics");

    // Every GPU in one partition (its key's), so its samples stay in order.
    let sender = Sender::new(&svc.brokers, &topic);
    let mut gpus: Vec<String> = Vec::new();
    let mut produced = BTreeSet::new();
    for _ in 0..TICKS {
        for s in fleet.next_tick() {
            let key = s.key();
            let idx = match gpus.iter().position(|g| *g == key) {
                Some(i) => i,
                None => {
                    gpus.push(key);
                    gpus.len() - 1
                }
            };
            sender.send_sample(idx as i32 % PARTITIONS, &s);
            produced.insert(s.event_id.clone());
        }
    }
    sender.flush();
    let labels = fleet.labels();
    let kinds: BTreeSet<FaultKind> = labels.iter().map(|l| l.kind).collect();
    assert!(
        kinds.contains(&FaultKind::Dropout) || kinds.contains(&FaultKind::GpuLost),
        "the run has holes to account for: {kinds:?}"
    );
    assert!(
        produced.len() < TICKS * 8,
        "dropouts and lost GPUs removed samples"
    );

    let lake = tempfile::tempdir().expect("lake dir");
    let lake_str = lake.path().to_str().expect("utf8").to_string();
    let mut proc = Proc::start(
        &svc.brokers,
        &topic,
        &unique("fleet-g"),
        &lake_str,
        &["--flush-interval", "1s"],
    );
    let landed = wait_lake(lake.path(), produced.len(), Duration::from_secs(180));
    assert!(landed.is_some(), "the lake did not fill within 180 s");
    assert!(
        proc.terminate(Duration::from_secs(60)).success(),
        "graceful stop"
    );

    let (ids, strays) = lake_ids(lake.path());
    assert!(
        strays.is_empty(),
        "non-Parquet files in the lake: {strays:?}"
    );
    let dupes: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dupes.is_empty(),
        "duplicated ids: {:?}",
        &dupes[..dupes.len().min(5)]
    );
    let in_lake: BTreeSet<String> = ids.into_keys().collect();
    assert_eq!(
        in_lake, produced,
        "the lake holds exactly the produced samples"
    );

    rt.block_on(async {
        let session = LakeSession::open(Lake::open(&lake_str).expect("lake"))
            .await
            .expect("session");
        let n = produced.len() as i64;
        assert_eq!(scalar(&session, "SELECT count(*) FROM samples").await, n);
        assert_eq!(
            scalar(&session, "SELECT count(DISTINCT event_id) FROM samples").await,
            n
        );
        assert_eq!(
            scalar(
                &session,
                "SELECT count(DISTINCT host || '/' || gpu) FROM samples"
            )
            .await,
            8
        );
        // Windows closed at the graceful stop: together they count every sample once.
        assert_eq!(
            scalar(
                &session,
                "SELECT CAST(sum(count) AS BIGINT) FROM rollups_1m"
            )
            .await,
            n,
            "rollups account for every sample"
        );
        let firing = scalar(
            &session,
            "SELECT count(*) FROM anomalies WHERE state = 'firing'",
        )
        .await;
        assert!(firing > 0, "the injected faults raised anomalies");
        let strangers = scalar(
            &session,
            "SELECT count(*) FROM anomalies WHERE host NOT LIKE 'sim-host-%'",
        )
        .await;
        assert_eq!(strangers, 0);

        // Engines that share no code with ours read the same counts in every table.
        let ours = [
            (
                "anomalies",
                scalar(&session, "SELECT count(*) FROM anomalies").await,
            ),
            (
                "rollups_1m",
                scalar(&session, "SELECT count(*) FROM rollups_1m").await,
            ),
            ("samples", n),
        ];
        let other = gpustream_test_kit::other_engines::table_counts(
            &lake_str,
            &["anomalies", "rollups_1m", "samples"],
        );
        for ((table, count), t) in ours.iter().zip(&other) {
            assert_eq!(t.table, *table);
            assert_eq!(
                (t.deltalake, t.polars),
                (*count as u64, *count as u64),
                "delta-rs (Python) and polars agree with DataFusion on {table}: {t:?}"
            );
        }
        assert_eq!(
            other[0].distinct_keys,
            Some(other[0].polars),
            "anomaly ids unique"
        );
        assert_eq!(other[2].distinct_keys, Some(n as u64), "sample keys unique");
    });
}
