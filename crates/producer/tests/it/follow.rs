//! Follow mode with real file operations: partial lines, restart from the state file,
//! truncation, rotation (while running and while stopped), UTF-16 split mid-character.

// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gpustream::{Metric, Sample};
use gpuz::{Identity, ParseOptions};
use producer::follow::{FollowOptions, FollowState, follow};
use producer::replay::{LogInput, ReplayReport};
use producer::sink::{DeliveryTotals, SampleSink};

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<Sample>>>);

impl SampleSink for Shared {
    fn send(&mut self, s: &Sample) -> producer::Result<()> {
        self.0.lock().unwrap().push(s.clone());
        Ok(())
    }
    fn flush(&mut self, _: Duration) -> producer::Result<DeliveryTotals> {
        Ok(DeliveryTotals {
            delivered: self.0.lock().unwrap().len() as u64,
            failed: 0,
        })
    }
}

impl Shared {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn all(&self) -> Vec<Sample> {
        self.0.lock().unwrap().clone()
    }
    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.len() < n {
            assert!(
                Instant::now() < deadline,
                "waited for {n} samples, have {}",
                self.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<producer::Result<ReplayReport>>,
}

impl Running {
    fn stop(self) -> ReplayReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("follow thread").expect("follow")
    }
}

fn start(path: &Path, state: &Path, sink: &Shared) -> Running {
    let input = LogInput {
        path: path.to_path_buf(),
        identity: Identity {
            host: "rig".into(),
            gpu: "gpu0".into(),
            gpu_index: 0,
            gpu_name: None,
        },
    };
    let opts = FollowOptions {
        poll: Duration::from_millis(20),
        state_file: Some(state.to_path_buf()),
        checkpoint_every: Duration::from_millis(100),
        max_issues_logged: 5,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (s, mut k) = (stop.clone(), sink.clone());
    let handle =
        std::thread::spawn(move || follow(&[input], &ParseOptions::default(), &opts, &mut k, &s));
    Running { stop, handle }
}

const HEADER: &str = "        Date        , GPU Clock [MHz] , GPU Load [%] ,\r\n";

fn row(sec: u32, load: u32) -> String {
    format!(
        "2025-01-01 00:{:02}:{:02} , 1500.0 , {load} ,\r\n",
        sec / 60,
        sec % 60
    )
}

fn append(path: &Path, text: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text).unwrap();
    f.sync_all().unwrap();
}

fn loads(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .map(|s| s.metrics.get(Metric::GpuLoad).unwrap())
        .collect()
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gpuz.txt");
    let state = dir.path().join("state.json");
    (dir, log, state)
}

#[test]
fn partial_line_waits_and_a_restart_neither_resends_nor_skips() {
    let (_dir, log, state) = setup();
    append(
        &log,
        format!("{HEADER}{}{}{}", row(0, 10), row(1, 11), row(2, 12)).as_bytes(),
    );
    append(&log, b"2025-01-01 00:00:03 , 1500.0 , 4");
    let sink = Shared::default();
    let run = start(&log, &state, &sink);
    sink.wait_for(3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.len(), 3, "a partial line is not a row yet");
    append(&log, format!("5 ,\r\n{}", row(4, 14)).as_bytes());
    sink.wait_for(5);
    let report = run.stop();
    assert_eq!(report.sent, 5);
    assert_eq!(loads(&sink.all()), vec![10.0, 11.0, 12.0, 45.0, 14.0]);
    let saved = FollowState::load(&state).unwrap();
    let st = saved.files.values().next().expect("state saved");
    assert_eq!(st.pos, std::fs::metadata(&log).unwrap().len());
    assert_eq!(st.parser.seq, 5);

    // Rows written while the producer was down, one of them still partial.
    append(&log, format!("{}{}", row(5, 15), row(6, 16)).as_bytes());
    append(&log, b"2025-01-01 00:00:07 , 15");
    let run = start(&log, &state, &sink);
    sink.wait_for(7);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(sink.len(), 7);
    append(&log, b"00.0 , 17 ,\r\n");
    sink.wait_for(8);
    run.stop();
    let all = sink.all();
    assert_eq!(loads(&all), vec![10., 11., 12., 45., 14., 15., 16., 17.]);
    let seqs: Vec<u64> = all.iter().map(|s| s.seq).collect();
    assert_eq!(
        seqs,
        (0..8).collect::<Vec<_>>(),
        "no row sent twice or skipped"
    );
    assert!(
        all.iter().all(|s| s.session == all[0].session),
        "same session after restart"
    );
    let ids: HashSet<&str> = all.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(ids.len(), 8);
}

#[test]
fn truncation_and_rotation_are_followed() {
    let (dir, log, state) = setup();
    append(
        &log,
        format!("{HEADER}{}{}", row(0, 20), row(1, 21)).as_bytes(),
    );
    let sink = Shared::default();
    let run = start(&log, &state, &sink);
    sink.wait_for(2);

    // Truncated in place (GPU-Z restarted logging into the same file): the same file.
    let before = same_file::Handle::from_path(&log).unwrap();
    std::fs::write(&log, format!("{HEADER}{}", row(100, 30)).as_bytes()).unwrap();
    assert!(before == same_file::Handle::from_path(&log).unwrap());
    sink.wait_for(3);

    // Rotated: renamed, the writer still appends one row to the old file, then a new file.
    let rotated = dir.path().join("gpuz.txt.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, row(101, 31).as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    append(
        &log,
        format!("{HEADER}{}{}", row(200, 40), row(201, 41)).as_bytes(),
    );
    sink.wait_for(6);
    std::thread::sleep(Duration::from_millis(200));
    let report = run.stop();
    let all = sink.all();
    assert_eq!(loads(&all), vec![20., 21., 30., 31., 40., 41.]);
    assert_eq!(report.sent, 6);
    let ids: HashSet<&str> = all.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        6,
        "ids stay unique across truncation and rotation"
    );
    let sessions: HashSet<&str> = all.iter().map(|s| s.session.as_str()).collect();
    assert_eq!(sessions.len(), 3, "each header starts a session");
}

