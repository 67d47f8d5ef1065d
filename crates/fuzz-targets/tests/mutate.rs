//! Every fuzz target briefly fuzzed in the normal test build: each saved input mutated
//! (see `gpustream_fuzz_targets::mutate`) for `GPUSTREAM_FUZZ_SECONDS` seconds per target
//! (default 8: about a minute in all, two targets at a time under CI's two test threads).
//!
//! A new seed every run, printed with any finding; `GPUSTREAM_FUZZ_SEED` replays one.
//! An input that panics or runs longer than 30 s is saved under the test build's
//! temporary directory with the command that replays it. The long coverage-guided runs
//! are `fuzz/` (FUZZING.md).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gpustream_fuzz_targets::mutate::Mutator;
use gpustream_fuzz_targets::{TARGETS, saved};

/// Inputs as long as the long runs use.
const MAX_LEN: usize = 4096;
/// One input running this long is a hang.
const HANG: Duration = Duration::from_secs(30);

fn setting<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a valid value")),
    )
}

fn finding_path(target: &str, seed: u64, n: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir.join(format!("{target}-seed{seed}-input{n}"))
}

fn save(path: &Path, input: &[u8]) {
    std::fs::write(path, input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn replay_hint(target: &str, path: &Path) -> String {
    format!(
        "saved to {}; replay it with `cp {} fuzz/regressions/{target}/ && cargo test -p gpustream-fuzz-targets --test corpus`",
        path.display(),
        path.display()
    )
}

/// The input running now and since when, for the hang watchdog.
struct Current {
    n: u64,
    since: Instant,
    input: Vec<u8>,
}

fn fuzz_for_a_while(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no target `{name}`"));
    let seconds: f64 = setting("GPUSTREAM_FUZZ_SECONDS").unwrap_or(8.0);
    let seed: u64 = setting("GPUSTREAM_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let corpus: Vec<Vec<u8>> = saved::inputs(name)
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    assert!(!corpus.is_empty(), "no saved inputs for `{name}`");
    let mut mutator = Mutator::new(seed, corpus, MAX_LEN);

    let current = Arc::new(Mutex::new(Current {
        n: 0,
        since: Instant::now(),
        input: Vec::new(),
    }));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, done, name) = (current.clone(), done.clone(), name.to_string());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let Ok(c) = current.lock() else { return };
                if c.since.elapsed() > HANG {
                    let path = finding_path(&name, seed, c.n);
                    save(&path, &c.input);
                    eprintln!(
                        "`{name}`: input {} of seed {seed} ran over {HANG:?}; {}",
                        c.n,
                        replay_hint(&name, &path)
                    );
                    std::process::abort();
                }
            }
        })
    };

    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        n += 1;
        let input = mutator.next_input();
        if let Ok(mut c) = current.lock() {
            *c = Current {
                n,
                since: Instant::now(),
                input: input.clone(),
            };
        }
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let path = finding_path(name, seed, n);
            save(&path, &input);
            done.store(true, Ordering::Relaxed);
            panic!(
                "`{name}`: input {n} of seed {seed} broke the target (the panic is printed above); {}",
                replay_hint(name, &path)
            );
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    println!(
        "{name}: {n} mutated inputs in {:.1} s, seed {seed}",
        start.elapsed().as_secs_f64()
    );
    assert!(n > 0, "no input ran in {seconds} s");
}

#[test]
fn gpuz_parse() {
    fuzz_for_a_while("gpuz_parse");
}

#[test]
fn wire_decode() {
    fuzz_for_a_while("wire_decode");
}

#[test]
fn rules_toml() {
    fuzz_for_a_while("rules_toml");
}

#[test]
fn config_toml() {
    fuzz_for_a_while("config_toml");
}

#[test]
fn line_protocol_roundtrip() {
    fuzz_for_a_while("line_protocol_roundtrip");
}

#[test]
fn follow_state() {
    fuzz_for_a_while("follow_state");
}

/// The test above would not notice a broken mutator that hands the targets their saved
/// inputs unchanged: most inputs it makes must be new.
#[test]
fn the_mutator_makes_new_inputs_from_the_saved_ones() {
    let corpus: Vec<Vec<u8>> = saved::inputs("config_toml")
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let known: std::collections::HashSet<&Vec<u8>> = corpus.iter().collect();
    let mut m = Mutator::new(1, corpus.clone(), MAX_LEN);
    let new = (0..1000)
        .filter(|_| !known.contains(&m.next_input()))
        .count();
    assert!(new > 950, "{new} of 1000 inputs were new");
}
