#!/usr/bin/env bash
# Check the systemd units in packaging/systemd/ with `systemd-analyze verify`.
#
#   scripts/check-systemd.sh
#
# Fails (exit 1) on any message verify prints, warning or error alike: systemd 252
# (Debian 12) prints unknown keys, bad values and problems of units a timer pulls in,
# yet still exits 0 for some of them, so its output is the verdict, not only its status.
#
# verify also checks that every ExecStart= binary exists and is executable. The units
# name /usr/local/bin/<binary> (where `cargo install --root /usr/local` puts them),
# which a CI machine does not have. So, ONLY for that existence check, the units are
# copied to a temporary directory with /usr/local/bin/ in their Exec*= lines rewritten to
# a directory of stand-in executables (empty shell scripts); every other line is checked
# as shipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNIT_DIR="$ROOT/packaging/systemd"

log() { echo "[check-systemd] $*"; }
die() { echo "[check-systemd] ERROR: $*" >&2; exit 1; }

command -v systemd-analyze >/dev/null 2>&1 \
    || die "systemd-analyze not found (apt package systemd; scripts/install-deps.sh installs it)"

shopt -s nullglob
units=("$UNIT_DIR"/*.service "$UNIT_DIR"/*.timer)
shopt -u nullglob
[[ ${#units[@]} -gt 0 ]] || die "no units in $UNIT_DIR"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/units" "$tmp/bin"

for unit in "${units[@]}"; do
    # Exec*= lines only, after any of systemd's command prefixes (-@:+!).
    sed -E "s#^(Exec[A-Za-z]*=[-@:+!]*)/usr/local/bin/#\\1$tmp/bin/#" \
        "$unit" >"$tmp/units/$(basename "$unit")"
    # A stand-in for each /usr/local/bin/<binary> the unit starts.
    while read -r exe; do
        printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/$exe"
        chmod +x "$tmp/bin/$exe"
    done < <(sed -nE 's#^Exec[A-Za-z]*=[-@:+!]*/usr/local/bin/([^ ]+).*#\1#p' "$unit")
done

log "systemd-analyze verify: ${units[*]##*/}"
set +e
# --man=no: a Documentation=man: link is not a reason to fail on a machine without man.
out="$(cd "$tmp/units" && systemd-analyze verify --man=no ./*.service ./*.timer 2>&1)"
rc=$?
set -e
# Messages name the temporary copies; show the shipped paths instead.
out="${out//$tmp\/units/$UNIT_DIR}"
out="${out//$tmp\/bin/\/usr\/local\/bin}"
if [[ $rc -ne 0 || -n "$out" ]]; then
    echo "$out" >&2
    die "systemd-analyze verify: exit $rc, $(grep -c '' <<<"$out") line(s) of output (must be 0 and none)"
fi
log "OK: ${#units[@]} units verified, no warnings"

# The hardening must not erode: systemd's own exposure score of each service (0 = fully
# sandboxed, 10 = none), computed offline from the unit file, must stay at most 2.5
# (they score 1.5-1.9 as shipped; a unit without any hardening scores about 9.6).
for unit in "$tmp"/units/*.service; do
    if ! score="$(cd "$tmp/units" && systemd-analyze security --offline=true --threshold=25 \
        --no-pager "./${unit##*/}" 2>&1)"; then
        echo "$score" | tail -n 30 >&2
        die "${unit##*/}: exposure level above 2.5 (systemd-analyze security)"
    fi
    log "${unit##*/}: $(tail -n 1 <<<"$score" | sed -E 's/.*(exposure level)[^:]*: /\1 /')"
done
