//! The producer binary's configuration, without a broker: `config --print` with secrets
//! and settings from the environment, and a bad configuration file ending the run with one
//! line that names its line.

// Test helpers unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::producer_bin;

fn config(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpustream.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn config_print_redacts_secrets_and_shows_the_environment() {
    let (_dir, path) = config(
        "[kafka]\nbrokers = \"k:9096\"\nsecurity.protocol = \"SASL_SSL\"\nsasl.username = \"gpustream\"\n\n[producer]\ntopic = \"from-file\"\n",
    );
    let out = producer_bin()
        .arg("--config")
        .arg(&path)
        .args(["config", "--print"])
        .env("GPUSTREAM_KAFKA_SASL_PASSWORD", "hunter2")
        .env("GPUSTREAM_SPEED", "3")
        .env("GPUSTREAM_INTERVAL", "250ms")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("hunter2"), "secret printed:\n{stdout}");
    assert!(
        stdout.contains("# \"sasl.password\" = <redacted> (from GPUSTREAM_KAFKA_SASL_PASSWORD)"),
        "{stdout}"
    );
    assert!(stdout.contains("brokers = \"k:9096\""), "{stdout}");
    // The environment of a mode's flag shows in that mode's section only.
    let section = |name: &str| -> String {
        let start = stdout
            .find(&format!("[producer.{name}]"))
            .unwrap_or_else(|| panic!("no [producer.{name}] in\n{stdout}"));
        let rest = &stdout[start + 1..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
    };
    assert!(section("replay").contains("speed = 3.0"), "{stdout}");
    assert!(section("simulate").contains("speed = 3.0"), "{stdout}");
    assert!(
        section("simulate").contains("interval = \"250ms\""),
        "{stdout}"
    );
    assert!(section("nvml").contains("interval = \"250ms\""), "{stdout}");
    assert!(
        section("nvml").contains("topic = \"from-file\""),
        "{stdout}"
    );
}

#[test]
fn a_bad_configuration_file_is_one_line_naming_its_line() {
    let (_dir, path) = config("[producer]\ntopic = \"t\"\n\n[producer.nvml]\nintervall = \"1s\"\n");
    let out = producer_bin()
        .arg("--config")
        .arg(&path)
        .args(["nvml", "--samples", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        [format!(
            "producer: error: {}:5: [producer.nvml] unknown key `intervall` (did you mean `interval`?)",
            path.display()
        )],
        "{stderr}"
    );
    // The same file named by GPUSTREAM_CONFIG.
    let out = producer_bin()
        .env("GPUSTREAM_CONFIG", &path)
        .args(["config", "--print"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(":5: [producer.nvml] unknown key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
