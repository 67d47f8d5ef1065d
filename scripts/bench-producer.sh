#!/usr/bin/env bash
# Producer benchmarks (BENCHMARKS.md, "Producer (issue 3)"): parse + encode against the csv
# crate, and KafkaSink against a bare librdkafka BaseProducer, both measured in one run.
# Release build (`cargo bench`); the produce part needs the broker of scripts/services.sh.
#   scripts/bench-producer.sh            # both parts
#   scripts/bench-producer.sh parse      # one part (parse | produce)
# Env: BENCH_LOG_MB (default 200), BENCH_MESSAGES (default 200000).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f .tools/run/services.env ]]; then
  # shellcheck disable=SC1091
  source .tools/run/services.env
fi
exec cargo bench --workspace --bench producer_throughput -- "$@"
