//! Operating the stream processor, watched from outside the real process on the real
//! broker: `/metrics` and `/health` over HTTP, an idle input that still flushes, late
//! samples that still land, poison messages counted, files rolled by size, a lake outage
//! seen on `/health` and as consumer lag and recovered without loss, and a SIGTERM that
//! publishes what the processor holds and commits it.

use crate::support;

use std::time::{Duration, Instant};

use gpustream_test_kit::http::metric;
use gpustream_test_kit::http::series;
use gpustream_test_kit::kafka::Sender;
use gpustream_test_kit::kafka::committed;
use gpustream_test_kit::lake::lake_ids;
use gpustream_test_kit::samples::t0;
use gpustream_test_kit::{services, unique};
use support::{Proc, sample, wait_lake};

/// Every metric the issue asks for, by its exposition name.
const REQUIRED: &[&str] = &[
    "gpustream_records_in_total{component=\"stream-processor\"",
    "gpustream_records_out_total{component=\"stream-processor\"",
    "stream_processor_anomalies_total",
    "gpustream_consumer_lag{component=\"stream-processor\"",
    "stream_processor_files_written_total",
    "stream_processor_bytes_written_total",
    "gpustream_write_seconds_bucket{component=\"stream-processor\"",
    "stream_processor_write_stage_seconds_bucket{stage=\"samples\"",
    "stream_processor_late_samples_total",
    "gpustream_dead_lettered_total{component=\"stream-processor\"",
    "gpustream_build_info{component=\"stream-processor\"",
    "process_resident_memory_bytes",
];

#[test]
fn metrics_health_idle_flush_late_samples_and_dlq_over_http() {
    let Some(svc) = services("metrics_health_idle_flush_late_samples_and_dlq_over_http") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("ops");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, 2), (&format!("{topic}-dlq"), 1)],
    ))
    .expect("topics");
    let lake = tempfile::tempdir().expect("lake dir");
    let flush_interval = Duration::from_secs(1);
    let mut proc = Proc::start(
        &svc.brokers,
        &topic,
        &unique("ops-group"),
        lake.path().to_str().expect("utf8"),
        &[
            "--flush-interval",
            "1s",
            "--flush-rows",
            "100000",
            "--rollup-window",
            "1m",
            "--allowed-lateness",
            "10s",
        ],
    );
    proc.wait_up(Duration::from_secs(20));
    let (status, body) = proc.get("/health").expect("/health");
    assert_eq!((status, body.trim()), (200, "ok"), "healthy at start");

    // Partition 0: GPU g0 for 10 s, one sample 5 min later (moves its watermark far past
    // the first window), then a sample back in the first minute: late for its window.
    // Partition 1: GPU g1 at 99 °C for 90 s, which any temperature rule must report.
    let sender = Sender::new(&svc.brokers, &topic);
    let mut expected = Vec::new();
    for i in 0..10u64 {
        let s = sample("g0", i, t0() + chrono::Duration::seconds(i as i64), 60.0);
        sender.send_sample(0, &s);
        expected.push(s.event_id);
    }
    let ahead = sample("g0", 10, t0() + chrono::Duration::minutes(5), 60.0);
    sender.send_sample(0, &ahead);
    expected.push(ahead.event_id);
    let late = sample("g0", 11, t0() + chrono::Duration::seconds(20), 60.0);
    sender.send_sample(0, &late);
    expected.push(late.event_id.clone());
    for i in 0..90u64 {
        let s = sample("g1", i, t0() + chrono::Duration::seconds(i as i64), 99.0);
        sender.send_sample(1, &s);
        expected.push(s.event_id);
    }
    sender.send(
        0,
        "ops-host/g0",
        b"{\"schema_version\": 1, \"not\": \"a sample\"",
    );
    sender.flush();
    let produced_at = Instant::now();

    // Nothing more is produced: the input is idle, and still everything must land
    // within the flush interval (plus consume and publish time).
    let took = wait_lake(lake.path(), expected.len(), Duration::from_secs(30))
        .expect("every sample reached the lake while the input was idle");
    let since_produced = produced_at.elapsed();
    eprintln!(
        "idle input: lake complete {since_produced:?} after the last message was acknowledged (flush interval {flush_interval:?})"
    );
    assert!(
        since_produced < flush_interval + Duration::from_secs(8),
        "idle flush took {since_produced:?} ({took:?} polling)"
    );
    let (ids, strays) = lake_ids(lake.path());
    assert!(strays.is_empty(), "no temporary files visible: {strays:?}");
    for id in &expected {
        assert_eq!(
            ids.get(id),
            Some(&1),
            "sample {id} in the lake exactly once"
        );
    }
    assert_eq!(ids.len(), expected.len());
    assert_eq!(
        ids.get(&late.event_id),
        Some(&1),
        "the late sample still landed"
    );

    // Consumer lag per assigned partition, measured against the broker every 5 s: it
    // falls to 0 once everything is consumed.
    assert_eq!(
        proc.wait_metric(
            "gpustream_assigned_partitions",
            Duration::from_secs(10),
            |v| v == 2.0
        ),
        Some(2.0)
    );
    for p in 0..2 {
        let name = format!("gpustream_consumer_lag{{partition=\"{p}\"}}");
        let lag = proc.wait_metric(&name, Duration::from_secs(12), |v| v == 0.0);
        assert_eq!(lag, Some(0.0), "{name} after everything was consumed");
    }

    // Every required metric is exposed and tells what happened.
    let text = proc.metrics();
    for name in REQUIRED {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "/metrics has no {name}:\n{text}"
        );
    }
    let value = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("{name} in:\n{text}"));
    let good = expected.len() as f64;
    assert_eq!(value("gpustream_records_in_total"), good + 1.0);
    assert_eq!(value("gpustream_records_out_total"), good);
    assert_eq!(value("gpustream_dead_lettered_total"), 1.0);
    assert_eq!(value("stream_processor_late_samples_total"), 1.0);
    assert_eq!(value("stream_processor_buffered_samples"), 0.0);
    // One Delta commit holds one file per table partition (date, hour) it touches.
    assert!(value("stream_processor_files_written_total") >= 1.0);
    assert!(value("stream_processor_bytes_written_total") > 1000.0);
    assert!(value("gpustream_write_seconds_count") >= 1.0);
    assert!(value("gpustream_write_seconds_sum") > 0.0);
    let anomalies = series(&text, "stream_processor_anomalies_total{");
    assert!(
        anomalies.iter().any(|(_, v)| *v >= 1.0),
        "a GPU at 99 °C for 90 s is counted under its rule: {anomalies:?}"
    );
    assert!(
        anomalies.iter().all(|(s, _)| s.contains("rule=\"")),
        "anomalies are counted by rule: {anomalies:?}"
    );

    let (status, body) = proc.get("/health").expect("/health");
    assert_eq!((status, body.trim()), (200, "ok"), "healthy after poison");
    assert!(proc.terminate(Duration::from_secs(20)).success());
}

