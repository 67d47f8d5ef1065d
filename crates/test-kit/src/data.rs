//! Where things are: the workspace root and the real GPU-Z logs of `../shared/data/gpuz/`
//! (beside the checkout, never copied into it).

use std::path::{Path, PathBuf};

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

/// A copy of the fixture directory `relative` to the workspace root (a lake written by
/// an earlier version, say) in a new temporary directory, without its README files, for
/// a test to change at will.
pub fn copy_of_fixture(relative: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&workspace_root().join(relative), dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else if e.file_name() != "README.md" {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}
