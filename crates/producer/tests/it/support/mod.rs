//! What the producer's tests need beyond the workspace test kit: its own binary.
#![allow(dead_code)]

/// The producer binary built for these tests, with the caller's `GPUSTREAM_*` settings
/// removed (the tests pass every setting as a flag).
pub fn producer_bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_producer"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GPUSTREAM_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

/// Starts `command` with its standard output and error captured.
pub fn spawn_captured(command: &mut std::process::Command) -> std::process::Child {
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn producer")
}

/// Interrupts `child` (SIGINT, as Ctrl-C does) and waits for its output.
pub fn interrupt(child: std::process::Child) -> std::process::Output {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success(), "kill -INT {}", child.id());
    child.wait_with_output().expect("wait")
}

/// The standard output of a run that must have succeeded; panics showing both streams
/// when it did not.
#[track_caller]
pub fn success_stdout(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
