#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#
#   1. scripts/install-deps.sh          (apt packages, tansu, moto; skips what is done)
#   2. cargo fmt --all -- --check
#   3. cargo clippy --workspace --all-targets --features stream-processor/hdfs -- -D warnings
#                                       (also compiles the optional HDFS lake backend)
#   4. scripts/services.sh start        (Tansu, InfluxDB, moto S3, VictoriaMetrics,
#                                        Alertmanager on free 127.0.0.1 ports)
#   5. cargo test --workspace           (RUST_TEST_THREADS=2, with .tools/run/services.env)
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
        echo "==> [test.sh] PASSED: fmt, clippy, feature checks and all tests"
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
# One clippy run with the hdfs feature: the HDFS lake backend is compiled (and linted)
# without a second build of the workspace.
step clippy cargo clippy --workspace --all-targets --features stream-processor/hdfs -- -D warnings

SERVICES_STARTED=1
step services bash scripts/services.sh start
# shellcheck disable=SC1091
source .tools/run/services.env

if [[ $# -gt 0 ]]; then
    step tests cargo test "$@"
else
    step tests cargo test --workspace
fi
CURRENT_STEP="done"
