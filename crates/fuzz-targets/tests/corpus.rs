//! Every saved fuzzing input replayed through its target, as a plain test (no fuzzing
//! build): the corpora the fuzzers grew, the committed seeds and the inputs that once
//! broke a target (each fixed since). See FUZZING.md.

use std::panic::{AssertUnwindSafe, catch_unwind};

use gpustream_fuzz_targets::{TARGETS, saved};

#[test]
fn every_saved_input_passes_its_target() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        assert!(
            !saved::files("corpus", name).is_empty(),
            "no corpus for `{name}` in {}",
            saved::fuzz_dir().display()
        );
        for path in saved::inputs(name) {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
