#!/usr/bin/env bash
# One-shot: creates the pipeline's topics (docker-compose.yml service `kafka-init`).
#
# The broker runs with auto.create.topics.enable=false so a typo in a topic name fails
# loudly instead of silently creating an empty topic; these are the topics the
# binaries use (crates/runtime/src/kafka.rs). --if-not-exists makes re-runs harmless; an
# existing topic keeps its partition count (raise it with kafka-topics.sh --alter).
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP_SERVERS:-kafka:9092}"
TOPICS_CMD=/opt/kafka/bin/kafka-topics.sh

create() { # NAME PARTITIONS
    "$TOPICS_CMD" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$1" --partitions "$2" --replication-factor 1
}

# Samples are keyed by host/gpu: partitions bound how many consumers of one group
# (stream-processor, consumer-influx) can share the load.
create gpu-samples "${SAMPLES_PARTITIONS:-6}"
# Low-volume topics: one partition, as the stream-processor would create them itself.
create gpu-anomalies 1
create gpu-rollups-1m 1
create gpu-dlq 1
# Points InfluxDB refused (consumer-influx --dlq-topic).
create gpu-influx-dlq 1

"$TOPICS_CMD" --bootstrap-server "$BOOTSTRAP" --describe \
    --topic 'gpu-samples|gpu-anomalies|gpu-rollups-1m|gpu-dlq|gpu-influx-dlq'
