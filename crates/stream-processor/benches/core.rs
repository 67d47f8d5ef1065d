//! In-process core of the stream processor, one thread: decode → detect → rollup →
//! Parquet encode, against decoding alone in the same run.
//!
//! ```sh
//! cargo test --workspace --bench core            # GPUSTREAM_BENCH_SAMPLES=N to resize
//! ```
//!
//! Prints samples/s of both paths and their ratio. The Parquet step is the lake writer's
//! own encoder (`lake_writer::encode_samples`: per-hour partitions, zstd, one file per
//! flush of `FLUSH_ROWS`), in memory: no file system, no Kafka.

mod common;

use std::hint::black_box;
use std::time::Instant;

use gpustream::{AnomalyEvent, Sample};
use gpustream_lake::columnar::{anomalies_to_batch, rollups_to_batch};
use gpustream_lake::encode_parquet;
use stream_processor::detect::Detector;
use stream_processor::rollups::{RollupConfig, Windower};

/// Samples per flush, as the processor's default `--flush-rows`.
const FLUSH_ROWS: usize = 100_000;

fn encode_flush(
    samples: &[Sample],
    anomalies: &[AnomalyEvent],
    rollups: &[gpustream::rollup::Rollup],
) -> usize {
    let mut bytes = 0;
    for (_, _, file) in stream_processor::lake_writer::encode_samples(samples).expect("samples") {
        bytes += file.len();
    }
    if !anomalies.is_empty() {
        let batch = anomalies_to_batch(anomalies.iter()).expect("anomalies");
        bytes += encode_parquet(&[batch]).expect("parquet").len();
    }
    if !rollups.is_empty() {
        let batch = rollups_to_batch(rollups.iter()).expect("rollups");
        bytes += encode_parquet(&[batch]).expect("parquet").len();
    }
    bytes
}

fn main() {
    let n: u64 = std::env::var("GPUSTREAM_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let payloads = common::payloads(n);
    let avg = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
    println!(
        "core bench: {n} samples of {} GPUs, {avg} B per JSON message, 1 thread",
        common::GPUS
    );

    // Baseline: decoding only.
    let t = Instant::now();
    for p in &payloads {
        black_box(gpustream::wire::decode_sample(black_box(p)).expect("decode"));
    }
    let decode = t.elapsed();

    // The core: what the processor does per message, and per flush.
    let t = Instant::now();
    let mut detector = Detector::default();
    let mut windower = Windower::new(RollupConfig::default());
    let (mut samples, mut anomalies, mut rollups, mut closed) = (
        Vec::with_capacity(FLUSH_ROWS),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut parquet_bytes = 0;
    let mut anomaly_count = 0;
    for p in &payloads {
        let s = gpustream::wire::decode_sample(p).expect("decode");
        detector.observe(&s, &mut anomalies);
        windower.observe(&s, 0, &mut closed);
        rollups.extend(closed.drain(..).map(|(_, r)| r));
        samples.push(s);
        if samples.len() >= FLUSH_ROWS {
            parquet_bytes += encode_flush(&samples, &anomalies, &rollups);
            anomaly_count += anomalies.len();
            samples.clear();
            anomalies.clear();
            rollups.clear();
        }
    }
    windower.close_all(&mut closed);
    rollups.extend(closed.drain(..).map(|(_, r)| r));
    parquet_bytes += encode_flush(&samples, &anomalies, &rollups);
    anomaly_count += anomalies.len();
    let core = t.elapsed();

    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!(
        "decode only:                          {:>10.0} samples/s ({:.2} s)",
        rate(decode),
        decode.as_secs_f64()
    );
    println!(
        "decode+detect+rollup+parquet encode:  {:>10.0} samples/s ({:.2} s; {anomaly_count} anomaly events, {:.1} MB Parquet)",
        rate(core),
        core.as_secs_f64(),
        parquet_bytes as f64 / 1e6
    );
    println!(
        "core / decode-only: {:.2}; core target 500000 samples/s per core: {}",
        rate(core) / rate(decode),
        if rate(core) >= 500_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
