#!/usr/bin/env bash
# Lays out the working corpora of a fuzzing run: fuzz/work/<target>/ gets the committed
# corpus (fuzz/corpus/<target>/), seeds and regressions, and seeds made now from files that are
# not ours to commit or that change with the project:
#
#   gpuz_parse   slices (<= 4 KiB, a header and rows) of the real GPU-Z logs in
#                ../shared/data/gpuz/ (not copied into the repository: SOURCES.md there)
#                and of the project's data/sample-gpuz-log.txt
#   rules_toml   stream-processor/rules.default.toml, the rules of every detector
#                scenario (tests/scenarios/*.scenario) and the TOML examples of the docs
#   config_toml  config/*.toml and the TOML examples of the docs
#
# wire_decode and follow_state seeds are committed in fuzz/seeds/ (what the encoder and
# `save` write: crates/fuzz-targets/tests/seeds.rs); line_protocol_roundtrip starts from
# nothing.
#
# Usage: fuzz/seed.sh [WORK_DIR]     (default fuzz/work)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-$ROOT/fuzz/work}"
SHARED="${GPUSTREAM_SHARED_DATA:-$ROOT/../shared/data/gpuz}"
TARGETS=(gpuz_parse wire_decode rules_toml config_toml line_protocol_roundtrip follow_state)

for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t"
    for src in "$ROOT/fuzz/corpus/$t" "$ROOT/fuzz/seeds/$t" "$ROOT/fuzz/regressions/$t"; do
        if [[ -d "$src" ]] && compgen -G "$src/*" >/dev/null; then
            cp -f "$src"/* "$WORK/$t/"
        fi
    done
done

# GPU-Z logs: the first 4 KiB, and the header line with rows from the middle. UTF-16
# files are cut at even offsets (whole code units) and keep their BOM.
slice_log() { # FILE NAME
    local file="$1" name="$2" out="$WORK/gpuz_parse"
    local size middle
    size=$(stat -c %s "$file")
    middle=$(((size / 4) * 2))
    cut_bytes() { dd if="$file" iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none; }
    cut_bytes 0 4096 >"$out/seed-$name-head"
    if [[ "$(cut_bytes 0 2 | od -An -tx1 | tr -d ' ')" =~ ^(feff|fffe)$ ]]; then
        { cut_bytes 0 1024; cut_bytes "$middle" 3072; } >"$out/seed-$name-middle"
    else
        { sed -n 1p "$file"; cut_bytes "$middle" 3072; } >"$out/seed-$name-middle"
    fi
}
if [[ -d "$SHARED" ]]; then
    for f in "$SHARED"/*.txt; do
        slice_log "$f" "$(basename "$f" .txt)"
    done
else
    echo "seed.sh: no $SHARED: gpuz_parse starts from the committed corpus only" >&2
fi
slice_log "$ROOT/data/sample-gpuz-log.txt" sample-gpuz-log

# TOML: whole files, the `rules ... end` blocks of the scenarios, fenced ```toml blocks.
cp "$ROOT/crates/stream-processor/rules.default.toml" "$WORK/rules_toml/seed-rules.default.toml"
for f in "$ROOT"/crates/stream-processor/tests/scenarios/*.scenario; do
    awk -v out="$WORK/rules_toml/seed-$(basename "$f" .scenario)-" '
        /^rules$/ { n++; on = 1; next }
        /^end$/   { on = 0; next }
        on        { print > (out n ".toml") }' "$f"
done
for f in "$ROOT"/config/*.toml; do
    cp "$f" "$WORK/config_toml/seed-$(basename "$f")"
done
for f in "$ROOT"/README.md "$ROOT"/docs/*.md; do
    for t in rules_toml config_toml; do
        awk -v out="$WORK/$t/seed-doc-$(basename "$f" .md)-" '
            /^```toml/ { n++; on = 1; next }
            /^```/     { on = 0; next }
            on         { print > (out n ".toml") }' "$f"
    done
done

for t in "${TARGETS[@]}"; do
    echo "seed.sh: $t: $(find "$WORK/$t" -type f | wc -l) inputs in $WORK/$t"
done
