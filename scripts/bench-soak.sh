#!/usr/bin/env bash
# Soak (BENCHMARKS.md, "Soak"): a simulated fleet at 1 s through the real binaries for a
# long wall time — producer simulate → Kafka (Tansu) → stream-processor → local Delta
# lake, and consumer-influx → InfluxDB — sampling every 30 s each service's RSS, open
# file descriptors and consumer lag. At the end: RSS slope after warm-up, and whether
# every delivered sample is in the lake (exactly once) and in InfluxDB.
#
#   scripts/bench-soak.sh                   # 1,000 GPUs (125 hosts x 8), 30 minutes
#   SOAK_HOSTS=10 SOAK_MINUTES=3 scripts/bench-soak.sh
#
# Needs the services of `scripts/services.sh start` and built binaries (target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .tools/run/services.env
HOSTS=${SOAK_HOSTS:-125}
GPUS=${SOAK_GPUS:-8}
MINUTES=${SOAK_MINUTES:-30}
WARMUP=${SOAK_WARMUP_MINUTES:-5}
BIN=${GPUSTREAM_BIN:-target/debug}
WORK=$(mktemp -d /tmp/gpustream-soak.XXXXXX)
# Private copies: a rebuild during the soak must not swap the binaries under it.
for b in producer stream-processor consumer-influx batch-analytics; do cp "$BIN/$b" "$WORK/"; done
TOPIC=soak-$(date +%s)
DB=soak_$(date +%s)
LAKE=$WORK/lake
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$GPUSTREAM_TEST_TANSU" topic create "$TOPIC" --partitions 4 --broker "tcp://$GPUSTREAM_TEST_BROKERS" >/dev/null
"$GPUSTREAM_TEST_TANSU" topic create "$TOPIC-dlq" --partitions 1 --broker "tcp://$GPUSTREAM_TEST_BROKERS" >/dev/null
curl -s -XPOST "$GPUSTREAM_TEST_INFLUX_URL/query" --data-urlencode "q=CREATE DATABASE $DB" >/dev/null

export RUST_LOG=warn
# SOAK_PROCESSOR_WRAP runs the processor under a tool, e.g. "heaptrack -o /tmp/hp" (RSS
# figures are then the tool's plus the processor's).
${SOAK_PROCESSOR_WRAP:-} "$WORK/stream-processor" --brokers "$GPUSTREAM_TEST_BROKERS" --topic "$TOPIC" --group "$TOPIC-p" \
  --lake "$LAKE" --dlq-topic "$TOPIC-dlq" --anomalies-topic "" --rollups-topic "" \
  --metrics-addr 127.0.0.1:19731 2>"$WORK/processor.log" &
SP=$!; PIDS+=("$SP")
if [[ -n "${SOAK_PROCESSOR_WRAP:-}" ]]; then
  # Measure and stop the processor itself, not the wrapper.
  WRAPPER=$SP
  for _ in $(seq 100); do SP=$(pgrep -n -f "^$WORK/stream-processor" || true); [[ -n "$SP" ]] && break; sleep 0.1; done
  PIDS+=("$SP")
fi
"$WORK/consumer-influx" --brokers "$GPUSTREAM_TEST_BROKERS" --topic "$TOPIC" --group "$TOPIC-i" \
  --influx-url "$GPUSTREAM_TEST_INFLUX_URL" --database "$DB" --anomalies-topic "" --rollups-topic "" \
  --dlq-topic "$TOPIC-dlq" --metrics-addr 127.0.0.1:19732 2>"$WORK/sink.log" &
CI_PID=$!; PIDS+=("$CI_PID")
sleep 3
"$WORK/producer" simulate --brokers "$GPUSTREAM_TEST_BROKERS" --topic "$TOPIC" --hosts "$HOSTS" \
  --gpus "$GPUS" --interval 1s --duration "${MINUTES}m" --speed 1 --start now --no-faults \
  --metrics-addr 127.0.0.1:19733 >"$WORK/producer.out" 2>"$WORK/producer.log" &
PR=$!; PIDS+=("$PR")

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
lag() { curl -s "http://$1/metrics" | awk '/^gpustream_consumer_lag/ {s += $NF} END {print s + 0}'; }

echo "t_s,processor_rss_mb,processor_fds,processor_lag,sink_rss_mb,sink_fds,sink_lag,producer_rss_mb" | tee "$WORK/samples.csv"
START=$(date +%s)
while kill -0 "$PR" 2>/dev/null; do
  sleep 30
  T=$(( $(date +%s) - START ))
  echo "$T,$(rss_mb $SP),$(fds $SP),$(lag 127.0.0.1:19731),$(rss_mb $CI_PID),$(fds $CI_PID),$(lag 127.0.0.1:19732),$(rss_mb $PR)" | tee -a "$WORK/samples.csv"
done
wait "$PR"
DELIVERED=$(sed -n 's/.*delivered \([0-9]*\).*/\1/p' "$WORK/producer.out" | tail -n 1)
echo "producer: $(tail -n 1 "$WORK/producer.out")"

# Drain: wait until both consumers hold every delivered sample (at most 10 minutes).
count_lake() { "$WORK/batch-analytics" sql --lake "$LAKE" --format csv "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM samples" 2>/dev/null | tail -n 1; }
count_influx() { curl -s -G "$GPUSTREAM_TEST_INFLUX_URL/query" --data-urlencode "db=$DB" --data-urlencode "q=SELECT count(seq) FROM gpu_samples" | sed -n 's/.*"values":\[\[[^,]*,\([0-9]*\)\]\].*/\1/p'; }
for _ in $(seq 1 120); do
  L=$(count_lake); I=$(count_influx)
  [[ "${L%%,*}" == "$DELIVERED" && "${I:-0}" == "$DELIVERED" ]] && break
  sleep 5
done
kill -TERM "$SP" "$CI_PID"; wait "$SP" "$CI_PID" 2>/dev/null || true
while kill -0 "$SP" 2>/dev/null; do sleep 0.2; done
[[ -n "${WRAPPER:-}" ]] && { wait "$WRAPPER" || true; }
L=$(count_lake); I=$(count_influx)
echo "delivered $DELIVERED; lake rows,distinct ids: $L; influx points: ${I:-0}"

python3 - "$WORK/samples.csv" "$WARMUP" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
warm = float(sys.argv[2]) * 60
rows = [r for r in rows if float(r["t_s"]) >= warm]
def slope(col):
    xs = [float(r["t_s"]) / 3600 for r in rows]; ys = [float(r[col]) for r in rows]
    n = len(xs)
    if n < 2: return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0
for col in ["processor_rss_mb", "sink_rss_mb", "processor_fds", "sink_fds"]:
    vals = [float(r[col]) for r in rows]
    print(f"{col}: min {min(vals):.1f} max {max(vals):.1f} slope {slope(col):+.2f}/hour after warm-up")
for col in ["processor_lag", "sink_lag"]:
    vals = [float(r[col]) for r in rows]
    print(f"{col}: max {max(vals):.0f}")
PY
echo "samples: $WORK/samples.csv"
