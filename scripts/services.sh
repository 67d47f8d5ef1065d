#!/usr/bin/env bash
# Start, stop and check the real services the integration tests run against.
#
#   scripts/services.sh start [SERVICE...]   (default: all)
#   scripts/services.sh stop
#   scripts/services.sh status [SERVICE...]  (default: those started)
#
# SERVICE is one of: kafka (tansu), kafka-tls and kafka-mtls (tansu behind a stunnel TLS
# terminator: server-verified with a test CA, and mutual TLS), kafka-sasl (tansu with
# --authentication), influxdb, s3 (moto), victoria-metrics, alertmanager.
#
# Everything binds to 127.0.0.1 on free ports and lives under .tools/run/:
# <name>.log, <name>.pid, data directories, and services.env, a file of
# `export` lines (GPUSTREAM_TEST_*, AWS_*) for `source`. `start` first stops
# whatever a previous `start` left running and wipes the run directory.
# Install the binaries first with scripts/install-deps.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
RUN_DIR="$TOOLS/run"
ENV_FILE="$RUN_DIR/services.env"
INFLUX_CONFIG="$RUN_DIR/influxdb.conf"
HEALTH_TIMEOUT_S="${SERVICES_HEALTH_TIMEOUT_S:-30}"

TANSU_BIN="$TOOLS/bin/tansu"
MOTO_BIN="$TOOLS/moto-venv/bin/moto_server"

ALL_SERVICES=(kafka kafka-tls kafka-mtls kafka-sasl influxdb s3 victoria-metrics alertmanager)
TLS_DIR="$RUN_DIR/tls"

log() { echo "[services] $*"; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

python_bin() {
    if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3; fi
}

# Print N distinct free TCP ports on 127.0.0.1 (all bound at once, so distinct).
free_ports() {
    "$(python_bin)" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# Canonical service name for an alias, or empty.
canonical() {
    case "$1" in
        kafka | tansu) echo kafka ;;
        kafka-tls | tls) echo kafka-tls ;;
        kafka-mtls | mtls) echo kafka-mtls ;;
        kafka-sasl | sasl) echo kafka-sasl ;;
        influxdb | influx | influxd) echo influxdb ;;
        s3 | moto) echo s3 ;;
        victoria-metrics | victoriametrics | vm) echo victoria-metrics ;;
        alertmanager | am | prometheus-alertmanager) echo alertmanager ;;
        *) echo "" ;;
    esac
}

# Substring that must appear in /proc/PID/cmdline before we signal a PID from
# a pid file (guards against a stale pid file and a reused PID).
cmd_pattern() {
    case "$1" in
        kafka | kafka-sasl | *-broker) echo tansu ;;
        kafka-tls | kafka-mtls) echo stunnel ;;
        influxdb) echo influxd ;;
        s3) echo moto_server ;;
        victoria-metrics) echo victoria-metrics ;;
        alertmanager) echo alertmanager ;;
        *) echo "$1" ;;
    esac
}

ppid_of() { # PID  (from /proc: procps may be missing on minimal images)
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }" # drop "pid (comm) ", comm may contain spaces
    set -- $stat
    echo "$2"
}

