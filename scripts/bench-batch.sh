#!/usr/bin/env bash
# Benchmark of the nightly batch job (issue 6): batch-analytics vs PySpark local mode on
# the same synthetic lake day, plus DataFusion's bare scan rate over the same files.
#
#   scripts/bench-batch.sh            # 1M and 10M samples
#   SIZES="1m" scripts/bench-batch.sh # only 1M
#
# Sizes: 1m = 12 GPUs, 10m = 116 GPUs, one sample per second each for a UTC day (with a
# 10-minute gap between two sessions at noon), 12 Kafka partitions, the stream processor's
# date=/hour= layout (`batch-analytics generate`). Lakes and outputs go to $BENCH_DIR
# (default target/bench-batch). PySpark comes from .tools/pyspark-venv (created with
# pip when missing); Java 17 must be installed. Time and peak RSS from /usr/bin/time -v.
# The binary is the workspace's dev profile build (dependencies and batch-analytics at
# opt-level 2, see Cargo.toml), the one `cargo build --workspace` makes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=${SIZES:-1m 10m}
DIR=${BENCH_DIR:-$ROOT/target/bench-batch}
DATE=2025-01-15
TZ_NAME=Europe/Berlin
VENV=$ROOT/.tools/pyspark-venv
# Spark's default 1g driver heap runs out of memory on the 10M day (percentile_approx
# and the cached input); 4g finishes both sizes. Same setting for every size.
SPARK_MEM=${SPARK_DRIVER_MEMORY:-4g}
mkdir -p "$DIR"

cargo build --workspace --all-targets >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/batch-analytics
if [ ! -x "$VENV/bin/spark-submit" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pyspark
fi
export PATH="$VENV/bin:$PATH" PYSPARK_PYTHON="$VENV/bin/python" PYSPARK_DRIVER_PYTHON="$VENV/bin/python"

# measure NAME CMD... → "seconds max_rss_kb" on stdout, the command's output in $DIR/NAME.log
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$DIR/$name.time" "$@" >"$DIR/$name.log" 2>&1 || {
    echo "$name failed, see $DIR/$name.log" >&2; tail -20 "$DIR/$name.log" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DIR/$name.time" |
    awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.time")
  echo "$wall $rss"
}

RESULTS=$DIR/results.md
{
  echo "| samples | batch-analytics daily | PySpark local[*] | speed-up | peak RSS batch-analytics | peak RSS Spark | memory ratio | DataFusion count(*) | DataFusion scan of the analysed columns | nightly rows/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} >"$RESULTS"

for size in $SIZES; do
  case $size in
    1m) GPUS=12 ;;
    10m) GPUS=116 ;;
    *) echo "unknown size $size (1m, 10m)" >&2; exit 1 ;;
  esac
  LAKE=$DIR/lake-$size
  if [ ! -f "$LAKE/.complete" ]; then
    rm -rf "$LAKE"
    "$BIN" generate --lake "$LAKE" --date $DATE --gpus $GPUS --interval-ms 1000 --partitions 12 >&2
    touch "$LAKE/.complete"
  fi
  ROWS=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(*) AS n FROM samples WHERE date = '$DATE'" | tail -n 1)
  echo "== $size: $ROWS samples in $LAKE ($(du -sh "$LAKE/samples" | cut -f1))" >&2

  read -r COUNT_S _ < <(measure "count-$size" "$BIN" sql --lake "$LAKE" --format csv \
    "SELECT count(*) FROM samples WHERE date = '$DATE'")
  COLS="sum(gpu_temp_c), sum(hot_spot_c), sum(memory_temp_c), sum(cpu_temp_c), sum(gpu_load_pct), sum(board_power_w), sum(chip_power_w), sum(memory_used_mb), sum(core_clock_mhz), sum(memory_clock_mhz), sum(energy_mj), sum(perf_cap), sum(throttle_reasons), max(event_time), max(host), max(gpu), max(session), max(gpu_name), count(unsupported)"
  read -r SCAN_S _ < <(measure "scan-$size" "$BIN" sql --lake "$LAKE" --format csv \
    "SELECT $COLS FROM samples WHERE date = '$DATE'")
  # Three runs of ours (the median counts), one of Spark (minutes per run).
  OURS=()
  for i in 1 2 3; do
    read -r s r < <(measure "nightly-$size-$i" "$BIN" daily --lake "$LAKE" --date $DATE --timezone $TZ_NAME --no-maintain)
    OURS+=("$s $r")
  done
  read -r OURS_S OURS_RSS < <(printf '%s\n' "${OURS[@]}" | sort -n | sed -n 2p)
  rm -rf "$DIR/spark-out-$size"
  read -r SPARK_S SPARK_RSS < <(measure "spark-$size" spark-submit --master 'local[*]' --driver-memory "$SPARK_MEM" \
    crates/batch-analytics/bench/nightly_spark.py "$LAKE" $DATE "$DIR/spark-out-$size" $TZ_NAME)
  awk -v n="$ROWS" -v o="$OURS_S" -v orss="$OURS_RSS" -v s="$SPARK_S" -v srss="$SPARK_RSS" \
      -v c="$COUNT_S" -v sc="$SCAN_S" -v size="$size" 'BEGIN {
    printf "| %s (%d) | %.2f s | %.1f s | %.0f× | %.0f MiB | %.0f MiB | %.1f%% | %.2f s (%.0f M rows/s) | %.2f s (%.1f M rows/s) | %.2f M rows/s |\n",
      size, n, o, s, s / o, orss / 1024, srss / 1024, 100 * orss / srss, c, n / c / 1e6, sc, n / sc / 1e6, n / o / 1e6
  }' >>"$RESULTS"
  echo "ours (3 runs, s and KiB): ${OURS[*]}" >&2
done
echo >&2
cat "$RESULTS"
