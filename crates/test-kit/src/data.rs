//! Where things are: the workspace root and the real GPU-Z logs of `../shared/data/gpuz/`
//! (beside the checkout, never copied into it).

use std::path::PathBuf;

/// The workspace root (the directory of the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // This crate lives in `<root>/crates/test-kit`.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The directory of the shared real GPU-Z logs, `<root>/../shared/data/gpuz`.
pub fn shared_gpuz_dir() -> PathBuf {
    workspace_root().join("../shared/data/gpuz")
}

/// One real GPU-Z log from the shared data set.
pub fn shared_log(name: &str) -> PathBuf {
    shared_gpuz_dir().join(name)
}

/// Every real GPU-Z log of the shared data set (`*.txt`), sorted by name.
pub fn shared_logs() -> Vec<PathBuf> {
    let dir = shared_gpuz_dir();
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (CI has ../shared beside the checkout)",
                dir.display()
            )
        })
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    out.sort();
    out
}
