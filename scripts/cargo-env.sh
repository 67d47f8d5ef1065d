# The compiler settings every build of this workspace shares, sourced by scripts/test.sh,
# scripts/cw and scripts/demo.sh, so that one build's artifacts serve the others (a
# different wrapper or feature set recompiles the workspace).
#
# clippy-driver compiles the workspace's own crates (lints with -D warnings, then the
# same code generation as rustc); dependencies go through plain rustc as always. This is
# what `cargo clippy` does, minus its separate check-only build of every dependency.
# shellcheck shell=bash
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# The whole workspace with the HDFS backend, so that it is compiled and linted too.
# shellcheck disable=SC2034
WORKSPACE_FEATURES=(--workspace --features stream-processor/hdfs)