# PIDs of influxd processes started with our config file (a pgrep -f that
# needs no procps, which minimal images lack).
influxd_pids_for_config() {
    local dir argv
    for dir in /proc/[0-9]*; do
        mapfile -d '' argv <"$dir/cmdline" 2>/dev/null || continue
        [[ ${#argv[@]} -gt 0 && "${argv[0]##*/}" == influxd ]] || continue
        [[ " ${argv[*]} " == *" $INFLUX_CONFIG "* ]] && echo "${dir#/proc/}"
    done
    return 0
}

pid_is_ours() { # NAME PID
    local pid="$2"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    # Started by this very shell (a failed `start` cleaning up).
    [[ "$(ppid_of "$pid")" == "$$" ]] && return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cmd_pattern "$1")"
}

http_code() { # URL
    curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# Health check of one service; PORT from <name>.port.
healthy() { # NAME
    local name="$1" port
    port="$(cat "$RUN_DIR/$name.port" 2>/dev/null)" || return 1
    case "$name" in
        kafka) timeout 5 "$TANSU_BIN" topic list --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1 ;;
        kafka-tls | kafka-mtls)
            # The broker behind the terminator answers, and the terminator accepts TLS.
            timeout 5 "$TANSU_BIN" topic list --broker "tcp://127.0.0.1:$(cat "$RUN_DIR/$name-broker.port")" >/dev/null 2>&1 \
                && timeout 5 openssl s_client -connect "127.0.0.1:$port" -CAfile "$TLS_DIR/ca.pem" \
                    -cert "$TLS_DIR/client.pem" -key "$TLS_DIR/client.key" </dev/null >/dev/null 2>&1 ;;
        kafka-sasl) (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ;;
        influxdb) [[ "$(http_code "http://127.0.0.1:$port/ping")" == 204 ]] ;;
        s3) [[ "$(http_code "http://127.0.0.1:$port/moto-api/")" == 200 ]] ;;
        victoria-metrics) [[ "$(http_code "http://127.0.0.1:$port/health")" == 200 ]] ;;
        alertmanager) [[ "$(http_code "http://127.0.0.1:$port/-/healthy")" == 200 ]] ;;
        *) return 1 ;;
    esac
}

# Run a command in the background as service NAME, logging to NAME.log.
spawn() { # NAME PORT CMD...
    local name="$1" port="$2"
    shift 2
    echo "$port" >"$RUN_DIR/$name.port"
    local setsid=()
    command -v setsid >/dev/null 2>&1 && setsid=(setsid)
    # Own session: a Ctrl-C in the caller does not hit the services directly;
    # the caller's `stop` (trap) ends them by PID.
    "${setsid[@]}" "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 &
    echo $! >"$RUN_DIR/$name.pid"
}

wait_healthy() { # NAME
    local name="$1" pid deadline
    pid="$(cat "$RUN_DIR/$name.pid")"
    deadline=$((SECONDS + HEALTH_TIMEOUT_S))
    while ! healthy "$name"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail_service "$name" "exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            fail_service "$name" "not healthy after ${HEALTH_TIMEOUT_S}s"
        fi
        sleep 0.2
    done
    log "$name: up on 127.0.0.1:$(cat "$RUN_DIR/$name.port") (pid $pid)"
}

fail_service() { # NAME REASON
    echo "[services] ERROR: $1 $2; last lines of $RUN_DIR/$1.log:" >&2
    tail -n 40 "$RUN_DIR/$1.log" >&2 || true
    stop_all
    exit 1
}

require_exe() { # PATH-OR-NAME HINT
    command -v "$1" >/dev/null 2>&1 || die "$1 not found; run scripts/install-deps.sh"
}

# ---------------------------------------------------------------- services

start_kafka() { # PORT
    require_exe "$TANSU_BIN"
    spawn kafka "$1" "$TANSU_BIN" broker \
        --listener-url "tcp://127.0.0.1:$1" \
        --advertised-listener-url "tcp://127.0.0.1:$1" \
        --storage-engine memory://tansu/
}

# Test certificates: a CA, a server certificate for 127.0.0.1/localhost, a client
# certificate (mutual TLS), and a second CA nobody trusts (for the failure tests).
make_certs() {
    require_exe openssl
    mkdir -p "$TLS_DIR"
    (
        cd "$TLS_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=gpustream test CA" \
            -keyout ca.key -out ca.pem >/dev/null 2>&1
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=untrusted CA" \
            -keyout other-ca.key -out other-ca.pem >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key \
            -out server.csr >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile server.ext -out server.pem >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=gpustream client" -keyout client.key \
            -out client.csr >/dev/null 2>&1
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile client.ext -out client.pem >/dev/null 2>&1
    ) || die "cannot make test certificates with openssl"
}

# Tansu behind stunnel: Tansu's own TLS listener does not work (see
# ../shared/docs/local-services.md), so a real TLS terminator takes the client side and
# the broker advertises the terminator's port.
start_kafka_tls() { # NAME PUBLIC_PORT BROKER_PORT MUTUAL(0|1)
    local name="$1" public="$2" inner="$3" mutual="$4"
    require_exe "$TANSU_BIN"
    require_exe stunnel4
    [[ -f "$TLS_DIR/ca.pem" ]] || make_certs
    spawn "$name-broker" "$inner" "$TANSU_BIN" broker \
        --listener-url "tcp://127.0.0.1:$inner" \
        --advertised-listener-url "tcp://127.0.0.1:$public" \
        --storage-engine memory://tansu/
    local conf="$RUN_DIR/$name.stunnel.conf"
    {
        echo "foreground = quiet"
        echo "pid ="
        echo "[$name]"
        echo "accept = 127.0.0.1:$public"
        echo "connect = 127.0.0.1:$inner"
        echo "cert = $TLS_DIR/server.pem"
        echo "key = $TLS_DIR/server.key"
        if [[ "$mutual" == 1 ]]; then
            echo "CAfile = $TLS_DIR/ca.pem"
            echo "verifyChain = yes"
            echo "requireCert = yes"
        fi
    } >"$conf"
    spawn "$name" "$public" stunnel4 "$conf"
}

start_kafka_sasl() { # PORT
    require_exe "$TANSU_BIN"
    spawn kafka-sasl "$1" "$TANSU_BIN" broker \
        --listener-url "tcp://127.0.0.1:$1" \
        --advertised-listener-url "tcp://127.0.0.1:$1" \
        --storage-engine memory://tansu/ \
        --authentication
}

start_influxdb() { # HTTP_PORT RPC_PORT
    require_exe influxd
    local dir="$RUN_DIR/influxdb"
    mkdir -p "$dir/meta" "$dir/data" "$dir/wal"
    cat >"$INFLUX_CONFIG" <<EOF
reporting-enabled = false
bind-address = "127.0.0.1:$2"

[meta]
  dir = "$dir/meta"

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$1"
  log-enabled = false

[monitor]
  store-enabled = false
EOF
    spawn influxdb "$1" influxd -config "$INFLUX_CONFIG"
}

start_s3() { # PORT
    require_exe "$MOTO_BIN"
    spawn s3 "$1" "$MOTO_BIN" -H 127.0.0.1 -p "$1"
}

start_victoria_metrics() { # PORT
    require_exe victoria-metrics
    mkdir -p "$RUN_DIR/victoria-metrics"
    spawn victoria-metrics "$1" victoria-metrics \
        -storageDataPath="$RUN_DIR/victoria-metrics" \
        -httpListenAddr="127.0.0.1:$1" \
        -retentionPeriod=1d
}

start_alertmanager() { # PORT
    require_exe prometheus-alertmanager
    local dir="$RUN_DIR/alertmanager"
    mkdir -p "$dir/data"
    cat >"$dir/alertmanager.yml" <<'EOF'
route:
  receiver: "null"
receivers:
  - name: "null"
EOF
    # Empty --cluster.listen-address disables the gossip cluster (default 0.0.0.0:9094).
    spawn alertmanager "$1" prometheus-alertmanager \
        --config.file="$dir/alertmanager.yml" \
        --storage.path="$dir/data" \
        --web.listen-address="127.0.0.1:$1" \
        --cluster.listen-address=
}

# ---------------------------------------------------------------- env file

write_env() { # SERVICE...
    local name port tmp="$ENV_FILE.tmp"
    {
        echo "# Written by scripts/services.sh start; source this file."
        echo "export GPUSTREAM_IT=1"
        for name in "$@"; do
            port="$(cat "$RUN_DIR/$name.port")"
            case "$name" in
                kafka)
                    echo "export GPUSTREAM_TEST_BROKERS=127.0.0.1:$port"
                    printf 'export GPUSTREAM_TEST_TANSU=%q\n' "$TANSU_BIN"
                    ;;
                kafka-tls)
                    echo "export GPUSTREAM_TEST_TLS_BROKERS=127.0.0.1:$port"
                    echo "export GPUSTREAM_TEST_TLS_BROKERS_PLAIN=127.0.0.1:$(cat "$RUN_DIR/$name-broker.port")"
                    printf 'export GPUSTREAM_TEST_TLS_DIR=%q\n' "$TLS_DIR"
                    ;;
                kafka-mtls)
                    echo "export GPUSTREAM_TEST_MTLS_BROKERS=127.0.0.1:$port"
                    echo "export GPUSTREAM_TEST_MTLS_BROKERS_PLAIN=127.0.0.1:$(cat "$RUN_DIR/$name-broker.port")"
                    printf 'export GPUSTREAM_TEST_TLS_DIR=%q\n' "$TLS_DIR"
                    ;;
                kafka-sasl)
                    echo "export GPUSTREAM_TEST_SASL_BROKERS=127.0.0.1:$port"
                    ;;
                influxdb)
                    echo "export GPUSTREAM_TEST_INFLUX_URL=http://127.0.0.1:$port"
                    printf 'export GPUSTREAM_TEST_INFLUXD=%q\n' "$(command -v influxd)"
                    printf 'export GPUSTREAM_TEST_INFLUX_CONFIG=%q\n' "$INFLUX_CONFIG"
                    printf 'export GPUSTREAM_TEST_INFLUX_PIDFILE=%q\n' "$RUN_DIR/influxdb.pid"
                    ;;
                s3)
                    echo "export GPUSTREAM_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
                    echo "export AWS_ENDPOINT=http://127.0.0.1:$port"
                    echo "export AWS_ALLOW_HTTP=true"
                    echo "export AWS_ACCESS_KEY_ID=test"
                    echo "export AWS_SECRET_ACCESS_KEY=test"
                    echo "export AWS_REGION=us-east-1"
                    echo "export AWS_COPY_IF_NOT_EXISTS=multipart"
                    ;;
                victoria-metrics)
                    echo "export GPUSTREAM_TEST_VM_URL=http://127.0.0.1:$port"
                    ;;
                alertmanager)
                    echo "export GPUSTREAM_TEST_ALERTMANAGER_URL=http://127.0.0.1:$port"
                    ;;
            esac
        done
    } >"$tmp"
    mv "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- commands

