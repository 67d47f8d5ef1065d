#!/usr/bin/env bash
# Renders a batch-analytics HTML report in headless Chromium and saves a PNG, to check
# that the report draws without network access and to look at it.
#
#   scripts/render-report.sh [REPORT.html [OUT.png]]
#
# Without REPORT: builds the report of the real GPU-Z logs in ../shared/data/gpuz/ (six
# GPUs on one day; the real-logs integration test saves it when GPUSTREAM_REPORT_DIR is
# set) under target/batch-report/. OUT defaults to the report's name with .png.
# Needs Chromium (Debian `chromium`, installed by scripts/install-deps.sh). To look at a
# report; CI checks the rendering with the integration test
# render::report_renders_in_headless_chromium (cargo test --test integration render),
# which paints a simulated fleet's daily and fleet pages and checks the pixels and DOM.
# WIDTH and HEIGHT (pixels) set the window; the page is cut at HEIGHT.
set -euo pipefail
cd "$(dirname "$0")/.."

REPORT=${1:-}
if [ -z "$REPORT" ]; then
  DIR="$PWD/target/batch-report"
  mkdir -p "$DIR"
  GPUSTREAM_REPORT_DIR="$DIR" cargo test --workspace --test integration \
    real_logs_are_stable_across_reruns -- --nocapture >&2
  REPORT="$DIR/report-2024-01-15.html"
fi
[ -f "$REPORT" ] || { echo "no such report: $REPORT" >&2; exit 1; }
OUT=${2:-${REPORT%.html}.png}

CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
  echo "Chromium not found: apt-get install -y chromium" >&2
  exit 1
fi

# --no-sandbox: Chromium refuses to run as root otherwise (containers, CI images).
# No network is needed: the report inlines its CSS and SVG; --disable-background-networking
# keeps Chromium itself quiet.
"$CHROME" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
  --disable-background-networking --no-first-run \
  --window-size="${WIDTH:-1400},${HEIGHT:-3600}" \
  --screenshot="$OUT" "file://$(realpath "$REPORT")" >&2 2>/dev/null || {
  echo "Chromium failed to render $REPORT" >&2
  exit 1
}
[ -s "$OUT" ] || { echo "no screenshot written" >&2; exit 1; }
echo "$OUT"
