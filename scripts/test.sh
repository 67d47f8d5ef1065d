#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#
#   1. scripts/install-deps.sh          (apt packages, tansu, moto; skips what is done)
#   2. cargo fmt --all -- --check
#      scripts/lint-compose.sh          (docker-compose.yml against the Compose spec with
#                                        dclint; every image pinned and still served)
#      scripts/check-systemd.sh         (systemd-analyze verify of packaging/systemd/)
#   3. cargo test --workspace --all-targets --features stream-processor/hdfs --no-run
#      with clippy-driver as the workspace's compiler and `-D warnings`: clippy's lints
#      and the test build in ONE compilation (dependencies are built once, not once
#      for `cargo clippy` and again for `cargo test`); also compiles the HDFS backend
#   4. scripts/services.sh start        (Tansu, InfluxDB, moto S3, VictoriaMetrics,
#                                        Alertmanager on free 127.0.0.1 ports)
#   5. cargo test --workspace --features stream-processor/hdfs
#                                       (RUST_TEST_THREADS=2, with .tools/run/services.env;
#                                        the same features, so nothing is compiled again)
#
# Services are always stopped on exit. Extra arguments replace `--workspace` in
# step 5, e.g. `scripts/test.sh -p consumer-influx`. Exit code: 0 only if all passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
fi

export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

CURRENT_STEP="setup"
SERVICES_STARTED=0

banner() { echo; echo "==> [test.sh] $*"; }

on_exit() {
    local rc=$?
    if [[ "$SERVICES_STARTED" -eq 1 ]]; then
        bash "$ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
    fi
    echo
    if [[ $rc -eq 0 ]]; then
        echo "==> [test.sh] PASSED: fmt, clippy (-D warnings), feature checks and all tests"
    else
        echo "==> [test.sh] FAILED at step '$CURRENT_STEP' (exit $rc)"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { # NAME CMD...
    CURRENT_STEP="$1"
    shift
    banner "$CURRENT_STEP: $*"
    "$@"
}

step install-deps bash scripts/install-deps.sh
step fmt cargo fmt --all -- --check
step lint-compose bash scripts/lint-compose.sh
step systemd-units bash scripts/check-systemd.sh
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
# A fresh CI build gains nothing from incremental compilation's bookkeeping.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step build-and-lint cargo test "${WORKSPACE_FEATURES[@]}" --all-targets --no-run

SERVICES_STARTED=1
step services bash scripts/services.sh start
# shellcheck disable=SC1091
source .tools/run/services.env

if [[ $# -gt 0 ]]; then
    step tests cargo test "$@"
else
    step tests cargo test "${WORKSPACE_FEATURES[@]}"
fi
CURRENT_STEP="done"
