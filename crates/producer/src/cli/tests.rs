//! The command line and configuration model, without Kafka: defaults, precedence (flag >
//! subsection > `[producer]` > default), errors that name the file's line, durations,
//! mode checks and the printed configuration. These tests set no environment variable
//! (the binary's `config --print` with secrets in the environment is tested in
//! `tests/config.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use super::nvml::NvmlSettings;
use super::replay::ReplaySettings;
use super::simulate::SimulateSettings;
use super::*;
use crate::nvml::GpuId;

fn cli(args: &[&str]) -> Cli {
    let mut all = vec!["producer"];
    all.extend_from_slice(args);
    match Cli::try_parse_from(all) {
        Ok(cli) => cli,
        Err(e) => panic!("{e}"),
    }
}

fn replay(args: &[&str]) -> Result<Effective<ReplaySettings>> {
    let c = cli(args);
    match &c.command {
        Command::Replay(a) => c.effective(a),
        other => panic!("not replay: {other:?}"),
    }
}

fn simulate(args: &[&str]) -> Result<Effective<SimulateSettings>> {
    let c = cli(args);
    match &c.command {
        Command::Simulate(a) => c.effective(a),
        other => panic!("not simulate: {other:?}"),
    }
}

fn nvml(args: &[&str]) -> Result<Effective<NvmlSettings>> {
    let c = cli(args);
    match &c.command {
        Command::Nvml(a) => c.effective(a),
        other => panic!("not nvml: {other:?}"),
    }
}

fn settings<S>(e: Result<Effective<S>>) -> S {
    match e {
        Ok(e) => e.settings,
        Err(e) => panic!("{e}"),
    }
}