# Stop every service with a pid file: TERM all, wait up to 5 s, then KILL.
stop_all() {
    [[ -d "$RUN_DIR" ]] || return 0
    local pidfile name pid pids=()
    shopt -s nullglob
    for pidfile in "$RUN_DIR"/*.pid; do
        name="$(basename "$pidfile" .pid)"
        pid="$(cat "$pidfile" 2>/dev/null || true)"
        if pid_is_ours "$name" "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            log "$name: stopping (pid $pid)"
        fi
        rm -f "$pidfile"
    done
    # An influxd a test restarted itself from our config file (its PID is not
    # necessarily in the pid file any more).
    if [[ -f "$INFLUX_CONFIG" ]]; then
        for pid in $(influxd_pids_for_config); do
            [[ " ${pids[*]} " == *" $pid "* ]] && continue
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            log "influxdb: stopping restarted instance (pid $pid)"
        done
    fi
    shopt -u nullglob
    [[ ${#pids[@]} -gt 0 ]] || return 0
    local deadline=$((SECONDS + 5)) alive
    while :; do
        alive=()
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive+=("$pid")
        done
        [[ ${#alive[@]} -gt 0 ]] || break
        if ((SECONDS >= deadline)); then
            log "killing ${alive[*]} (did not exit after TERM)"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    # Reap our own children if this shell started them (start failing mid-way).
    wait 2>/dev/null || true
}

cmd_start() {
    local selected=() name c
    if [[ $# -eq 0 ]]; then
        selected=("${ALL_SERVICES[@]}")
    else
        for name in "$@"; do
            c="$(canonical "$name")"
            [[ -n "$c" ]] || die "unknown service '$name' (known: ${ALL_SERVICES[*]})"
            selected+=("$c")
        done
    fi
    command -v curl >/dev/null 2>&1 || die "curl not found; run scripts/install-deps.sh"

    stop_all
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR"

    local ports
    # One port per service, plus InfluxDB's RPC port and the brokers behind the TLS
    # terminators.
    local extra=$((${#selected[@]} + 3))
    read -r -a ports <<<"$(free_ports $((${#selected[@]} + 3)))"
    local i=0
    for name in "${selected[@]}"; do
        case "$name" in
            kafka) start_kafka "${ports[i]}" ;;
            kafka-tls) start_kafka_tls kafka-tls "${ports[i]}" "${ports[extra - 2]}" 0 ;;
            kafka-mtls) start_kafka_tls kafka-mtls "${ports[i]}" "${ports[extra - 1]}" 1 ;;
            kafka-sasl) start_kafka_sasl "${ports[i]}" ;;
            influxdb) start_influxdb "${ports[i]}" "${ports[${#selected[@]}]}" ;;
            s3) start_s3 "${ports[i]}" ;;
            victoria-metrics) start_victoria_metrics "${ports[i]}" ;;
            alertmanager) start_alertmanager "${ports[i]}" ;;
        esac
        i=$((i + 1))
    done
    # Start all first, then wait: they come up in parallel.
    for name in "${selected[@]}"; do
        wait_healthy "$name"
    done
    write_env "${selected[@]}"
    log "env written to $ENV_FILE (source it)"
}

cmd_status() {
    local names=() name c rc=0
    if [[ $# -gt 0 ]]; then
        for name in "$@"; do
            c="$(canonical "$name")"
            [[ -n "$c" ]] || die "unknown service '$name' (known: ${ALL_SERVICES[*]})"
            names+=("$c")
        done
    else
        for name in "${ALL_SERVICES[@]}"; do
            [[ -f "$RUN_DIR/$name.pid" ]] && names+=("$name")
        done
        if [[ ${#names[@]} -eq 0 ]]; then
            echo "no services started (run: scripts/services.sh start)"
            return 1
        fi
    fi
    for name in "${names[@]}"; do
        local pid port
        pid="$(cat "$RUN_DIR/$name.pid" 2>/dev/null || true)"
        port="$(cat "$RUN_DIR/$name.port" 2>/dev/null || echo '?')"
        if [[ -z "$pid" ]]; then
            printf '%-17s not started\n' "$name"
            rc=1
        elif healthy "$name"; then
            # (A test may have restarted it under another PID: health decides.)
            printf '%-17s healthy   127.0.0.1:%s (pid %s)\n' "$name" "$port" "$pid"
        elif ! kill -0 "$pid" 2>/dev/null; then
            printf '%-17s DOWN      (pid %s not running)\n' "$name" "$pid"
            rc=1
        else
            printf '%-17s UNHEALTHY 127.0.0.1:%s (pid %s)\n' "$name" "$port" "$pid"
            rc=1
        fi
    done
    return "$rc"
}

usage() {
    echo "usage: $0 start [SERVICE...] | stop | status [SERVICE...]" >&2
    echo "services: ${ALL_SERVICES[*]} (aliases: tansu, influx, moto, vm, am)" >&2
    exit 2
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"
    shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) stop_all ;;
        status) cmd_status "$@" ;;
        *) usage ;;
    esac
}

main "$@"
