//! Replay semantics without a broker: passes (`--loop`), rebasing, pacing against an
//! absolute clock, the inputs file, and delivery failures being counted.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use gpustream::Sample;
use gpustream_runtime::kafka::KafkaSettings;
use gpustream_runtime::service::{CommonMetrics, Health};
use gpustream_test_kit::data::shared_log;
use gpuz::{Identity, ParseOptions, parse_log};
use producer::replay::{LogInput, Passes, ReplayOptions, read_inputs_file, replay, replay_passes};
use producer::sink::{KafkaSink, SampleSink, SinkObserver, SinkOptions, VecSink};

const ADA: &str = "nvidia-ada-class_richardtokar-python_work.txt";
const INTEL: &str = "intel-irisxe_rleaderjoon-GPU_DashBoard_c-b3212db.txt";

fn input(name: &str, gpu: &str) -> LogInput {
    LogInput {
        path: shared_log(name),
        identity: Identity {
            host: "rig".into(),
            gpu: gpu.into(),
            gpu_index: 0,
            gpu_name: None,
        },
    }
}

fn opts(speed: f64) -> ReplayOptions {
    ReplayOptions {
        speed,
        max_session_gap: Duration::from_secs(5),
        parse: ParseOptions::default(),
        max_issues_logged: 0,
    }
}

fn no_stop() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

#[test]
fn a_plain_replay_keeps_the_logs_ids_and_times() {
    let mut sink = VecSink::default();
    let report = replay(&[input(ADA, "a")], &opts(0.0), &mut sink, &no_stop()).unwrap();
    let bytes = std::fs::read(shared_log(ADA)).unwrap();
    let parsed = parse_log(
        &shared_log(ADA).display().to_string(),
        &bytes,
        &input(ADA, "a").identity,
        &ParseOptions::default(),
    );
    assert_eq!(sink.0, parsed.samples);
    assert_eq!(report.passes, 1);
    assert_eq!(report.sent, 356);
}

#[test]
fn passes_move_forward_in_time_with_fresh_ids() {
    let inputs = [input(INTEL, "intel"), input(ADA, "ada")];
    let mut sink = VecSink::default();
    let passes = Passes {
        count: Some(3),
        rebase_to: None,
    };
    let report = replay_passes(&inputs, &opts(0.0), &passes, &mut sink, &no_stop()).unwrap();
    let per_pass = 1006 + 356;
    assert_eq!(report.passes, 3);
    assert_eq!(report.sent as usize, 3 * per_pass);
    assert_eq!(report.rows.data_rows as usize, 3 * per_pass);
    let ids: HashSet<&str> = sink.0.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(ids.len(), sink.0.len(), "ids unique over all passes");
    // Pass 0 is the log as it is.
    let mut plain = VecSink::default();
    replay(&inputs, &opts(0.0), &mut plain, &no_stop()).unwrap();
    assert_eq!(&sink.0[..per_pass], &plain.0[..]);
    // Per GPU, event time never goes backwards from one pass to the next, and a later pass
    // is the first one moved by a whole number of log spans.
    for gpu in ["intel", "ada"] {
        let mine: Vec<&Sample> = sink.0.iter().filter(|s| s.gpu == gpu).collect();
        let n = mine.len() / 3;
        for p in 1..3 {
            let prev_last = mine[..p * n].iter().map(|s| s.event_time).max().unwrap();
            let first = mine[p * n].event_time;
            assert!(first > prev_last, "{gpu} pass {p}: {first} <= {prev_last}");
            let shift = mine[p * n].event_time - mine[0].event_time;
            for (a, b) in mine[..n].iter().zip(&mine[p * n..(p + 1) * n]) {
                assert_eq!(b.event_time - a.event_time, shift);
                assert_eq!(a.seq, b.seq);
                assert_eq!(a.metrics, b.metrics);
            }
        }
    }
}

#[test]
fn rebase_puts_the_first_row_at_the_given_time() {
    let to = Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap();
    let mut sink = VecSink::default();
    let passes = Passes {
        count: Some(1),
        rebase_to: Some(to),
    };
    replay_passes(
        &[input(INTEL, "i")],
        &opts(0.0),
        &passes,
        &mut sink,
        &no_stop(),
    )
    .unwrap();
    let mut plain = VecSink::default();
    replay(&[input(INTEL, "i")], &opts(0.0), &mut plain, &no_stop()).unwrap();
    assert_eq!(sink.0.iter().map(|s| s.event_time).min(), Some(to));
    let shift = to - plain.0.iter().map(|s| s.event_time).min().unwrap();
    for (a, b) in plain.0.iter().zip(&sink.0) {
        assert_eq!(b.event_time - a.event_time, shift);
        assert_ne!(a.event_id, b.event_id, "a moved row is a different event");
    }
}

