//! Exactly-once under crashes: the stream processor is killed with SIGKILL at random
//! moments (20 times) while a replay of a known number of samples is under way. After a
//! last clean run the lake holds every event id exactly once and no temporary file is
//! visible, on a local directory and on S3.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gpustream_lake::Lake;
use gpustream_test_kit::{services, unique};
use gpuz::{Identity, ParseOptions};
use producer::replay::{LogInput, ReplayOptions, replay};
use producer::sink::KafkaSink;

use crate::support::Proc;

const KILLS: usize = 20;

fn repo() -> std::path::PathBuf {
    gpustream_test_kit::data::workspace_root()
}

/// Small pseudo-random generator (no dependency, reproducible from the seed printed).
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

/// The stream processor with small, frequent flushes, so that a kill lands between
/// and inside commits alike.
fn start_processor(brokers: &str, topic: &str, group: &str, lake: &str) -> Proc {
    Proc::start(
        brokers,
        topic,
        group,
        lake,
        &["--flush-rows", "61", "--flush-interval", "150ms"],
    )
}

/// Sample event ids in the lake's `samples` table (as a reader sees it, through the
/// Delta log), with how often each appears.
async fn lake_ids(lake: &Lake) -> HashMap<String, usize> {
    gpustream_test_kit::lake::sample_ids(lake).await
}

fn crash_and_recover(brokers: &str, lake_url: &str, seed: u64) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("crash");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        brokers,
        &[(&topic, 3), (&format!("{topic}-dlq"), 1)],
    ))
    .expect("topics");
    let group = unique("crash-group");

    // Two GPUs' logs, replayed at a pace that spreads them over the crash loop.
    let inputs: Vec<LogInput> = [
        ("sim-a", repo().join("data/sample-gpuz-log.txt")),
        (
            "amd",
            repo().join("../shared/data/gpuz/amd-rx5700xt_MateusRodriguesCosta-AMDdebug.txt"),
        ),
    ]
    .into_iter()
    .map(|(gpu, path)| LogInput {
        path,
        identity: Identity {
            host: "crash-host".into(),
            gpu: gpu.into(),
            gpu_index: 0,
            gpu_name: None,
        },
    })
    .collect();
    let brokers_owned = brokers.to_string();
    let topic_owned = topic.clone();
    let producer = std::thread::spawn(move || {
        let opts = ReplayOptions {
            speed: 120.0,
            max_session_gap: Duration::from_secs(1),
            parse: ParseOptions {
                timezone: chrono_tz::UTC,
                fallback_header: None,
            },
            max_issues_logged: 0,
        };
        let mut sink = KafkaSink::new(&brokers_owned, &topic_owned).expect("sink");
        replay(&inputs, &opts, &mut sink, &Arc::new(AtomicBool::new(false))).expect("replay")
    });

    let mut rng = Lcg(seed);
    eprintln!("crash test on {lake_url} (seed {seed})");
    for i in 0..KILLS {
        let mut proc = start_processor(brokers, &topic, &group, lake_url);
        let after = rng.next_ms(800, 7000);
        std::thread::sleep(Duration::from_millis(after));
        let _ = proc.child.kill(); // SIGKILL
        let _ = proc.child.wait();
        eprintln!("kill {} after {after} ms", i + 1);
    }
    let report = producer.join().expect("producer thread");
    let total = report.delivery.delivered as usize;
    assert_eq!(
        total as u64, report.rows.data_rows,
        "every row delivered: {report}"
    );

    // A last clean run until everything is in, then a graceful stop.
    let lake = Lake::open(lake_url).expect("lake");
    let mut proc = start_processor(brokers, &topic, &group, lake_url);
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline && rt.block_on(lake_ids(&lake)).len() < total {
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = proc.terminate(Duration::from_secs(120));
    assert!(status.success(), "graceful stop: {status}");
    let ids = rt.block_on(lake_ids(&lake));
    let dupes: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        dupes.is_empty(),
        "duplicated event ids after {KILLS} kills: {dupes:?}"
    );
    assert_eq!(
        ids.len(),
        total,
        "every sample in the lake exactly once after {KILLS} kills"
    );
    // Engines that share no code with ours agree, on local disk and on S3 alike.
    let other = gpustream_test_kit::other_engines::table_counts(lake_url, &["samples"]);
    assert_eq!(other.len(), 1, "{other:?}");
    let t = &other[0];
    assert_eq!(
        (t.deltalake, t.polars, t.distinct_keys),
        (total as u64, total as u64, Some(total as u64)),
        "delta-rs (Python) and polars read what we read: {t:?}"
    );
}

#[test]
fn kill_9_twenty_times_local_lake_exactly_once() {
    let Some(svc) = services("kill_9_twenty_times_local_lake_exactly_once") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    crash_and_recover(&svc.brokers, dir.path().to_str().expect("utf8"), seed);
    let tmp = dir.path().join("_tmp");
    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    eprintln!("temporary files left outside the tables by killed writers: {leftovers}");
}

#[test]
fn kill_9_twenty_times_s3_lake_exactly_once() {
    let Some(svc) = services("kill_9_twenty_times_s3_lake_exactly_once") else {
        return;
    };
    let bucket = gpustream_test_kit::s3::new_bucket(svc.s3_endpoint(), "crash");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() ^ 0x5eed)
        .unwrap_or(7);
    crash_and_recover(&svc.brokers, &format!("s3://{bucket}/lake"), seed);
}
