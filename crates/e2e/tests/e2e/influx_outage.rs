//! InfluxDB stops for 30 s in the middle of a replay of a real GPU-Z log and starts again:
//! the sink pauses consumption (bounded memory, still in its group), resumes by itself,
//! and every point arrives exactly once, with the offsets committed to the end.
//!
//! Runs against the shared Kafka broker and a private `influxd` the test stops and starts.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use consumer_influx::InfluxConfig;
use gpustream_test_kit::influxd::PrivateInflux;
use gpustream_test_kit::kafka::committed;
use gpustream_test_kit::{services, unique};
use gpuz::{Identity, ParseOptions, parse_log};

use crate::support::influx_sink::{self, InProcessSink};

const LOG: &str = "nvidia-1377mhz-2x8pin_T2xic-GPU-Z-grapher_bm1.txt";
/// How long the replay of the whole log takes; the outage sits in its middle.
const REPLAY: Duration = Duration::from_secs(50);
const OUTAGE_AT: Duration = Duration::from_secs(8);
const OUTAGE: Duration = Duration::from_secs(30);

async fn count(http: &reqwest::Client, url: &str, db: &str) -> Option<u64> {
    let v: serde_json::Value = http
        .post(format!("{url}/query"))
        .query(&[("db", db)])
        .form(&[("q", "SELECT count(seq) FROM gpu_samples")])
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())?;
    Some(
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_point_arrives_after_a_30_s_influxdb_outage_mid_replay() {
    let Some(svc) = services("influx_outage") else {
        return;
    };
    gpustream_runtime::service::init_logging();
    let path = gpustream_test_kit::data::shared_log(LOG);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let identity = Identity {
        host: "outage host".into(),
        gpu: "bm1".into(),
        gpu_index: 0,
        gpu_name: None,
    };
    let parsed = parse_log(LOG, &bytes, &identity, &ParseOptions::default());
    let samples = parsed.samples;
    let n = samples.len();
    assert!(n > 500, "{n} samples");

    let mut influx = tokio::task::spawn_blocking(PrivateInflux::start)
        .await
        .expect("start influxd");
    let db = "outage";
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http");
    let created = http
        .post(format!("{}/query", influx.url))
        .form(&[("q", format!("CREATE DATABASE {db}"))])
        .send()
        .await
        .expect("create database");
    assert!(created.status().is_success());

    let topic = unique("outage-samples");
    let group = unique("outage-group");
    gpustream_runtime::kafka::ensure_topics(&svc.brokers, &[(&topic, 2)])
        .await
        .expect("create topic");

    let InProcessSink {
        run,
        metrics,
        health,
        shutdown,
    } = influx_sink::start(
        &svc.brokers,
        &group,
        &topic,
        InfluxConfig::new(&influx.url, db),
    );

    // The replay: samples at an even pace over REPLAY, in log order.
    let (replay, produced) = influx_sink::paced_replay(&svc.brokers, &topic, samples, REPLAY);

    let t0 = Instant::now();
    tokio::time::sleep(OUTAGE_AT).await;
    let before = metrics.points_written.get();
    assert!(before > 0, "points were written before the outage");
    influx = tokio::task::spawn_blocking(move || {
        influx.stop();
        influx
    })
    .await
    .expect("stop influxd");
    let outage_started = Instant::now();
    let produced_at_stop = produced.load(Ordering::Relaxed);

    // During the outage: nothing written, health failing, consumption paused once two
    // batches are waiting.
    let mut paused_seen = false;
    while outage_started.elapsed() < OUTAGE {
        tokio::time::sleep(Duration::from_millis(500)).await;
        paused_seen |= metrics.common.paused.get() == 1;
    }
    let written_during = metrics.points_written.get();
    let produced_during = produced.load(Ordering::Relaxed) - produced_at_stop;
    assert!(
        produced_during > 300,
        "the replay kept going during the outage ({produced_during} samples)"
    );
    assert!(
        written_during <= before + 50,
        "no more than the batch in flight at the stop was written: {before} → {written_during}"
    );
    assert!(
        health.problem().is_some(),
        "/health reports the failing writes"
    );
    assert!(
        paused_seen,
        "consumption was paused while InfluxDB was down"
    );

    influx = tokio::task::spawn_blocking(move || {
        influx.resume();
        influx
    })
    .await
    .expect("restart influxd");
    eprintln!(
        "influxd back after {:.1} s",
        outage_started.elapsed().as_secs_f64()
    );

    replay.await.expect("replay finished");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut got = 0;
    while Instant::now() < deadline {
        got = count(&http, &influx.url, db).await.unwrap_or(0);
        if got as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        got as usize, n,
        "every sample of the log is a point in InfluxDB"
    );
    assert_eq!(metrics.common.paused.get(), 0, "consumption resumed");
    assert!(health.problem().is_none(), "/health is good again");

    let summary = influx_sink::stop(run, &shutdown).await;
    assert_eq!(summary.points_written as usize, n, "{summary:?}");
    let offsets = tokio::task::spawn_blocking({
        let brokers = svc.brokers.clone();
        move || committed(&brokers, &group, &topic)
    })
    .await
    .expect("committed");
    // -1: a partition that received nothing (every sample of one GPU shares a key).
    let total: i64 = offsets.values().map(|o| (*o).max(0)).sum();
    assert_eq!(
        total as usize, n,
        "offsets committed to the end: {offsets:?}"
    );
    eprintln!(
        "{n} samples, outage of {} s, all written in {:.1} s",
        OUTAGE.as_secs(),
        t0.elapsed().as_secs_f64()
    );
}