#[test]
fn a_file_replaced_while_stopped_is_read_from_the_top() {
    let (_dir, log, state) = setup();
    append(
        &log,
        format!("{HEADER}{}{}", row(0, 50), row(1, 51)).as_bytes(),
    );
    let sink = Shared::default();
    let run = start(&log, &state, &sink);
    sink.wait_for(2);
    run.stop();
    // A new file at the same path (another inode), longer than the saved position.
    let tmp = log.with_extension("new");
    let mut text = String::from(HEADER);
    for i in 0..5 {
        text.push_str(&row(300 + i, 60 + i));
    }
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &log).unwrap();
    let run = start(&log, &state, &sink);
    sink.wait_for(7);
    std::thread::sleep(Duration::from_millis(200));
    run.stop();
    let all = sink.all();
    assert_eq!(loads(&all), vec![50., 51., 60., 61., 62., 63., 64.]);
    let ids: HashSet<&str> = all.iter().map(|s| s.event_id.as_str()).collect();
    assert_eq!(ids.len(), 7);
}

#[test]
fn utf16_split_inside_a_character_waits_for_the_rest() {
    let (_dir, log, state) = setup();
    let text = format!("{HEADER}{}{}", row(0, 70), row(1, 71));
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    // Cut in the middle of a code unit of the second row.
    let cut = bytes.len() - 7;
    append(&log, &bytes[..cut]);
    let sink = Shared::default();
    let run = start(&log, &state, &sink);
    sink.wait_for(1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(sink.len(), 1);
    append(&log, &bytes[cut..]);
    sink.wait_for(2);
    run.stop();
    assert_eq!(loads(&sink.all()), vec![70., 71.]);
}
