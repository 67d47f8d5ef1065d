#!/usr/bin/env bash
# The whole pipeline on one workstation, without Docker, on fixed 127.0.0.1 ports:
#
#   scripts/stack.sh up [--follow FILE]   # start everything (or check it is all up)
#   scripts/stack.sh status [--quiet]     # each part and its health; --quiet: exit 0 iff all healthy
#   scripts/stack.sh down [--forget]      # stop everything gracefully (TERM, wait, KILL);
#                                         # --forget also deletes broker data, lake, InfluxDB data
#
#   part              address                 health check
#   s3 (moto)         127.0.0.1:9740          GET /moto-api/          the broker's storage
#   kafka (tansu)     127.0.0.1:9092          tansu topic list        Kafka API
#   influxdb          127.0.0.1:8086 (+8088)  GET /ping               InfluxDB 1.x, database "gpu"
#   stream-processor  127.0.0.1:9731          GET /health/ready       lake in $STATE/lake
#   consumer-influx   127.0.0.1:9732          GET /health/ready
#   producer          127.0.0.1:9733          GET /health/ready
#
# Any port can be moved with GPUSTREAM_STACK_<PART>_PORT (KAFKA, S3, INFLUX, INFLUX_RPC,
# PROCESSOR, CONSUMER, PRODUCER) at `up`; status and down use what `up` recorded.
# The producer replays data/sample-gpuz-log.txt forever, rebased to now (`replay --rebase
# now --loop`), or with --follow FILE tails a log GPU-Z is writing (read positions in
# $STATE/producer-follow.state, so an `up` after `down` resumes where it stopped).
# Binaries: ${GPUSTREAM_BIN:-target/debug} (built with `cargo build --workspace` if one is
# missing); settings not given here as flags come from ${GPUSTREAM_STACK_CONFIG:-config/gpustream.toml}.
# Broker, moto and InfluxDB come from scripts/install-deps.sh (run it once first).
#
# Everything lives in STATE=${GPUSTREAM_STACK_DIR:-$HOME/.local/state/gpustream}: the lake
# (lake/), InfluxDB's files (influxdb/), the broker's data (s3/), pid files (run/) and logs
# (logs/, the previous run's as *.log.1).
#
# Durability of the broker's data (topics, messages, consumer groups' offsets): the broker
# (Tansu; this build has no Postgres engine) stores them in S3, here a moto server, and moto
# keeps objects in memory only (it has no persistence option; its request recorder replays
# every request ever made, which grows without bound). So `down` saves every object to
# $STATE/s3/ after the broker stopped, and `up` loads them back before the broker starts.
# What the broker stored since the last `up` is LOST if moto dies without `down` (kill -9,
# crash, reboot). The lake and InfluxDB write to disk themselves and are unaffected; but a
# lake that recorded Kafka offsets (stream-processor's exactly-once progress) ahead of a
# broker that lost its data would skip the new messages up to those offsets. So `up`
# after a stack that ended without `down` refuses until `down` (accept the gap) or
# `down --forget` (delete broker data, lake and InfluxDB data together), and warns when it
# finds a lake but no saved broker data.
# Cost: save and load move about 200 objects/s here, and the broker writes about one
# object per produced batch (one a second for a 1 Hz GPU-Z log) and did not delete old
# ones (a topic with retention.ms=10000 kept its batches), so `down` and `up` each take
# about 7 minutes per day the stack has run, and moto's memory grows likewise.
# `down --forget` starts afresh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${GPUSTREAM_STACK_DIR:-$HOME/.local/state/gpustream}"
BIN="${GPUSTREAM_BIN:-$ROOT/target/debug}"
CONFIG="${GPUSTREAM_STACK_CONFIG:-$ROOT/config/gpustream.toml}"
TANSU_BIN="$ROOT/.tools/bin/tansu"
MOTO_PY="$ROOT/.tools/moto-venv/bin/python"
RUN="$STATE/run"
LOGS="$STATE/logs"
PORTS_FILE="$STATE/run/ports.env"
INFLUX_CONFIG="$STATE/influxdb.conf"
SNAPSHOT="$STATE/s3"

BUCKET=tansu
DATABASE=gpu
SAMPLE_LOG="$ROOT/data/sample-gpuz-log.txt"
TOPICS=(gpu-samples gpu-anomalies gpu-rollups-1m gpu-dlq gpu-influx-dlq)
# Start order; `down` stops in reverse.
PARTS=(s3 kafka influxdb stream-processor consumer-influx producer)
# The broker's S3 client, and the snapshot tool's.
S3_ENV=(AWS_ACCESS_KEY_ID=stack AWS_SECRET_ACCESS_KEY=stack AWS_REGION=us-east-1
    AWS_DEFAULT_REGION=us-east-1 AWS_ALLOW_HTTP=true)