#[test]
fn sigterm_publishes_what_it_holds_and_commits() {
    let Some(svc) = services("sigterm_publishes_what_it_holds_and_commits") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("sigterm");
    let group = unique("sigterm-group");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, 2), (&format!("{topic}-dlq"), 1)],
    ))
    .expect("topics");
    let lake = tempfile::tempdir().expect("lake dir");
    // Neither the row count nor the age would flush during the test: only the shutdown.
    let mut proc = Proc::start(
        &svc.brokers,
        &topic,
        &group,
        lake.path().to_str().expect("utf8"),
        &["--flush-interval", "10m", "--flush-rows", "1000000"],
    );
    proc.wait_up(Duration::from_secs(20));

    let sender = Sender::new(&svc.brokers, &topic);
    let per_partition = [120u64, 80];
    let mut expected = Vec::new();
    for (p, n) in per_partition.iter().enumerate() {
        let gpu = format!("g{p}");
        for i in 0..*n {
            let s = sample(&gpu, i, t0() + chrono::Duration::seconds(i as i64), 55.0);
            sender.send_sample(p as i32, &s);
            expected.push(s.event_id);
        }
    }
    sender.flush();
    let total = expected.len() as f64;
    assert_eq!(
        proc.wait_metric(
            "stream_processor_buffered_samples",
            Duration::from_secs(30),
            |v| v == total
        ),
        Some(total),
        "the processor holds every sample in memory"
    );
    assert!(
        lake_ids(lake.path()).0.is_empty(),
        "nothing published before the shutdown (flush interval 10 min)"
    );
    let before = committed(&svc.brokers, &group, &topic);
    assert!(
        before.values().all(|o| *o < 0),
        "nothing committed before the shutdown: {before:?}"
    );

    let started = Instant::now();
    let status = proc.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    eprintln!("SIGTERM → exit in {:?}", started.elapsed());

    let (ids, strays) = lake_ids(lake.path());
    assert!(strays.is_empty(), "{strays:?}");
    assert_eq!(ids.len(), expected.len(), "every held sample published");
    for id in &expected {
        assert_eq!(ids.get(id), Some(&1), "{id} exactly once");
    }
    let after = committed(&svc.brokers, &group, &topic);
    for (p, n) in per_partition.iter().enumerate() {
        assert_eq!(
            after.get(&(p as i32)).copied(),
            Some(*n as i64),
            "partition {p} committed through its last message: {after:?}"
        );
    }
}

