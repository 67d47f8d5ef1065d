//! The lake's disk fills up, and later turns read-only, while samples keep arriving:
//! the processor stops committing (to the lake and to Kafka), says so on
//! `/health/ready`, loses nothing, and carries on by itself once space is freed or the
//! file system is writable again — every sample lands exactly once.
//!
//! The lake lives on a small tmpfs mounted by the test (root is needed to mount; CI and
//! `scripts/test.sh` run as root, and the test fails, not skips, without it).

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gpustream_test_kit::kafka::{Sender, committed_total};
use gpustream_test_kit::lake::lake_ids;
use gpustream_test_kit::{services, unique};
use support::{Proc, send_samples, wait_lake};

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { path, _dir: dir }
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.path)
            .status()
            .expect("remount");
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system holding `dir` until a write fails; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

/// Watches the refusal for `span`: not ready with `why` in the body, no Kafka commit
/// past the rows the lake holds.
fn refused_for(proc: &Proc, span: Duration, why: &str, lake: &Path, ctx: (&str, &str, &str)) {
    let (brokers, group, topic) = ctx;
    let said = proc
        .unready_during(span)
        .unwrap_or_else(|| panic!("/health/ready stayed 200 while the lake was {why}"));
    assert!(
        said.to_ascii_lowercase().contains(why),
        "/health/ready names the cause ({why}): {said}"
    );
    let in_lake = lake_ids(lake).0.len() as i64;
    let offsets = committed_total(brokers, group, topic);
    assert!(
        offsets <= in_lake,
        "offsets committed past the lake while it was {why}: {offsets} > {in_lake}"
    );
}

#[test]
fn a_full_then_read_only_lake_stops_commits_and_recovers_without_loss() {
    let Some(svc) = services("full_disk") else {
        return;
    };
    let fs = Tmpfs::mount("24m");
    let lake = fs.path.join("lake");
    std::fs::create_dir(&lake).expect("lake dir");
    let topic = unique("full-disk");
    let group = unique("full-disk-g");
    gpustream_test_kit::kafka::create_topic(&svc.brokers, &topic, 2);
    gpustream_test_kit::kafka::create_topic(&svc.brokers, &format!("{topic}-dlq"), 1);
    let mut proc = Proc::start(
        &svc.brokers,
        &topic,
        &group,
        lake.to_str().expect("utf8"),
        &["--flush-interval", "1s"],
    );
    proc.wait_up(Duration::from_secs(30));
    let sender = Sender::new(&svc.brokers, &topic);
    let ctx = (svc.brokers.as_str(), group.as_str(), topic.as_str());

    send_samples(&sender, 0, 2_000);
    assert!(
        wait_lake(&lake, 2_000, Duration::from_secs(60)).is_some(),
        "first rows"
    );

    // The disk fills up.
    let filler = fill(&fs.path);
    send_samples(&sender, 2_000, 20_000);
    refused_for(&proc, Duration::from_secs(10), "space", &lake, ctx);
    std::fs::remove_file(&filler).expect("free the space");
    assert!(
        wait_lake(&lake, 22_000, Duration::from_secs(120)).is_some(),
        "the rows held back by the full disk land once space is freed"
    );

    // The file system turns read-only.
    fs.remount("ro");
    send_samples(&sender, 22_000, 5_000);
    refused_for(&proc, Duration::from_secs(8), "read-only", &lake, ctx);
    fs.remount("rw");
    assert!(
        wait_lake(&lake, 27_000, Duration::from_secs(120)).is_some(),
        "the rows held back by the read-only lake land once it is writable"
    );
    proc.wait_ready(Duration::from_secs(30));
    assert!(
        proc.terminate(Duration::from_secs(60)).success(),
        "graceful stop"
    );

    let (ids, strays) = lake_ids(&lake);
    assert!(strays.is_empty(), "{strays:?}");
    let dupes: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dupes.is_empty(), "duplicates: {dupes:?}");
    assert_eq!(ids.len(), 27_000, "every sample exactly once");
}
