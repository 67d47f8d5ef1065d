#!/usr/bin/env bash
# One long fuzzing run of one target (as FUZZING.md's results were made): the built
# binary on its working corpus (fuzz/work/<target>/, see seed.sh), at the lowest CPU
# priority, until RUNS executions or SECONDS seconds, whichever comes first; then the
# working corpus is minimised into fuzz/corpus/<target>/ (see the end).
# Crashes land in fuzz/artifacts/<target>/. Build first:
#   (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none --debug-assertions)
#
# Usage: fuzz/run.sh TARGET [RUNS] [SECONDS] [MAX_LEN]    (default 10000000 1500 4096)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"
t="$1"
runs="${2:-10000000}"
secs="${3:-1500}"
max_len="${4:-4096}"
bin="target/x86_64-unknown-linux-gnu/release/$t"
mkdir -p "work/$t" "artifacts/$t" "corpus/$t"

nice -n 19 "$bin" "work/$t" -runs="$runs" -max_total_time="$secs" -max_len="$max_len" \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
    -print_pcs=0 -reload=0 2>&1 | grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)' || true

# Minimise into the committed corpus: a small set of inputs that covers every edge the
# working corpus covers (edges only: with libFuzzer's counters and comparison features
# the set is several times larger for a few percent more edges).
rm -rf "corpus/$t.min"
mkdir -p "corpus/$t.min"
nice -n 19 "$bin" -set_cover_merge=1 -use_counters=0 -use_cmp=0 -max_len="$max_len" \
    "corpus/$t.min" "work/$t" 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
rm -rf "corpus/$t"
mv "corpus/$t.min" "corpus/$t"
echo "run.sh: $t: corpus/$t: $(find "corpus/$t" -type f | wc -l) files, $(du -sk "corpus/$t" | cut -f1) KiB"
