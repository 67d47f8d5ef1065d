# syntax=docker/dockerfile:1
#
# One image for the four gpustream binaries (producer, stream-processor,
# consumer-influx, batch-analytics); docker-compose.yml picks the binary per service
# with `entrypoint:`.
#
#   docker build -t gpustream:local .
#   docker run --rm gpustream:local producer --help

FROM rust:1-bookworm AS builder

# rdkafka's `cmake-build` feature compiles librdkafka from source: it needs cmake and a
# C++ compiler; libcurl/pkg-config are what librdkafka's build probes for.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake g++ libcurl4-openssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Cache mounts keep the crate registry and compiled dependencies between builds, so a
# source change rebuilds only our crates. The target dir is a cache mount, not a layer,
# so the binaries are copied out of it within the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p producer -p stream-processor -p consumer-influx -p batch-analytics \
    && mkdir -p /out \
    && cp target/release/producer target/release/stream-processor \
          target/release/consumer-influx target/release/batch-analytics /out/


FROM debian:bookworm-slim

# ca-certificates: TLS to S3 or InfluxDB endpoints; curl: the compose healthchecks
# probe the services' /health endpoints with it (it also brings libcurl4).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libcurl4 \
    && rm -rf /var/lib/apt/lists/*

# Fixed ids so bind-mounted lake or log directories can be chowned to match.
RUN groupadd --system --gid 10001 gpustream \
    && useradd --system --uid 10001 --gid gpustream --home-dir /var/lib/gpustream \
        --shell /usr/sbin/nologin gpustream \
    && install -d -o gpustream -g gpustream /var/lib/gpustream

COPY --from=builder /out/ /usr/local/bin/
# The sample GPU-Z log, so `producer replay` has something to send out of the box.
COPY data/ /opt/gpustream/data/

# Writable working directory: a relative `--lake ./lake` lands here.
WORKDIR /var/lib/gpustream
USER gpustream:gpustream
ENV RUST_LOG=info

CMD ["producer", "--help"]
