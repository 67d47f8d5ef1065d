#!/usr/bin/env bash
# Runs a stream-processor build for `pipeline_e2e` and, when the bench stops it, saves
# what it measured about itself first: its /metrics (write time per flush stage, lake
# bytes) and the CPU seconds of each of its threads (the consumer loop is the main
# thread, the lake writer the tokio workers).
#
#   source .tools/run/services.env
#   SP_BIN=/tmp/sp-before GPUSTREAM_BENCH_BASELINE_BIN=scripts/bench-wrap-processor.sh \
#       scripts/cw test --bench pipeline_e2e
#   # -> $OUT_DIR/<binary name>.metrics.txt  (OUT_DIR defaults to target/bench-wrap)
set -euo pipefail
bin="${SP_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/debug/stream-processor}"
out_dir="${OUT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/bench-wrap}"
mkdir -p "$out_dir"
out="$out_dir/$(basename "$bin").metrics.txt"
addr=""
prev=""
for a in "$@"; do
    [[ "$prev" == "--metrics-addr" ]] && addr="$a"
    prev="$a"
done
"$bin" "$@" &
child=$!
save_and_stop() {
    curl -s "http://$addr/metrics" >"$out" || true
    for t in /proc/"$child"/task/*; do
        # utime + stime, in clock ticks (fields 14 and 15 of stat; comm has no spaces here)
        echo "thread_cpu_seconds $(cat "$t/comm") $(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "$t/stat")"
    done >>"$out"
    kill -TERM "$child"
    wait "$child"
}
trap 'save_and_stop; exit $?' TERM
wait "$child"
