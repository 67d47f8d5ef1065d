#!/usr/bin/env bash
# Lake figures (BENCHMARKS.md, "The lake"), through the real binaries and broker:
#
#   files     a day of 8 GPUs sampled every 1 s, as a live stream writes it: the
#             simulator runs the day at SPEED x real time and the processor's flush
#             interval is scaled by the same factor (10 s / SPEED), so each table gets
#             the commits and files a real day at --flush-interval 10s gives. Then
#             `batch-analytics maintain` compacts the day: files before/after, time.
#   latency   sample -> queryable: the simulator runs live (speed 1), and a reader
#             polls `SELECT max(event_time)` through `batch-analytics sql` (a fresh
#             process opening the table each time, as a user's query would); latency =
#             poll time - newest event time, per flush interval (1 s and 10 s).
#
#   scripts/bench-lake.sh [files|latency]    (default: both)
# Env: LAKE_SPEED (default 60), LAKE_HOURS (simulated hours for `files`, default 24).
# Needs the services of `scripts/services.sh start` and built binaries (target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .tools/run/services.env
BIN=${GPUSTREAM_BIN:-target/debug}
SPEED=${LAKE_SPEED:-60}
HOURS=${LAKE_HOURS:-24}
WORK=$(mktemp -d /tmp/gpustream-lake-bench.XXXXXX)
for b in producer stream-processor batch-analytics; do cp "$BIN/$b" "$WORK/"; done
export RUST_LOG=warn
SP=""
trap '[[ -n "$SP" ]] && kill "$SP" 2>/dev/null || true' EXIT

topic() { # NAME
  "$GPUSTREAM_TEST_TANSU" topic create "$1" --partitions 2 --broker "tcp://$GPUSTREAM_TEST_BROKERS" >/dev/null
  "$GPUSTREAM_TEST_TANSU" topic create "$1-dlq" --partitions 1 --broker "tcp://$GPUSTREAM_TEST_BROKERS" >/dev/null
}
processor() { # TOPIC LAKE FLUSH
  "$WORK/stream-processor" --brokers "$GPUSTREAM_TEST_BROKERS" --topic "$1" --group "$1-g" \
    --lake "$2" --flush-interval "$3" --dlq-topic "$1-dlq" --anomalies-topic "" --rollups-topic "" \
    --metrics-addr 127.0.0.1:0 2>>"$WORK/processor.log" &
  SP=$!
}
sql() { "$WORK/batch-analytics" sql --lake "$1" --format csv "$2" 2>/dev/null | tail -n 1; }
files_of() { find "$1" -path '*/_delta_log' -prune -o -name '*.parquet' -print | wc -l; }

files() {
  local t lake flush_ms start
  t=lake-files-$(date +%s); lake=$WORK/files-lake
  topic "$t"
  flush_ms=$(( 10000 / SPEED )); (( flush_ms > 0 )) || flush_ms=1
  processor "$t" "$lake" "${flush_ms}ms"
  sleep 2
  start=$(date -u -d "yesterday 00:00" +"%Y-%m-%dT00:00:00Z")
  echo "files: 8 GPUs x 1 s for ${HOURS} h at ${SPEED}x, flush every ${flush_ms} ms (= 10 s live)"
  "$WORK/producer" simulate --brokers "$GPUSTREAM_TEST_BROKERS" --topic "$t" --hosts 1 --gpus 8 \
    --interval 1s --duration "${HOURS}h" --speed "$SPEED" --start "$start" --no-faults | tail -n 1
  local sent; sent=$(( HOURS * 3600 * 8 ))
  for _ in $(seq 1 240); do
    [[ "$(sql "$lake" "SELECT count(*) FROM samples")" -ge "$sent" ]] && break
    sleep 5
  done
  kill -TERM "$SP"; wait "$SP" || true; SP=""
  local day; day=$(sql "$lake" "SELECT min(date) FROM samples")
  echo "rows in samples: $(sql "$lake" "SELECT count(*) FROM samples"); files on disk: samples $(files_of "$lake/samples"), rollups_1m $(files_of "$lake/rollups_1m" 2>/dev/null || echo 0); commits: $(find "$lake/samples/_delta_log" -name '*.json' | wc -l)"
  echo "maintain --date $day:"
  /usr/bin/time -f "maintain wall %e s, max RSS %M KiB" "$WORK/batch-analytics" maintain --lake "$lake" --date "$day" --retention 0s 2>&1 | grep -v '^\s*$'
  echo "files on disk after maintain: samples $(files_of "$lake/samples")"
}

latency() {
  local flush t lake now newest
  for flush in 1s 10s; do
    t=lake-latency-$flush-$(date +%s); lake=$WORK/latency-$flush
    topic "$t"
    processor "$t" "$lake" "$flush"
    "$WORK/producer" simulate --brokers "$GPUSTREAM_TEST_BROKERS" --topic "$t" --hosts 1 --gpus 8 \
      --interval 1s --duration 150s --speed 1 --start now --no-faults >/dev/null &
    local pr=$!
    sleep 30
    : >"$WORK/latency-$flush.txt"
    while kill -0 "$pr" 2>/dev/null; do
      newest=$(sql "$lake" "SELECT CAST(max(event_time) AS BIGINT) / 1000 FROM samples")
      now=$(date +%s%3N)
      [[ -n "$newest" ]] && echo $(( now - newest )) >>"$WORK/latency-$flush.txt"
      sleep 0.5
    done
    kill -TERM "$SP"; wait "$SP" || true; SP=""
    python3 - "$flush" "$WORK/latency-$flush.txt" <<'PY'
import sys
xs = sorted(int(l) for l in open(sys.argv[2]) if l.strip())
q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
print(f"latency at --flush-interval {sys.argv[1]}: n={len(xs)} p50 {q(0.5)} ms, p90 {q(0.9)} ms, max {xs[-1]} ms")
PY
  done
}

case "${1:-both}" in
  files) files ;;
  latency) latency ;;
  both) files; latency ;;
  *) echo "usage: $0 [files|latency]" >&2; exit 2 ;;
esac