#[test]
fn loop_runs_until_stopped() {
    struct StopAfter(VecSink, usize, Arc<AtomicBool>);
    impl SampleSink for StopAfter {
        fn send(&mut self, s: &Sample) -> producer::Result<()> {
            self.0.send(s)?;
            if self.0.0.len() >= self.1 {
                self.2.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        }
        fn flush(&mut self, t: Duration) -> producer::Result<producer::sink::DeliveryTotals> {
            self.0.flush(t)
        }
    }
    let stop = no_stop();
    let mut sink = StopAfter(VecSink::default(), 2000, stop.clone());
    let passes = Passes {
        count: None,
        rebase_to: None,
    };
    let report = replay_passes(&[input(ADA, "a")], &opts(0.0), &passes, &mut sink, &stop).unwrap();
    assert!(report.interrupted);
    assert_eq!(report.sent, 2000);
    assert_eq!(
        report.passes, 6,
        "2000 rows of a 356-row log: the sixth pass was cut"
    );
}

#[test]
fn pacing_uses_an_absolute_clock() {
    // 40 rows one second apart at 20x: 39 intervals of 50 ms = 1.95 s, without drift
    // from per-row sleeps or the time spent sending.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paced.txt");
    let mut text = String::from("Date , GPU Load [%] ,\r\n");
    for i in 0..40 {
        text.push_str(&format!("2025-01-01 00:00:{i:02} , {i} ,\r\n"));
    }
    std::fs::write(&path, text).unwrap();
    let mut inp = input(ADA, "p");
    inp.path = path;
    let mut sink = VecSink::default();
    let t = Instant::now();
    replay(&[inp], &opts(20.0), &mut sink, &no_stop()).unwrap();
    let took = t.elapsed();
    assert_eq!(sink.0.len(), 40);
    assert!(took >= Duration::from_millis(1950), "{took:?}");
    assert!(took < Duration::from_millis(2600), "{took:?}");
}

#[test]
fn inputs_file_gives_each_log_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("inputs.toml");
    std::fs::write(
        &p,
        "[[file]]\npath = \"logs/a.txt\"\nhost = \"rig1\"\ngpu = \"gpu0\"\n\n[[file]]\npath = \"/abs/b.txt\"\ngpu_index = 1\ngpu_name = \"RTX 4090\"\n",
    )
    .unwrap();
    let specs = read_inputs_file(&p).unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].path, dir.path().join("logs/a.txt"));
    assert_eq!(specs[0].host.as_deref(), Some("rig1"));
    assert_eq!(specs[1].path, std::path::PathBuf::from("/abs/b.txt"));
    assert_eq!(specs[1].gpu_index, Some(1));
    assert_eq!(specs[1].host, None);

    std::fs::write(&p, "[[file]]\npath = \"a.txt\"\nhots = \"typo\"\n").unwrap();
    let err = read_inputs_file(&p).unwrap_err().to_string();
    assert!(err.contains("inputs.toml") && err.contains("hots"), "{err}");
    std::fs::write(&p, "").unwrap();
    let err = read_inputs_file(&p).unwrap_err().to_string();
    assert!(err.contains("no [[file]] entries"), "{err}");
}

#[test]
fn delivery_failures_are_counted_not_dropped() {
    // Nothing listens on port 1: every message times out after 1 s and must be counted.
    let opts = SinkOptions {
        compression: "zstd".into(),
        message_timeout: Duration::from_secs(1),
    };
    let registry = prometheus::Registry::new();
    let metrics = CommonMetrics::new(&registry, "producer").unwrap();
    let health = Health::default();
    let observer = SinkObserver::new(metrics.clone(), health.clone(), "gpuz");
    let kafka = KafkaSettings::plaintext("127.0.0.1:1");
    let mut sink = KafkaSink::connect(&kafka, "nowhere", &opts, Some(observer)).unwrap();
    let mut plain = VecSink::default();
    replay(&[input(ADA, "a")], &self::opts(0.0), &mut plain, &no_stop()).unwrap();
    for s in plain.0.iter().take(25) {
        sink.send(s).unwrap();
    }
    let totals = sink.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(totals.delivered, 0);
    assert_eq!(totals.failed, 25);
    assert!(sink.first_error().is_some());
    // The same failures in the shared metrics and readiness.
    assert_eq!(metrics.records_in_total(), 25);
    assert_eq!(metrics.records_out.get(), 0);
    assert_eq!(metrics.write_errors.get(), 25);
    let problem = health.problem().expect("not ready while deliveries fail");
    assert!(problem.starts_with("kafka: "), "{problem}");
    assert!(
        health.is_live(),
        "a broker outage is not a reason to restart"
    );

    let bad = SinkOptions {
        compression: "brotli".into(),
        ..SinkOptions::default()
    };
    let err = KafkaSink::with_options("127.0.0.1:1", "t", &bad)
        .err()
        .expect("unknown codec rejected")
        .to_string();
    assert!(err.contains("brotli") && err.contains("zstd"), "{err}");
}

#[test]
fn simulate_write_gpuz_still_writes_a_log_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, seed: &str| {
        let path = dir.path().join(name);
        let out = support::producer_bin()
            .args(["simulate", "--write-gpuz"])
            .arg(&path)
            .args(["--seed", seed, "--sessions", "3", "--samples", "120"])
            .args(["--start", "2025-03-14 09:00:00"])
            .output()
            .expect("run producer");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(path).unwrap()
    };
    let a = write("a.txt", "4");
    assert_eq!(a, write("b.txt", "4"), "same seed, same bytes");
    assert_ne!(a, write("c.txt", "5"));
    let log = parse_log(
        "a.txt",
        &a,
        &input(ADA, "sim").identity,
        &ParseOptions::default(),
    );
    assert_eq!(log.summary.headers, 3);
    assert_eq!(log.samples.len(), 360);
    assert_eq!(log.summary.skipped_total(), 0);
    assert_eq!(
        log.samples[0].event_time,
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap()
    );
}
