//! The producer binary against the real Kafka-API broker (Tansu): the simulated fleet and
//! its labels, replay passes, compression, Ctrl-C, the errors for a missing topic and an
//! unreachable broker, and the ops endpoint of a follow run.

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use gpustream::Sample;
use gpustream_sim::fleet::{FaultLabel, Fleet, FleetConfig};
use gpustream_test_kit::data::shared_log;
use gpustream_test_kit::http::{http_get, metric};
use gpustream_test_kit::kafka::{Record, create_topic, read_topic};
use gpustream_test_kit::{free_port, unique};
use support::{interrupt, producer_bin, spawn_captured, success_stdout};

/// The broker, or `None` when integration tests are off.
fn brokers(test: &str) -> Option<String> {
    gpustream_test_kit::services(test).map(|s| s.brokers)
}

fn decode_all(msgs: &[Record]) -> Vec<Sample> {
    msgs.iter()
        .map(|m| {
            let s = gpustream::wire::decode_sample(&m.payload).expect("valid wire sample");
            assert_eq!(m.key, s.key(), "message key is host/gpu");
            s
        })
        .collect()
}

#[test]
fn simulate_publishes_the_fleet_and_its_labels() {
    let Some(brokers) = brokers("simulate_publishes_the_fleet_and_its_labels") else {
        return;
    };
    let topic = unique("sim");
    let labels_topic = unique("sim-labels");
    let dir = tempfile::tempdir().unwrap();
    let labels_file = dir.path().join("labels.jsonl");
    let out = producer_bin()
        .args(["simulate", "--brokers", &brokers, "--topic", &topic])
        .args(["--labels-topic", &labels_topic, "--create-topic"])
        .args([
            "--hosts",
            "2",
            "--gpus",
            "3",
            "--seed",
            "5",
            "--interval",
            "2s",
        ])
        .args([
            "--samples",
            "1500",
            "--speed",
            "0",
            "--start",
            "2025-06-01T00:00:00Z",
        ])
        .arg("--labels")
        .arg(&labels_file)
        .output()
        .expect("run producer");
    let stdout = success_stdout(&out);

    // The same fleet, in process: the binary must have published exactly this.
    let mut fleet = Fleet::new(FleetConfig {
        hosts: 2,
        gpus_per_host: 3,
        seed: 5,
        interval: Duration::from_secs(2),
        start: Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap(),
        faults: true,
    });
    let mut expected: Vec<Sample> = Vec::new();
    for _ in 0..1500 {
        expected.extend(fleet.next_tick());
    }
    let expected_labels = fleet.labels();
    assert!(!expected_labels.is_empty(), "an hour of 6 GPUs has faults");
    assert!(
        stdout.contains(&format!("samples sent {}", expected.len())),
        "{stdout}"
    );

    let mut got = decode_all(&read_topic(
        &brokers,
        &topic,
        expected.len(),
        Duration::from_secs(30),
    ));
    let order = |s: &Sample| (s.host.clone(), s.gpu.clone(), s.seq);
    got.sort_by_key(order);
    expected.sort_by_key(order);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "published samples differ from the fleet's");

    let file_labels: Vec<FaultLabel> = std::fs::read_to_string(&labels_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("label line"))
        .collect();
    assert_eq!(file_labels, expected_labels);
    let topic_labels: Vec<FaultLabel> = read_topic(
        &brokers,
        &labels_topic,
        expected_labels.len(),
        Duration::from_secs(20),
    )
    .iter()
    .map(|m| serde_json::from_slice(&m.payload).expect("label message"))
    .collect();
    let as_set = |v: &[FaultLabel]| -> HashSet<String> {
        v.iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect()
    };
    assert_eq!(topic_labels.len(), expected_labels.len());
    assert_eq!(as_set(&topic_labels), as_set(&expected_labels));
}

