//! The committed seeds of `wire_decode` and `follow_state` are what the project's own
//! writers produce: wire messages from the encoder (samples of the project's sample log
//! and hand-made ones with every optional part), state files as follow mode saves them.
//! A change of either format fails here; regenerate the seeds with
//! `GPUSTREAM_WRITE_FUZZ_SEEDS=1 cw test --test seeds` and commit them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gpustream::wire::encode_sample;
use gpustream::{Metric, Sample, Source};
use gpuz::decode::Encoding;
use gpuz::{Identity, ParseOptions, ParserState, parse_log};
use producer::follow::{FileState, FollowState};

fn seeds_of(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

fn time(secs: i64, nanos: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, nanos).expect("a valid time")
}

/// A few rows of the project's sample log (made by `producer simulate --write-gpuz`).
fn log_samples() -> Vec<Sample> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample-gpuz-log.txt");
    let bytes = std::fs::read(&path).expect("data/sample-gpuz-log.txt");
    let head = &bytes[..bytes.len().min(2000)];
    let identity = Identity {
        host: "ws1".into(),
        gpu: "gpu0".into(),
        gpu_index: 0,
        gpu_name: Some("NVIDIA GeForce RTX 3080".into()),
    };
    let log = parse_log(
        "sample-gpuz-log.txt",
        head,
        &identity,
        &ParseOptions::default(),
    );
    log.samples.into_iter().take(3).collect()
}

/// Samples with what the log does not have: NVML and simulator sources, no GPU name,
/// sensors marked unsupported, extra columns with awkward names, sub-second times.
fn made_samples() -> Vec<Sample> {
    let mut nvml = log_samples().remove(0);
    nvml.source = Source::Nvml;
    nvml.gpu_name = None;
    nvml.event_time = time(1_741_942_800, 123_456_789);
    nvml.metrics.set(Metric::MemoryTotal, 10240.0);
    nvml.metrics.set(Metric::PState, 2.0);
    nvml.unsupported = vec![Metric::FanRpm, Metric::HotSpotTemp];
    let mut sim = nvml.clone();
    sim.source = Source::Sim;
    sim.host = "rack 1, \"node\"=7 \\ ünï 東京".into();
    sim.event_time = time(0, 500_000_000);
    sim.extra = BTreeMap::from([
        ("Memory Temperature [°C]".to_string(), 61.5),
        ("tab\tnew\nline".to_string(), -0.0),
        ("unnamed column 14".to_string(), 1e-7),
    ]);
    vec![nvml, sim]
}

fn follow_state() -> Vec<u8> {
    let parser = ParserState {
        header_cells: Some(vec![
            "Date".into(),
            "GPU Temperature [°C]".into(),
            "GPU Load [%]".into(),
        ]),
        session_ordinal: 2,
        session: Some("20240331T015959-2".into()),
        seq: 41,
        last_utc: Some(time(1_711_846_799, 0)),
    };
    let file = FileState {
        dev: 2049,
        ino: 1_234_567,
        pos: 4096,
        head_hash: 0x1234_5678_9abc_def0,
        head_len: 4096,
        encoding: Encoding::Latin1,
        line: 57,
        parser,
    };
    let utf16 = FileState {
        encoding: Encoding::Utf16Le,
        parser: ParserState {
            header_cells: None,
            session: None,
            ..file.parser.clone()
        },
        ..file.clone()
    };
    let state = FollowState {
        files: BTreeMap::from([
            ("GPU-Z Sensor Log.txt".to_string(), file),
            ("C:\\logs\\utf16.txt".to_string(), utf16),
        ]),
    };
    let mut out = serde_json::to_vec_pretty(&state).expect("serialises");
    // What the followed files hold after their saved positions (see the target).
    out.push(0);
    out.extend_from_slice(
        b"2024-03-31 02:00:00 , 55.0 , 99 ,\r\n2024-03-31 03:00:00 , x , 1 , 7 ,",
    );
    out
}

fn seeds() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, s) in log_samples().iter().chain(&made_samples()).enumerate() {
        let bytes = encode_sample(s).expect("encodes");
        out.push((
            seeds_of("wire_decode").join(format!("seed-{i}.json")),
            bytes,
        ));
    }
    out.push((seeds_of("follow_state").join("seed-0.json"), follow_state()));
    out
}

#[test]
fn committed_seeds_are_what_the_writers_write() {
    let write = std::env::var_os("GPUSTREAM_WRITE_FUZZ_SEEDS").is_some();
    for (path, bytes) in seeds() {
        if write {
            std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write");
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} is not what the writer writes now; regenerate: GPUSTREAM_WRITE_FUZZ_SEEDS=1 cw test --test seeds",
            path.display()
        );
    }
}