HEALTH_TIMEOUT_S="${GPUSTREAM_STACK_HEALTH_TIMEOUT_S:-60}"

log() { echo "[stack] $*"; }
die() { echo "[stack] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- ports

load_ports() {
    KAFKA_PORT="${GPUSTREAM_STACK_KAFKA_PORT:-9092}"
    S3_PORT="${GPUSTREAM_STACK_S3_PORT:-9740}"
    INFLUX_PORT="${GPUSTREAM_STACK_INFLUX_PORT:-8086}"
    INFLUX_RPC_PORT="${GPUSTREAM_STACK_INFLUX_RPC_PORT:-8088}"
    PROCESSOR_PORT="${GPUSTREAM_STACK_PROCESSOR_PORT:-9731}"
    CONSUMER_PORT="${GPUSTREAM_STACK_CONSUMER_PORT:-9732}"
    PRODUCER_PORT="${GPUSTREAM_STACK_PRODUCER_PORT:-9733}"
    # A running stack keeps the ports it was started with.
    if [[ -f "$PORTS_FILE" ]]; then
        # shellcheck disable=SC1090
        source "$PORTS_FILE"
    fi
}

save_ports() {
    cat >"$PORTS_FILE" <<EOF
KAFKA_PORT=$KAFKA_PORT
S3_PORT=$S3_PORT
INFLUX_PORT=$INFLUX_PORT
INFLUX_RPC_PORT=$INFLUX_RPC_PORT
PROCESSOR_PORT=$PROCESSOR_PORT
CONSUMER_PORT=$CONSUMER_PORT
PRODUCER_PORT=$PRODUCER_PORT
EOF
}

port_of() { # PART
    case "$1" in
        s3) echo "$S3_PORT" ;;
        kafka) echo "$KAFKA_PORT" ;;
        influxdb) echo "$INFLUX_PORT" ;;
        stream-processor) echo "$PROCESSOR_PORT" ;;
        consumer-influx) echo "$CONSUMER_PORT" ;;
        producer) echo "$PRODUCER_PORT" ;;
    esac
}

port_var_of() { # PART
    case "$1" in
        s3) echo GPUSTREAM_STACK_S3_PORT ;;
        kafka) echo GPUSTREAM_STACK_KAFKA_PORT ;;
        influxdb) echo GPUSTREAM_STACK_INFLUX_PORT ;;
        stream-processor) echo GPUSTREAM_STACK_PROCESSOR_PORT ;;
        consumer-influx) echo GPUSTREAM_STACK_CONSUMER_PORT ;;
        producer) echo GPUSTREAM_STACK_PRODUCER_PORT ;;
    esac
}

port_open() { # PORT: something accepts connections on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- processes

# Substring /proc/PID/cmdline must hold before a PID from a pid file is signalled
# (a stale pid file, a reused PID).
cmd_pattern() { # PART
    case "$1" in
        s3) echo moto.server ;;
        kafka) echo tansu ;;
        influxdb) echo influxd ;;
        *) echo "$1" ;;
    esac
}

pid_of() { # PART: the running PID of PART, or nothing
    local pid
    pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 0
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cmd_pattern "$1")" && echo "$pid"
    return 0
}

spawn() { # PART CMD...
    local part="$1"
    shift
    [[ -f "$LOGS/$part.log" ]] && mv -f "$LOGS/$part.log" "$LOGS/$part.log.1"
    local setsid=()
    command -v setsid >/dev/null 2>&1 && setsid=(setsid)
    # Own session and working directory: a Ctrl-C in this shell does not reach the
    # stack, and relative paths in a config file land in the state directory.
    (cd "$STATE" && exec "${setsid[@]}" "$@") </dev/null >"$LOGS/$part.log" 2>&1 &
    echo $! >"$RUN/$part.pid"
}

http_code() { # URL
    curl -s -o /dev/null --max-time 3 -w '%{http_code}' "$1" 2>/dev/null || true
}

healthy() { # PART
    local port
    port="$(port_of "$1")"
    case "$1" in
        s3) [[ "$(http_code "http://127.0.0.1:$port/moto-api/")" == 200 ]] ;;
        # A metadata round trip, which also needs the broker's storage to answer.
        kafka) timeout 10 "$TANSU_BIN" topic list --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1 ;;
        influxdb) [[ "$(http_code "http://127.0.0.1:$port/ping")" == 204 ]] ;;
        *) [[ "$(http_code "http://127.0.0.1:$port/health/ready")" == 200 ]] ;;
    esac
}

address_of() { # PART
    local port
    port="$(port_of "$1")"
    case "$1" in
        kafka) echo "127.0.0.1:$port" ;;
        s3) echo "http://127.0.0.1:$port" ;;
        *) echo "http://127.0.0.1:$port" ;;
    esac
}