#[test]
fn paced_simulation_keeps_the_interval() {
    let Some(brokers) = brokers("paced_simulation_keeps_the_interval") else {
        return;
    };
    let topic = unique("sim-paced");
    let t = Instant::now();
    let out = producer_bin()
        .args(["simulate", "--brokers", &brokers, "--topic", &topic])
        .args(["--create-topic", "--hosts", "1", "--gpus", "2"])
        .args(["--interval", "250ms", "--samples", "12", "--no-faults"])
        .output()
        .expect("run producer");
    let took = t.elapsed();
    success_stdout(&out);
    // 12 ticks at 250 ms: the last is due 2.75 s after the first.
    assert!(took >= Duration::from_millis(2700), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let got = decode_all(&read_topic(&brokers, &topic, 24, Duration::from_secs(20)));
    assert_eq!(got.len(), 24);
    // Event times follow the interval from a start near now.
    let first = got.iter().map(|s| s.event_time).min().unwrap();
    let last = got.iter().map(|s| s.event_time).max().unwrap();
    assert_eq!((last - first).num_milliseconds(), 11 * 250);
    assert!((Utc::now() - first).num_seconds().abs() < 30);
}

#[test]
fn replay_passes_rebase_and_zstd_to_the_broker() {
    let Some(brokers) = brokers("replay_passes_rebase_and_zstd_to_the_broker") else {
        return;
    };
    let topic = unique("replay-passes");
    create_topic(&brokers, &topic, 3);
    let log = shared_log("nvidia-ada-class_richardtokar-python_work.txt");
    let out = producer_bin()
        .args(["replay", "--brokers", &brokers, "--topic", &topic])
        .args(["--speed", "0", "--passes", "3", "--compression", "zstd"])
        .args(["--rebase", "2030-01-01T00:00:00Z", "--timezone", "UTC"])
        .args(["--host", "rig", "--gpu", "ada"])
        .arg(&log)
        .output()
        .expect("run producer");
    let stdout = success_stdout(&out);
    assert!(stdout.contains("over 3 passes"), "{stdout}");
    let got = decode_all(&read_topic(
        &brokers,
        &topic,
        3 * 356,
        Duration::from_secs(30),
    ));
    assert_eq!(got.len(), 3 * 356, "356 rows, three passes");
    let ids: HashSet<&str> = got.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "event ids unique across passes");
    // Per pass (by seq order), times start at the rebase point and never go backwards.
    let mut by_pass: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in &got {
        let pass = s.session.rsplit('@').next().unwrap_or_default().to_string();
        by_pass.entry(pass).or_default().push(s);
    }
    assert_eq!(by_pass.len(), 3);
    let mut spans: Vec<_> = by_pass
        .values()
        .map(|v| {
            let a = v.iter().map(|s| s.event_time).min().unwrap();
            let b = v.iter().map(|s| s.event_time).max().unwrap();
            (a, b)
        })
        .collect();
    spans.sort();
    assert_eq!(
        spans[0].0,
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
    );
    for w in spans.windows(2) {
        assert!(
            w[1].0 > w[0].1,
            "pass starts after the previous one ended: {w:?}"
        );
    }
}

#[test]
fn ctrl_c_flushes_and_reports() {
    let Some(brokers) = brokers("ctrl_c_flushes_and_reports") else {
        return;
    };
    let topic = unique("replay-int");
    create_topic(&brokers, &topic, 1);
    let log = shared_log("intel-irisxe_rleaderjoon-GPU_DashBoard_c-b3212db.txt");
    // 5x real time over a log of 1006 one-second rows: minutes, unless interrupted.
    let child = spawn_captured(
        producer_bin()
            .args(["replay", "--brokers", &brokers, "--topic", &topic])
            .args(["--speed", "5"])
            .arg(&log),
    );
    std::thread::sleep(Duration::from_secs(4));
    let out = interrupt(child);
    let stdout = success_stdout(&out);
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    let sent: usize = stdout
        .split("sent ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `sent N` in {stdout}"));
    assert!(sent > 0 && sent < 1006, "{stdout}");
    assert!(
        stdout.contains(&format!("delivered {sent}, failed 0")),
        "{stdout}"
    );
    let got = read_topic(&brokers, &topic, sent, Duration::from_secs(20));
    assert_eq!(got.len(), sent, "what was reported sent is in the topic");
}

#[test]
fn missing_topic_and_unreachable_broker_are_clear_errors() {
    let Some(brokers) = brokers("missing_topic_and_unreachable_broker_are_clear_errors") else {
        return;
    };
    let log = shared_log("nvidia-ada-class_richardtokar-python_work.txt");
    let missing = unique("does-not-exist");
    let out = producer_bin()
        .args(["replay", "--brokers", &brokers, "--topic", &missing])
        .args(["--speed", "0"])
        .arg(&log)
        .output()
        .expect("run producer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("topic `{missing}` does not exist"))
            && stderr.contains("--create-topic"),
        "{stderr}"
    );

    // The start-up check gives up after 15 s with one line naming what to check.
    let t = Instant::now();
    let out = producer_bin()
        .args(["simulate", "--brokers", "127.0.0.1:1", "--samples", "1"])
        .output()
        .expect("run producer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("producer: error:"))
        .collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(
        error_lines[0].contains("no broker of `127.0.0.1:1` answered within 15s")
            && error_lines[0].contains("security.protocol"),
        "{stderr}"
    );
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
}

#[test]
fn follow_publishes_rows_as_they_are_written() {
    let Some(brokers) = brokers("follow_publishes_rows_as_they_are_written") else {
        return;
    };
    let (topic, dir, log) = live_log(&brokers, "follow");
    let state = dir.path().join("state.json");
    let header = "Date , GPU Temperature [\u{b0}C] , GPU Load [%] ,\r\n";
    let latin1 = |s: &str| -> Vec<u8> { s.chars().map(|c| c as u32 as u8).collect() };
    std::fs::write(
        &log,
        latin1(&format!("{header}2025-01-01 00:00:00 , 40.0 , 1 ,\r\n")),
    )
    .unwrap();
    let run = |expect_total: usize, append: &str| {
        let child = spawn_captured(
            follow(&brokers, &topic)
                // A follow run serves /metrics; a free port, as tests run side by side.
                .args(["--metrics-addr", "127.0.0.1:0"])
                .arg("--state-file")
                .arg(&state)
                .arg(&log),
        );
        std::thread::sleep(Duration::from_millis(1500));
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, &latin1(append)).unwrap();
        let got = read_topic(&brokers, &topic, expect_total, Duration::from_secs(20));
        success_stdout(&interrupt(child));
        decode_all(&got)
    };
    let first = run(2, "2025-01-01 00:00:01 , 41.0 , 2 ,\r\n");
    assert_eq!(first.len(), 2);
    // A second run resumes after what the first one published.
    let all = run(3, "2025-01-01 00:00:02 , 42.0 , 3 ,\r\n");
    assert_eq!(all.len(), 3, "nothing sent twice");
    let temps: Vec<f64> = all
        .iter()
        .map(|s| s.metrics.get(gpustream::Metric::GpuTemp).unwrap())
        .collect();
    assert_eq!(temps, vec![40.0, 41.0, 42.0]);
}

