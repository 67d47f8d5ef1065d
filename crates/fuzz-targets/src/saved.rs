//! Where the saved fuzzing inputs live: the corpora the fuzzers grew
//! (`fuzz/corpus/<target>/`), the committed seeds (`fuzz/seeds/<target>/`) and the
//! inputs that once broke a target (`fuzz/regressions/<target>/`, each fixed since).

use std::path::{Path, PathBuf};

/// The repository's `fuzz/` directory.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/` (`kind`: `corpus`, `seeds`, `regressions`),
/// sorted; none when the directory does not exist.
pub fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Every saved input of `target`: corpus, seeds, then regressions.
pub fn inputs(target: &str) -> Vec<PathBuf> {
    ["corpus", "seeds", "regressions"]
        .iter()
        .flat_map(|kind| files(kind, target))
        .collect()
}
