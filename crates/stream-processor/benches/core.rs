//! In-process core of the stream processor, one thread, no Kafka, no file system:
//!
//! - decode only: the wire decoder the processor runs, against serde_json's derived
//!   decoder (the reference the fast one is tested against) in the same run;
//! - the consumer-loop stage: `ProcessorSink::take` on every message (decode, detect,
//!   rollup windows, Arrow rows), sealed every `FLUSH_ROWS`, once decoding on the loop
//!   and once on a decoding thread beside it (the processor's default on two cores);
//! - the whole core: that plus the writer's CPU work per sealed batch (finishing the
//!   Arrow columns, zstd Parquet of samples, anomalies and rollups, in memory).
//!
//! ```sh
//! cargo test --workspace --features stream-processor/hdfs --bench core   # GPUSTREAM_BENCH_SAMPLES=N
//! ```

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use gpustream_lake::columnar::{anomalies_to_batch, rollups_to_batch};
use gpustream_lake::{encode_parquet_with, stream_writer_properties, writer_properties};
use gpustream_runtime::consumer::{Record, Sink as _};
use parquet::file::properties::WriterProperties;
use stream_processor::buffer::SealedBatch;
use stream_processor::detect::Detector;
use stream_processor::metrics::ProcessorMetrics;
use stream_processor::rollups::{RollupConfig, Windower};
use stream_processor::sink::ProcessorSink;

/// Samples per flush, as the processor's default `--flush-rows`.
const FLUSH_ROWS: usize = 100_000;

/// The writer's CPU work on a sealed batch: Arrow columns finished, Parquet encoded with
/// `props` (the processor's appends use `stream_writer_properties`).
fn encode(mut batch: SealedBatch, props: &WriterProperties) -> usize {
    let mut bytes = 0;
    for buf in batch.partitions.values_mut() {
        for hour in buf.finish_rows().expect("rows") {
            bytes += encode_parquet_with(&[hour.batch], props.clone())
                .expect("parquet")
                .len();
        }
        if !buf.anomalies.is_empty() {
            let b = anomalies_to_batch(buf.anomalies.iter().map(|(_, a)| a)).expect("anomalies");
            bytes += encode_parquet_with(&[b], props.clone())
                .expect("parquet")
                .len();
        }
        let rollups: Vec<_> = buf
            .rollups
            .iter()
            .map(|(_, r)| r)
            .chain(&buf.closing_rollups)
            .collect();
        if !rollups.is_empty() {
            let b = rollups_to_batch(rollups).expect("rollups");
            bytes += encode_parquet_with(&[b], props.clone())
                .expect("parquet")
                .len();
        }
    }
    bytes
}

fn sink(decode_threads: usize) -> (ProcessorSink, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = gpustream_lake::Lake::open(dir.path().to_str().expect("utf8")).expect("lake");
    let metrics = ProcessorMetrics::new(&prometheus::Registry::new()).expect("metrics");
    let sink = ProcessorSink::new(
        &lake,
        Detector::default(),
        Windower::new(RollupConfig::default()),
        metrics,
        decode_threads,
    )
    .expect("sink");
    (sink, dir)
}

/// Runs every payload through the sink (decoding on `decode_threads` threads beside the
/// loop, 0: on it); with `writer`, also the writer's CPU work with those Parquet settings.
fn run(
    payloads: &[Vec<u8>],
    writer: Option<&WriterProperties>,
    decode_threads: usize,
) -> (Duration, usize) {
    let (mut sink, _dir) = sink(decode_threads);
    let started = Instant::now();
    let mut bytes = 0;
    for (offset, p) in payloads.iter().enumerate() {
        let record = Record {
            topic: "gpu-samples",
            partition: (offset % 4) as i32,
            offset: offset as i64,
            key: None,
            payload: Some(p),
        };
        black_box(sink.take(&record));
        if (offset + 1) % FLUSH_ROWS == 0 {
            let batch = sink.seal();
            if let Some(props) = writer {
                bytes += encode(batch, props);
            }
        }
    }
    sink.closing();
    let batch = sink.seal();
    if let Some(props) = writer {
        bytes += encode(batch, props);
    }
    (started.elapsed(), bytes)
}

fn main() {
    let n: u64 = std::env::var("GPUSTREAM_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let payloads = common::payloads(n);
    let avg = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
    println!(
        "core bench: {n} samples of {} GPUs, {avg} B per JSON message, 1 thread (but the one line that says otherwise)",
        common::GPUS
    );
    let rate = |d: Duration| n as f64 / d.as_secs_f64();

    let t = Instant::now();
    for p in &payloads {
        black_box(gpustream::wire::decode_sample_serde(black_box(p)).expect("decode"));
    }
    let serde = t.elapsed();
    let t = Instant::now();
    let mut scratch = gpustream::wire::empty_sample();
    for p in &payloads {
        gpustream::wire::decode_sample_into(black_box(p), &mut scratch).expect("decode");
        black_box(&scratch);
    }
    let fast = t.elapsed();
    let (take, _) = run(&payloads, None, 0);
    let (take_threaded, _) = run(&payloads, None, 1);
    let (core, bytes) = run(&payloads, Some(&stream_writer_properties()), 0);
    let (core_zstd, bytes_zstd) = run(&payloads, Some(&writer_properties()), 0);

    println!(
        "decode, serde_json reference:   {:>10.0} samples/s",
        rate(serde)
    );
    println!(
        "decode, the processor's decoder: {:>10.0} samples/s ({:.2}x serde)",
        rate(fast),
        rate(fast) / rate(serde)
    );
    println!(
        "consumer-loop stage (take):      {:>10.0} samples/s",
        rate(take)
    );
    println!(
        "take, decoding on a 2nd thread:  {:>10.0} samples/s ({:.2}x the loop decoding itself)",
        rate(take_threaded),
        rate(take_threaded) / rate(take)
    );
    println!(
        "take + writer CPU (Parquet):     {:>10.0} samples/s ({:.1} MB Parquet)",
        rate(core),
        bytes as f64 / 1e6
    );
    println!(
        "take + writer CPU, zstd 3:       {:>10.0} samples/s ({:.1} MB Parquet; LZ4 / zstd: rate {:.2}, bytes {:.2})",
        rate(core_zstd),
        bytes_zstd as f64 / 1e6,
        rate(core) / rate(core_zstd),
        bytes as f64 / bytes_zstd as f64
    );
    println!(
        "core target 400000 samples/s per core: {}",
        if rate(core) >= 400_000.0 {
            "met"
        } else {
            "not met"
        }
    );
}