#[test]
fn files_roll_by_size_without_waiting_for_age() {
    let Some(svc) = services("files_roll_by_size_without_waiting_for_age") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("roll");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, 1), (&format!("{topic}-dlq"), 1)],
    ))
    .expect("topics");
    let lake = tempfile::tempdir().expect("lake dir");
    // Only the size bound can flush: rows and age are far away.
    let mut proc = Proc::start(
        &svc.brokers,
        &topic,
        &unique("roll-group"),
        lake.path().to_str().expect("utf8"),
        &[
            "--flush-bytes",
            "4096",
            "--flush-rows",
            "1000000",
            "--flush-interval",
            "10m",
        ],
    );
    proc.wait_up(Duration::from_secs(20));
    let sender = Sender::new(&svc.brokers, &topic);
    let (mut payload_bytes, mut largest) = (0, 0);
    let mut expected = Vec::new();
    for i in 0..200u64 {
        let s = sample("g0", i, t0() + chrono::Duration::seconds(i as i64), 50.0);
        let len = gpustream::wire::encode_sample(&s).expect("encode").len();
        payload_bytes += len;
        largest = largest.max(len);
        sender.send_sample(0, &s);
        expected.push(s.event_id);
    }
    sender.flush();
    // Everything but the last partial file lands by size alone; SIGTERM publishes the rest.
    let floor = expected.len() - expected.len() * 4096 / payload_bytes - 1;
    let took = wait_lake(lake.path(), floor, Duration::from_secs(30));
    assert!(
        took.is_some(),
        "samples reached the lake by size before any age flush"
    );
    let files = gpustream_test_kit::lake::parquet_files(&lake.path().join("samples"));
    // A size flush holds at least 4096 bytes and overshoots by less than one message.
    let min_files = payload_bytes / (4096 + largest);
    assert!(
        files.len() >= min_files,
        "{payload_bytes} payload bytes at 4096 (+{largest}) per file: at least {min_files} files, got {}",
        files.len()
    );
    assert!(proc.terminate(Duration::from_secs(20)).success());
    let (ids, _) = lake_ids(lake.path());
    assert_eq!(ids.len(), expected.len());
    assert!(ids.values().all(|n| *n == 1));
}

#[test]
fn lake_outage_shows_on_health_and_lag_then_recovers_without_loss() {
    let Some(svc) = services("lake_outage_shows_on_health_and_lag_then_recovers_without_loss")
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("outage");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, 1), (&format!("{topic}-dlq"), 1)],
    ))
    .expect("topics");
    let lake = tempfile::tempdir().expect("lake dir");
    // A file where the samples table's directory must go: every publish fails (even as
    // root), while progress records still work.
    let blocker = lake.path().join("samples");
    std::fs::write(&blocker, b"not a directory").expect("blocker");
    let mut proc = Proc::start(
        &svc.brokers,
        &topic,
        &unique("outage-group"),
        lake.path().to_str().expect("utf8"),
        &["--flush-rows", "10", "--flush-interval", "1s"],
    );
    proc.wait_up(Duration::from_secs(20));
    let sender = Sender::new(&svc.brokers, &topic);
    let mut expected = Vec::new();
    let mut send = |from: u64, n: u64| {
        for i in from..from + n {
            let s = sample("g0", i, t0() + chrono::Duration::seconds(i as i64), 50.0);
            sender.send_sample(0, &s);
            expected.push(s.event_id);
        }
        sender.flush();
    };
    send(0, 10);
    let deadline = Instant::now() + Duration::from_secs(20);
    let unhealthy = loop {
        match proc.get("/health") {
            Some((503, body)) => break body,
            _ if Instant::now() > deadline => panic!("/health never reported the lake failure"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(
        unhealthy.contains("flush"),
        "reason names the flush: {unhealthy}"
    );
    assert!(metric(&proc.metrics(), "gpustream_write_errors_total").is_some_and(|v| v >= 1.0));

    // While flushes fail nothing is committed or consumed further: the backlog shows as
    // lag (produced in small batches: Tansu's high watermark lags by the last batch).
    for k in 0..20 {
        send(10 + k * 100, 100);
    }
    let lag = proc.wait_metric(
        "gpustream_consumer_lag{partition=\"0\"}",
        Duration::from_secs(15),
        |v| v >= 1500.0,
    );
    assert!(
        lag.is_some_and(|v| v >= 1500.0),
        "lag reports the backlog of ~2000 messages: {lag:?}"
    );

    // The lake comes back: every sample lands exactly once, health and lag recover.
    std::fs::remove_file(&blocker).expect("remove blocker");
    // ~200 Delta commits of 10 rows each: about 30 s on a busy 2-core machine, so the
    // bound is generous; what is checked is that all of it lands once, not how fast.
    assert!(
        wait_lake(lake.path(), expected.len(), Duration::from_secs(120)).is_some(),
        "backlog published after the lake came back"
    );
    let buffered = proc.wait_metric(
        "stream_processor_buffered_samples",
        Duration::from_secs(5),
        |v| v == 0.0,
    );
    assert_eq!(buffered, Some(0.0));
    assert_eq!(proc.get("/health").map(|(s, _)| s), Some(200));
    let lag = proc.wait_metric(
        "gpustream_consumer_lag{partition=\"0\"}",
        Duration::from_secs(12),
        |v| v == 0.0,
    );
    assert_eq!(lag, Some(0.0));
    assert!(proc.terminate(Duration::from_secs(20)).success());
    let (ids, strays) = lake_ids(lake.path());
    assert!(strays.is_empty(), "{strays:?}");
    assert_eq!(ids.len(), expected.len());
    assert!(
        ids.values().all(|n| *n == 1),
        "no duplicates after the retries"
    );
}
