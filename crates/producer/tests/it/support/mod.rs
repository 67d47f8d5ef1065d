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