/// A new one-partition topic named after `prefix`, and the path of a log to follow in
/// a new temporary directory (removed when the returned guard drops).
fn live_log(brokers: &str, prefix: &str) -> (String, tempfile::TempDir, std::path::PathBuf) {
    let topic = unique(prefix);
    create_topic(brokers, &topic, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("live.txt");
    (topic, dir, log)
}

/// `producer replay --follow` onto `topic`, polling every 50 ms, as GPU `live` of a
/// log written in UTC.
fn follow(brokers: &str, topic: &str) -> std::process::Command {
    let mut command = producer_bin();
    command
        .args(["replay", "--follow", "--brokers", brokers, "--topic", topic])
        .args([
            "--poll-interval",
            "50ms",
            "--timezone",
            "UTC",
            "--gpu",
            "live",
        ]);
    command
}

/// Polls `url` until `accept` takes the answer (at most 20 s); the last answer otherwise.
fn wait_for_http(url: &str, accept: impl Fn(u16, &str) -> bool) -> Option<(u16, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        last = http_get(url);
        if let Some((status, body)) = &last
            && accept(*status, body)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

#[test]
fn follow_serves_health_and_counts_delivered_samples() {
    let Some(brokers) = brokers("follow_serves_health_and_counts_delivered_samples") else {
        return;
    };
    let (topic, _dir, log) = live_log(&brokers, "follow-ops");
    let header = "Date , GPU Temperature [C] , GPU Load [%] ,\r\n";
    let row = |sec: u32| format!("2025-01-01 00:00:{sec:02} , 40.0 , {sec} ,\r\n");
    std::fs::write(&log, format!("{header}{}{}{}", row(0), row(1), row(2))).unwrap();
    let port = free_port();
    let child = spawn_captured(
        follow(&brokers, &topic)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .arg(&log),
    );
    let base = format!("http://127.0.0.1:{port}");
    fn delivered(n: f64) -> impl Fn(u16, &str) -> bool {
        move |status, body| {
            status == 200
                && metric(body, "gpustream_records_out_total{component=\"producer\"}") == Some(n)
        }
    }

    let ready = wait_for_http(&format!("{base}/health/ready"), |status, _| status == 200);
    assert_eq!(ready.as_ref().map(|r| r.0), Some(200), "{ready:?}");
    let (_, text) = wait_for_http(&format!("{base}/metrics"), delivered(3.0)).expect("/metrics");
    let build = text
        .lines()
        .find(|l| l.starts_with("gpustream_build_info{"))
        .unwrap_or_else(|| panic!("no build info in\n{text}"));
    assert!(
        build.contains("component=\"producer\"") && build.ends_with(" 1"),
        "{build}"
    );
    assert_eq!(
        metric(&text, "gpustream_records_out_total{component=\"producer\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "gpustream_records_in_total{component=\"producer\",topic=\"gpuz\"}"
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "gpustream_write_errors_total{component=\"producer\"}"
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        read_topic(&brokers, &topic, 3, Duration::from_secs(20)).len(),
        3
    );

    // Rows written while it runs are counted once the broker has them.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, format!("{}{}", row(3), row(4)).as_bytes()).unwrap();
    let got = wait_for_http(&format!("{base}/metrics"), delivered(5.0)).expect("/metrics");
    assert_eq!(
        metric(
            &got.1,
            "gpustream_records_out_total{component=\"producer\"}"
        ),
        Some(5.0),
        "{}",
        got.1
    );
    let live = http_get(&format!("{base}/health/live")).expect("/health/live");
    assert_eq!(live.0, 200, "{live:?}");

    let stdout = success_stdout(&interrupt(child));
    assert!(stdout.contains("sent 5, delivered 5, failed 0"), "{stdout}");
}