fn error<S>(e: Result<Effective<S>>) -> String {
    match e {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

struct Config {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Config {
    fn new(text: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gpustream.toml");
        std::fs::write(&path, text).expect("write config");
        Config { _dir: dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }
}

const METRICS_DEFAULT: SocketAddr = DEFAULT_METRICS_ADDR;

#[test]
fn defaults_without_a_file() {
    let r = settings(replay(&["replay", "a.txt"]));
    assert_eq!(r.files, [Path::new("a.txt")]);
    assert_eq!(r.topic, "gpu-samples");
    assert_eq!(r.speed, 1.0);
    assert_eq!(r.compression, "lz4");
    assert_eq!(r.partitions, 4);
    assert!(!r.create_topic && !r.follow && !r.loop_);
    assert_eq!(r.host, [this_host()]);
    assert_eq!(r.max_session_gap, Duration::from_secs(5));
    assert_eq!(r.poll_interval, Duration::from_millis(250));
    assert_eq!(r.message_timeout, Duration::from_secs(60));
    let n = settings(nvml(&["nvml"]));
    assert_eq!(
        (n.events_topic.as_str(), n.gpu_id, n.lost_after),
        ("gpu-anomalies", GpuId::Uuid, 3)
    );
    assert_eq!(n.host, this_host());
    let s = settings(simulate(&["simulate"]));
    assert_eq!((s.hosts, s.gpus, s.seed, s.sessions), (2, 4, 1, 2));
    let e = replay(&["replay", "a.txt"]).expect("effective");
    assert_eq!(e.kafka.brokers, DEFAULT_BROKERS);
    let e = replay(&[
        "--brokers",
        "k:9093",
        "-X",
        "security.protocol=SSL",
        "replay",
        "a",
    ])
    .expect("effective");
    assert_eq!(e.kafka.brokers, "k:9093");
    assert_eq!(e.kafka.properties["security.protocol"], "SSL");
}

#[test]
fn the_ops_endpoint_is_on_by_default_only_for_runs_without_an_end() {
    let ops = |r: Option<SocketAddr>| r.map(|a| a.port());
    let port = Some(METRICS_DEFAULT.port());
    assert_eq!(port, Some(9733));
    assert_eq!(ops(settings(replay(&["replay", "a"])).ops_addr()), None);
    assert_eq!(
        ops(settings(replay(&["replay", "--follow", "a"])).ops_addr()),
        port
    );
    assert_eq!(
        ops(settings(replay(&["replay", "--loop", "a"])).ops_addr()),
        port
    );
    assert_eq!(
        ops(settings(replay(&["replay", "--loop", "--passes", "2", "a"])).ops_addr()),
        None
    );
    assert_eq!(ops(settings(nvml(&["nvml"])).ops_addr()), port);
    assert_eq!(
        ops(settings(nvml(&["nvml", "--samples", "5"])).ops_addr()),
        None
    );
    assert_eq!(ops(settings(simulate(&["simulate"])).ops_addr()), port);
    assert_eq!(
        ops(settings(simulate(&["simulate", "--duration", "1h"])).ops_addr()),
        None
    );
    let explicit = settings(replay(&["replay", "--metrics-addr", "127.0.0.1:0", "a"]));
    assert_eq!(
        ops(explicit.ops_addr()),
        Some(0),
        "explicit address, short run"
    );
}

#[test]
fn flag_over_subsection_over_producer_section_over_default() {
    let c = Config::new(
        "[kafka]\nbrokers = \"k:9093\"\n\n\
         [producer]\ntopic = \"shared\"\ncompression = \"zstd\"\npartitions = 2\nhost = \"rig\"\n\n\
         [producer.replay]\ntopic = \"replayed\"\nspeed = 4\nfiles = [\"x.txt\", \"y.txt\"]\n\n\
         [producer.nvml]\ninterval = \"500ms\"\n",
    );
    let p = c.path();
    let e = replay(&["--config", p, "replay", "--partitions", "8"]).expect("effective");
    assert_eq!(e.kafka.brokers, "k:9093");
    let r = e.settings;
    assert_eq!(r.topic, "replayed", "subsection over [producer]");
    assert_eq!(r.compression, "zstd", "[producer] over default");
    assert_eq!(r.partitions, 8, "flag over [producer]");
    assert_eq!(r.speed, 4.0);
    assert_eq!(r.host, ["rig"]);
    assert_eq!(r.files, [Path::new("x.txt"), Path::new("y.txt")]);
    let r = settings(replay(&["--config", p, "replay", "z.txt", "--topic", "t"]));
    assert_eq!(
        r.files,
        [Path::new("z.txt")],
        "FILE arguments replace `files`"
    );
    assert_eq!(r.topic, "t");

    let n = settings(nvml(&["--config", p, "nvml"]));
    assert_eq!(n.topic, "shared", "no subsection key: [producer]'s");
    assert_eq!(n.host, "rig");
    assert_eq!(n.interval, Duration::from_millis(500));
    assert_eq!(n.partitions, 2);
    // simulate names its own hosts: [producer] host is not its key, and not an error.
    let s = settings(simulate(&["--config", p, "simulate"]));
    assert_eq!(
        (s.topic.as_str(), s.compression.as_str()),
        ("shared", "zstd")
    );
}

#[test]
fn boolean_flags_override_the_file_both_ways() {
    let c = Config::new("[producer]\ncreate_topic = true\n[producer.replay]\nfollow = true\n");
    let p = c.path();
    let r = settings(replay(&["--config", p, "replay", "a"]));
    assert!(r.create_topic && r.follow);
    let r = settings(replay(&[
        "--config",
        p,
        "replay",
        "--create-topic=false",
        "--follow=false",
        "a",
    ]));
    assert!(!r.create_topic && !r.follow);
    // A flag without a value is true, and does not swallow the FILE after it.
    let r = settings(replay(&["replay", "--follow", "a.txt"]));
    assert!(r.follow);
    assert_eq!(r.files, [Path::new("a.txt")]);
}

#[test]
fn typos_name_the_file_line_and_a_close_key() {
    let c =
        Config::new("[producer]\ntopic = \"t\"\n\n[producer.replay]\nfiles = [\"a\"]\nsped = 2\n");
    let err = error(replay(&["--config", c.path(), "replay"]));
    assert_eq!(
        err,
        format!(
            "{}:6: [producer.replay] unknown key `sped` (did you mean `speed`?)",
            c.path()
        )
    );
    let c = Config::new("[producer]\ntopc = \"t\"\n");
    let err = error(nvml(&["--config", c.path(), "nvml"]));
    assert_eq!(
        err,
        format!(
            "{}:2: [producer] unknown key `topc` (did you mean `topic`?)",
            c.path()
        )
    );
    let c = Config::new("[producer.simulate]\nhosts = 3\nhost = \"h\"\n");
    let err = error(simulate(&["--config", c.path(), "simulate"]));
    assert!(
        err.starts_with(&format!(
            "{}:3: [producer.simulate] unknown key `host`",
            c.path()
        )),
        "{err}"
    );
    let c = Config::new("[producer.replya]\nspeed = 2\n");
    let err = error(replay(&["--config", c.path(), "replay", "a"]));
    assert!(
        err.starts_with(&format!("{}:1: [producer] unknown key `replya`", c.path()))
            && err.contains("did you mean `replay`"),
        "{err}"
    );
}

#[test]
fn wrong_types_name_the_file_line_and_key() {
    let c = Config::new("[producer.nvml]\n\nlost_after = \"many\"\n");
    let err = error(nvml(&["--config", c.path(), "nvml"]));
    assert!(
        err.starts_with(&format!("{}:3: [producer.nvml] `lost_after`", c.path())),
        "{err}"
    );
    let c = Config::new("[producer]\npartitions = \"four\"\n");
    let err = error(replay(&["--config", c.path(), "replay", "a"]));
    assert!(
        err.starts_with(&format!("{}:2: [producer] `partitions`", c.path())),
        "{err}"
    );
    let c = Config::new("[producer.replay]\npoll_interval = \"soon\"\n");
    let err = error(replay(&["--config", c.path(), "replay", "a"]));
    assert!(
        err.starts_with(&format!(
            "{}:2: [producer.replay] `poll_interval`",
            c.path()
        )) && err.contains("not a duration"),
        "{err}"
    );
    let c = Config::new("[producer.nvml]\ngpu_id = \"serial\"\n");
    let err = error(nvml(&["--config", c.path(), "nvml"]));
    assert!(err.contains(":2: [producer.nvml] `gpu_id`"), "{err}");
}

#[test]
fn durations_are_humantime_in_flags_and_files() {
    let c = Config::new(
        "[producer]\nmessage_timeout = 90\n[producer.replay]\nmax_session_gap = \"1m\"\n",
    );
    let r = settings(replay(&[
        "--config",
        c.path(),
        "replay",
        "--poll-interval",
        "100ms",
        "a",
    ]));
    assert_eq!(
        r.message_timeout,
        Duration::from_secs(90),
        "bare number: seconds"
    );
    assert_eq!(r.max_session_gap, Duration::from_secs(60));
    assert_eq!(r.poll_interval, Duration::from_millis(100));
    let s = settings(simulate(&[
        "simulate",
        "--interval",
        "2s",
        "--duration",
        "1h 30m",
    ]));
    assert_eq!(s.duration, Some(Duration::from_secs(5400)));
    let (_, ticks) = s.fleet().expect("valid fleet");
    assert_eq!(ticks, Some(2700));
    assert!(Cli::try_parse_from(["producer", "nvml", "--interval", "soon"]).is_err());
}

#[test]
fn identities_one_per_file_or_one_for_all() {
    let c =
        Config::new("[producer.replay]\nhost = [\"a\", \"b\"]\ngpu = \"g\"\ngpu_index = [0, 1]\n");
    let r = settings(replay(&["--config", c.path(), "replay", "x.txt", "y.txt"]));
    let plan = r.plan().expect("valid");
    let ids: Vec<(&str, &str, u32)> = plan
        .inputs
        .iter()
        .map(|i| {
            (
                i.identity.host.as_str(),
                i.identity.gpu.as_str(),
                i.identity.gpu_index,
            )
        })
        .collect();
    assert_eq!(ids, [("a", "g", 0), ("b", "g", 1)]);
    let r = settings(replay(&["--config", c.path(), "replay", "x.txt"]));
    let err = r.plan().expect_err("two hosts, one file").to_string();
    assert!(err.contains("--host given 2 times for 1 files"), "{err}");
    let r = settings(replay(&["replay", "--gpu", "a,b", "x.txt", "y.txt"]));
    let plan = r.plan().expect("valid");
    assert_eq!(plan.inputs[1].identity.gpu, "b");
    assert_eq!(plan.inputs[1].identity.host, this_host());
}

#[test]
fn mode_checks_apply_to_the_merged_settings() {
    let err = settings(replay(&["replay"]))
        .plan()
        .expect_err("no files")
        .to_string();
    assert!(err.contains("no GPU-Z logs"), "{err}");
    let err = settings(replay(&["replay", "--follow", "--loop", "a"]))
        .plan()
        .expect_err("follow and loop")
        .to_string();
    assert!(err.contains("--follow") && err.contains("--loop"), "{err}");
    let err = settings(replay(&["replay", "--state-file", "s.json", "a"]))
        .plan()
        .expect_err("state file without follow")
        .to_string();
    assert!(err.contains("needs --follow"), "{err}");
    // follow from the file, the state file from a flag: one setting, checked once merged.
    let c = Config::new("[producer.replay]\nfollow = true\n");
    let r = settings(replay(&[
        "--config",
        c.path(),
        "replay",
        "--state-file",
        "s.json",
        "a",
    ]));
    let plan = r.plan().expect("valid");
    let follow = plan.follow.expect("following");
    assert_eq!(follow.state_file.as_deref(), Some(Path::new("s.json")));
    for (args, needle) in [
        (&["replay", "--speed", "1e9", "a"][..], "--speed"),
        (&["replay", "--passes", "0", "a"][..], "--passes"),
        (
            &["replay", "--timezone", "Mars/Olympus", "a"][..],
            "Mars/Olympus",
        ),
        (&["replay", "--compression", "brotli", "a"][..], "brotli"),
    ] {
        let err = settings(replay(args)).plan().expect_err(needle).to_string();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let err = settings(simulate(&[
        "simulate",
        "--samples",
        "3",
        "--duration",
        "1m",
    ]))
    .fleet()
    .expect_err("both")
    .to_string();
    assert!(err.contains("--samples and --duration"), "{err}");
    let err = settings(nvml(&["nvml", "--interval", "10ms"]))
        .sampler()
        .expect_err("too fast")
        .to_string();
    assert!(err.contains("100ms"), "{err}");
}

#[test]
fn printed_configuration_reads_back_to_the_same_settings() {
    let c = Config::new(
        "[kafka]\nbrokers = \"k:9093\"\nsasl.username = \"u\"\n\n\
         [producer]\ntopic = \"shared\"\nhost = \"rig\"\n\n\
         [producer.replay]\nfiles = [\"x.txt\"]\nfollow = true\nstate_file = \"s.json\"\n\n\
         [producer.nvml]\ngpu_id = \"bus-id\"\n",
    );
    let printed = cli(&["--config", c.path(), "config", "--print"])
        .print_config()
        .expect("print");
    for needle in [
        "[kafka]",
        "brokers = \"k:9093\"",
        "\"sasl.username\" = \"u\"",
        "[producer.replay]",
        "files = [\"x.txt\"]",
        "follow = true",
        "poll_interval = \"250ms\"",
        "[producer.simulate]",
        "[producer.nvml]",
        "gpu_id = \"bus-id\"",
        "host = \"rig\"",
    ] {
        assert!(printed.contains(needle), "no `{needle}` in:\n{printed}");
    }
    let again = Config::new(&printed);
    let p = again.path();
    assert_eq!(
        settings(replay(&["--config", p, "replay"])),
        settings(replay(&["--config", c.path(), "replay"]))
    );
    assert_eq!(
        settings(nvml(&["--config", p, "nvml"])),
        settings(nvml(&["--config", c.path(), "nvml"]))
    );
    let reprinted = cli(&["--config", p, "config", "--print"])
        .print_config()
        .expect("print");
    assert_eq!(reprinted, printed);
}

#[test]
fn secrets_in_the_file_are_refused_without_echoing_them() {
    let c = Config::new("[kafka]\nbrokers = \"k:1\"\nsasl.password = \"hunter2\"\n");
    let err = match cli(&["--config", c.path(), "config", "--print"]).print_config() {
        Ok(text) => panic!("a secret in the file was accepted:\n{text}"),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with(&format!("{}:3:", c.path())), "{err}");
    assert!(
        err.contains("GPUSTREAM_KAFKA_SASL_PASSWORD") && !err.contains("hunter2"),
        "{err}"
    );
}
