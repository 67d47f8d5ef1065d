#!/usr/bin/env bash
# Builds the fuzzing crate (fuzz/, cargo-fuzz + libFuzzer) and runs every target briefly
# on its saved corpus and regressions, plus seeds from the real GPU-Z logs
# (fuzz/seed.sh): a crash, a timeout or a leak of the saved invariants fails the run.
# About a minute of fuzzing in all (FUZZ_SECONDS per target, default 8), after the build.
#
# On stable Rust: cargo-fuzz needs nightly flags, which RUSTC_BOOTSTRAP=1 allows, and it
# runs without a sanitizer (`--sanitizer none`): the code under test is safe Rust
# (`unsafe_code = "deny"`), so what there is to find is panics, overflows (`-a`: debug
# assertions and overflow checks on), hangs and runaway memory, which libFuzzer catches
# by itself. The build is instrumented and shares nothing with the workspace's: a cold
# one takes long (FUZZING.md has the figure), which is why scripts/test.sh does not run
# this; `cw test --test corpus` replays the saved inputs in the normal build instead.
#
# Usage: scripts/fuzz-smoke.sh [TARGET...]       (default: every target)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
fi

CARGO_FUZZ_VERSION="0.13.2"
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "==> [fuzz-smoke] installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

export RUSTC_BOOTSTRAP=1
FUZZ_FLAGS=(--sanitizer none --debug-assertions)
SECONDS_EACH="${FUZZ_SECONDS:-8}"
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    TARGETS=(gpuz_parse wire_decode rules_toml config_toml line_protocol_roundtrip follow_state)
fi

echo "==> [fuzz-smoke] build: cargo fuzz build ${FUZZ_FLAGS[*]}"
start=$(date +%s)
(cd fuzz && cargo fuzz build "${FUZZ_FLAGS[@]}")
echo "==> [fuzz-smoke] built in $(($(date +%s) - start)) s"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
bash fuzz/seed.sh "$WORK/seeds" >/dev/null
for t in "${TARGETS[@]}"; do
    echo "==> [fuzz-smoke] $t: ${SECONDS_EACH} s"
    mkdir -p "$WORK/new/$t" "$WORK/artifacts/$t"
    # New inputs go to a scratch directory; the committed corpus is only read.
    (cd fuzz && cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$WORK/new/$t" "$WORK/seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -artifact_prefix="$WORK/artifacts/$t/" -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|.*panicked|SUMMARY|.*deadly signal|.*Test unit written)' ||
        true)
    if compgen -G "$WORK/artifacts/$t/*" >/dev/null; then
        echo "==> [fuzz-smoke] $t FAILED: an input broke the target (kept under fuzz/artifacts/$t/)"
        mkdir -p "fuzz/artifacts/$t"
        cp "$WORK/artifacts/$t"/* "fuzz/artifacts/$t/"
        exit 1
    fi
done
echo "==> [fuzz-smoke] PASSED: ${TARGETS[*]}"