wait_healthy() { # PART
    local part="$1" pid deadline
    pid="$(cat "$RUN/$part.pid")"
    deadline=$((SECONDS + HEALTH_TIMEOUT_S))
    until healthy "$part"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail_up "$part" "exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            fail_up "$part" "not healthy after ${HEALTH_TIMEOUT_S}s"
        fi
        sleep 0.5
    done
    log "$part: up at $(address_of "$part") (pid $pid)"
}

fail_up() { # PART REASON
    echo "[stack] ERROR: $1 $2; last lines of $LOGS/$1.log:" >&2
    tail -n 30 "$LOGS/$1.log" >&2 || true
    log "stopping what was started"
    stop_all
    exit 1
}

# TERM, wait up to GRACE seconds, then KILL.
stop_part() { # PART GRACE
    local part="$1" grace="$2" pid deadline
    pid="$(pid_of "$part")"
    rm -f "$RUN/$part.pid"
    [[ -n "$pid" ]] || return 0
    log "$part: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$part: still running after ${grace}s, killing"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

# Stop every part, in reverse start order; the broker's data is saved between the
# broker's stop and moto's.
stop_all() {
    # The producer first (nothing new enters), then the consumers, which flush what they
    # hold and commit (the processor's final Delta commit may take a while).
    stop_part producer 90
    stop_part consumer-influx 60
    stop_part stream-processor 120
    stop_part influxdb 30
    stop_part kafka 30
    if [[ -n "$(pid_of s3)" ]]; then
        if [[ -f "$RUN/s3.loaded" ]]; then
            log "s3: saving the broker's data to $SNAPSHOT"
            env "${S3_ENV[@]}" "$MOTO_PY" "$ROOT/scripts/s3_snapshot.py" save \
                "http://127.0.0.1:$S3_PORT" "$SNAPSHOT" \
                || log "WARNING: saving the broker's data failed; $SNAPSHOT keeps the previous copy"
        else
            # moto never received the saved data (a failed `up`): saving would replace
            # the good copy with an empty one.
            log "s3: not saving (the saved data was never loaded into this moto)"
        fi
    fi
    stop_part s3 30
    rm -f "$RUN/s3.loaded"
}

# ---------------------------------------------------------------- parts

require() { # PATH HINT
    [[ -x "$1" ]] || die "$1 not found; $2"
}

ensure_binaries() {
    local missing=0 b
    for b in producer stream-processor consumer-influx; do
        [[ -x "$BIN/$b" ]] || missing=1
    done
    if [[ $missing -eq 1 ]]; then
        [[ "$BIN" == "$ROOT/target/debug" ]] \
            || die "binaries missing in GPUSTREAM_BIN=$BIN"
        log "building the binaries (cargo build --workspace)"
        (cd "$ROOT" && cargo build --workspace)
    fi
}

start_s3() {
    require "$MOTO_PY" "run scripts/install-deps.sh"
    # moto_server, less werkzeug's line per request (the broker polls S3 several times a
    # second: ~140 MB of log a day); warnings and errors still reach the log.
    spawn s3 "$MOTO_PY" -c 'import logging, sys
logging.getLogger("werkzeug").setLevel(logging.WARNING)
from moto.server import main
sys.exit(main())' -H 127.0.0.1 -p "$S3_PORT"
    wait_healthy s3
    env "${S3_ENV[@]}" "$MOTO_PY" "$ROOT/scripts/s3_snapshot.py" load \
        "http://127.0.0.1:$S3_PORT" "$SNAPSHOT" | sed 's/^/[stack] s3: /' \
        || fail_up s3 "could not load the broker's saved data from $SNAPSHOT"
    curl -sf -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET" \
        || fail_up s3 "cannot create bucket $BUCKET"
    # From here on `down` may save moto's objects: they include the saved ones.
    touch "$RUN/s3.loaded"
}

start_kafka() {
    require "$TANSU_BIN" "run scripts/install-deps.sh"
    spawn kafka env "${S3_ENV[@]}" AWS_ENDPOINT="http://127.0.0.1:$S3_PORT" \
        "$TANSU_BIN" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine "s3://$BUCKET/"
    wait_healthy kafka
    local existing topic
    existing="$(timeout 10 "$TANSU_BIN" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" 2>/dev/null || true)"
    for topic in "${TOPICS[@]}"; do
        grep -qF -- "\"name\":\"$topic\"" <<<"$existing" && continue
        # One partition each: one machine, one consumer per group.
        timeout 10 "$TANSU_BIN" topic create "$topic" --partitions 1 \
            --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null \
            || fail_up kafka "cannot create topic $topic"
        log "kafka: created topic $topic"
    done
}

