//! The workspace's binaries as tests run them: the executables `cargo test --workspace`
//! built beside the test executable (building them from a test with `cargo build -p`
//! would pick another feature set and rebuild half the dependency tree).

use std::path::PathBuf;

/// Path of workspace binary `name` (`producer`, `stream-processor`, `consumer-influx`,
/// `batch-analytics`) in the profile directory of the running test; `None` when it was
/// not built (a test run filtered to one package).
pub fn find(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // <profile>/deps/<test executable>
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path.is_file().then_some(path)
}

/// Like [`find`], panicking with how to build it.
pub fn path(name: &str) -> PathBuf {
    find(name).unwrap_or_else(|| {
        panic!("binary `{name}` not built beside the tests: run `cargo test --workspace` (or `cw test`)")
    })
}

/// A command for binary `name` with the caller's `GPUSTREAM_*` settings removed (tests
/// pass every setting explicitly) and quiet logs.
pub fn command(name: &str) -> std::process::Command {
    let mut c = std::process::Command::new(path(name));
    for (k, _) in std::env::vars() {
        if k.starts_with("GPUSTREAM_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}
