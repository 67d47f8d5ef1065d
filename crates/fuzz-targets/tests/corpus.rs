//! Every saved fuzzing input replayed through its target, as a plain test (no fuzzing
//! build): the corpora the fuzzers grew (`fuzz/corpus/<target>/`), the committed seeds
//! (`fuzz/seeds/<target>/`) and the inputs that once broke a target
//! (`fuzz/regressions/<target>/`, each fixed since). See FUZZING.md.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use gpustream_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
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

#[test]
fn every_saved_input_passes_its_target() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "no corpus for `{name}` in {}",
            fuzz_dir().display()
        );
        let seeds = files(&fuzz_dir().join("seeds").join(name));
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for path in corpus.iter().chain(&seeds).chain(&regressions) {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if catch_unwind(AssertUnwindSafe(|| target(&bytes))).is_err() {
                failures.push(path.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "inputs that fail their target (the panics are printed above):\n  {}",
        failures.join("\n  ")
    );
}
