#!/usr/bin/env bash
# The main job, end to end, on an embedded default: a GPU-Z log (default: the project's
# generated sample in data/) is replayed into a locally started Kafka-API broker (Tansu),
# the stream processor writes the lake's Delta tables in a local directory, and the nightly
# batch job computes its tables and HTML report over it. Every binary reads its settings
# from the one shared file config/gpustream.toml (override with DEMO_CONFIG); only the
# broker address and the lake directory, which this script chooses, are given as flags.
#
#   scripts/demo.sh [GPUZ_LOG] [LAKE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-data/sample-gpuz-log.txt}
LAKE=${2:-demo-lake}
TOPIC=gpu-samples
TZ_NAME=${DEMO_TIMEZONE:-UTC}
CONFIG=${DEMO_CONFIG:-config/gpustream.toml}

bash scripts/install-deps.sh
source "$HOME/.cargo/env" 2>/dev/null || true
echo "==> building"
# The test suite's compiler settings, targets and features (scripts/test.sh, which CI runs
# without incremental compilation): after it, or before it, nothing is compiled twice.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo test "${WORKSPACE_FEATURES[@]}" --all-targets --no-run --quiet
BIN=${CARGO_TARGET_DIR:-target}/debug

SP_PID=""
cleanup() {
  [ -n "$SP_PID" ] && kill "$SP_PID" 2>/dev/null || true
  bash scripts/services.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
echo "==> starting a local Kafka-API broker"
bash scripts/services.sh start kafka
set -a; source .tools/run/services.env; set +a
BROKERS=$GPUSTREAM_TEST_BROKERS
"$GPUSTREAM_TEST_TANSU" topic create "$TOPIC" --partitions 2 --broker "tcp://$BROKERS" >/dev/null 2>&1 || true

rm -rf "$LAKE"
echo "==> replaying $LOG as fast as the broker takes it"
"$BIN/producer" --config "$CONFIG" replay "$LOG" --brokers "$BROKERS" --topic "$TOPIC" --speed 0 \
  --host demo-host --gpu gpu0 --timezone "$TZ_NAME" | tee .tools/run/replay.txt
SENT=$(sed -n 's/.*sent \([0-9]*\),.*/\1/p' .tools/run/replay.txt)

echo "==> stream-processor: Kafka -> anomalies + Delta lake in $LAKE"
"$BIN/stream-processor" --config "$CONFIG" --brokers "$BROKERS" --topic "$TOPIC" --group demo \
  --lake "$LAKE" --flush-interval 1s --metrics-addr 127.0.0.1:0 &
SP_PID=$!
# Wait until every published sample is in the lake (bounded: 120 s).
for _ in $(seq 1 120); do
  sleep 1
  ROWS=$("$BIN/batch-analytics" sql --lake "$LAKE" --format csv "SELECT count(*) AS n FROM samples" 2>/dev/null | tail -n 1 || echo 0)
  [ "${ROWS:-0}" = "$SENT" ] && break
done
kill -TERM "$SP_PID"; wait "$SP_PID" || true; SP_PID=""
echo "==> lake holds $ROWS of $SENT samples"
[ "$ROWS" = "$SENT" ] || { echo "lake is incomplete" >&2; exit 1; }

DATE=$("$BIN/batch-analytics" sql --lake "$LAKE" --format csv "SELECT max(date) FROM samples" | tail -n 1)
echo "==> nightly job for $DATE"
"$BIN/batch-analytics" --config "$CONFIG" daily --lake "$LAKE" --date "$DATE"
echo
echo "Results:"
echo "  raw samples   $LAKE/samples/ (Delta table)"
echo "  anomalies     $LAKE/anomalies/ (Delta table)"
echo "  daily stats   $LAKE/analytics/daily_gpu/ (Delta table, date = '$DATE')"
echo "  all tables    $LAKE/analytics/<table>/ (daily_gpu, hourly, spikes, correlations, ...)"
echo "  report        $LAKE/analytics/_reports/date=$DATE/report.html"
echo "  ad-hoc SQL    $BIN/batch-analytics sql --lake $LAKE \"SELECT * FROM daily_gpu\""