start_influxdb() {
    command -v influxd >/dev/null 2>&1 || die "influxd not found; run scripts/install-deps.sh"
    local dir="$STATE/influxdb"
    mkdir -p "$dir/meta" "$dir/data" "$dir/wal"
    cat >"$INFLUX_CONFIG" <<EOF
reporting-enabled = false
bind-address = "127.0.0.1:$INFLUX_RPC_PORT"

[meta]
  dir = "$dir/meta"

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false

[monitor]
  store-enabled = false
EOF
    spawn influxdb influxd -config "$INFLUX_CONFIG"
    wait_healthy influxdb
    curl -sf -o /dev/null -X POST "http://127.0.0.1:$INFLUX_PORT/query" \
        --data-urlencode "q=CREATE DATABASE $DATABASE" \
        || fail_up influxdb "cannot create database $DATABASE"
}

start_processor() {
    spawn stream-processor "$BIN/stream-processor" --config "$CONFIG" \
        --brokers "127.0.0.1:$KAFKA_PORT" --lake "$STATE/lake" \
        --metrics-addr "127.0.0.1:$PROCESSOR_PORT"
}

start_consumer() {
    spawn consumer-influx "$BIN/consumer-influx" --config "$CONFIG" \
        --brokers "127.0.0.1:$KAFKA_PORT" --influx-url "http://127.0.0.1:$INFLUX_PORT" \
        --influx-api v1 --database "$DATABASE" --metrics-addr "127.0.0.1:$CONSUMER_PORT"
}

start_producer() { # [FOLLOW_FILE]
    local common=(--brokers "127.0.0.1:$KAFKA_PORT" --metrics-addr "127.0.0.1:$PRODUCER_PORT")
    if [[ -n "${1:-}" ]]; then
        echo "follow $1" >"$RUN/producer.mode"
        spawn producer "$BIN/producer" --config "$CONFIG" replay "${common[@]}" \
            --follow --state-file "$STATE/producer-follow.state" "$1"
    else
        echo "replay $SAMPLE_LOG (looped, rebased to now)" >"$RUN/producer.mode"
        spawn producer "$BIN/producer" --config "$CONFIG" replay "${common[@]}" \
            --rebase now --loop "$SAMPLE_LOG"
    fi
}

# ---------------------------------------------------------------- commands

cmd_up() {
    local follow=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --follow)
                [[ $# -ge 2 ]] || die "--follow needs a FILE"
                follow="$(realpath -m -- "$2")"
                shift 2
                ;;
            *) usage ;;
        esac
    done
    command -v curl >/dev/null 2>&1 || die "curl not found; run scripts/install-deps.sh"
    mkdir -p "$RUN" "$LOGS"
    load_ports

    local part running=()
    for part in "${PARTS[@]}"; do
        [[ -n "$(pid_of "$part")" ]] && running+=("$part")
    done
    if [[ ${#running[@]} -eq ${#PARTS[@]} ]] && cmd_status --quiet; then
        log "already up"
        print_where
        return 0
    fi
    [[ ${#running[@]} -eq 0 ]] \
        || die "partly running (${running[*]}): run 'scripts/stack.sh down' first"
    if [[ -f "$RUN/s3.loaded" ]]; then
        # Only `down` removes it: the last stack ended without one (kill -9, crash,
        # reboot), so moto took what the broker stored since that stack's `up` with it.
        echo "[stack] ERROR: the last stack ended without 'down': the broker's data since its 'up'" >&2
        echo "[stack] is lost, while the lake kept the Kafka offsets it had reached, so a" >&2
        echo "[stack] stream-processor would skip that many new messages. Either" >&2
        echo "[stack]   scripts/stack.sh down --forget   # start clean: broker, lake, InfluxDB" >&2
        echo "[stack]   scripts/stack.sh down            # keep the lake and accept the gap" >&2
        exit 1
    fi

    # Fresh start: the ports chosen now (defaults or GPUSTREAM_STACK_*_PORT) are recorded.
    rm -f "$PORTS_FILE"
    load_ports
    for part in "${PARTS[@]}"; do
        if port_open "$(port_of "$part")"; then
            die "127.0.0.1:$(port_of "$part") ($part) is taken; free it or set $(port_var_of "$part")"
        fi
    done
    port_open "$INFLUX_RPC_PORT" \
        && die "127.0.0.1:$INFLUX_RPC_PORT (InfluxDB RPC) is taken; free it or set GPUSTREAM_STACK_INFLUX_RPC_PORT"
    save_ports
    [[ -n "$follow" || -f "$SAMPLE_LOG" ]] || die "$SAMPLE_LOG missing"
    ensure_binaries

    if [[ -d "$STATE/lake" && ! -f "$SNAPSHOT/manifest.jsonl" && ! -f "$SNAPSHOT.old/manifest.jsonl" ]]; then
        log "WARNING: $STATE/lake exists but no saved broker data does: the broker starts empty,"
        log "WARNING: and the stream-processor skips new messages up to the offsets the lake recorded."
        log "WARNING: 'scripts/stack.sh down --forget' clears broker, lake and InfluxDB together."
    fi

    log "state directory $STATE"
    start_s3
    start_kafka
    start_influxdb
    # The two consumers and the producer start together, then are waited for.
    start_processor
    start_consumer
    start_producer "$follow"
    for part in stream-processor consumer-influx producer; do
        wait_healthy "$part"
    done
    print_where
}

print_where() {
    cat <<EOF

gpustream stack is up (state and logs in $STATE)
  producer          $(cat "$RUN/producer.mode" 2>/dev/null || echo '?')
  Kafka API         127.0.0.1:$KAFKA_PORT   topics: ${TOPICS[*]}
  lake              $STATE/lake   (batch-analytics daily --lake $STATE/lake)
  health            http://127.0.0.1:$PROCESSOR_PORT/health/ready (stream-processor)
                    http://127.0.0.1:$CONSUMER_PORT/health/ready (consumer-influx)
                    http://127.0.0.1:$PRODUCER_PORT/health/ready (producer)
  metrics           /metrics on the same three ports (Prometheus text)

Grafana: point it at InfluxDB http://127.0.0.1:$INFLUX_PORT, database "$DATABASE", no user or password:
  copy grafana/provisioning/ to /etc/grafana/provisioning/ and grafana/dashboards/ to
  /var/lib/grafana/dashboards/, and start Grafana with
  INFLUX_URL=http://127.0.0.1:$INFLUX_PORT INFLUX_DB=$DATABASE INFLUX_USER= INFLUX_PASSWORD=
  (see grafana/README.md). Stop the stack with: scripts/stack.sh down
EOF
}

cmd_status() {
    local quiet=0
    [[ "${1:-}" == "--quiet" ]] && quiet=1
    [[ $# -le 1 && ( $# -eq 0 || $quiet -eq 1 ) ]] || usage
    load_ports
    local part pid rc=0 state
    [[ $quiet -eq 1 ]] || printf '%-17s %-9s %-24s %s\n' PART HEALTH ADDRESS PID
    for part in "${PARTS[@]}"; do
        pid="$(pid_of "$part")"
        if [[ -z "$pid" ]]; then
            state="DOWN"
            rc=1
        elif healthy "$part"; then
            state="healthy"
        else
            state="UNHEALTHY"
            rc=1
        fi
        [[ $quiet -eq 1 ]] || printf '%-17s %-9s %-24s %s\n' "$part" "$state" \
            "$(address_of "$part")" "${pid:--}"
    done
    if [[ $quiet -eq 0 && -f "$RUN/producer.mode" ]]; then
        echo "producer: $(cat "$RUN/producer.mode")"
    fi
    return "$rc"
}

cmd_down() {
    local forget=0
    case "${1:-}" in
        "") ;;
        --forget) forget=1 ;;
        *) usage ;;
    esac
    load_ports
    stop_all
    rm -f "$PORTS_FILE" "$RUN/producer.mode"
    if [[ $forget -eq 1 ]]; then
        log "forgetting the broker's data, the lake, InfluxDB's data and the follow state"
        rm -rf "$SNAPSHOT" "$SNAPSHOT.old" "$SNAPSHOT.tmp" "$STATE/lake" "$STATE/influxdb" \
            "$STATE/producer-follow.state"
    fi
    log "down"
}

usage() {
    echo "usage: $0 up [--follow FILE] | status [--quiet] | down [--forget]" >&2
    exit 2
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        up) cmd_up "$@" ;;
        status) cmd_status "$@" ;;
        down) cmd_down "$@" ;;
        *) usage ;;
    esac
}

main "$@"
