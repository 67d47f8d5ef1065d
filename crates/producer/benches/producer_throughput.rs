//! Producer benchmarks, each against a baseline measured in the same run:
//!
//! 1. parse + encode: a ≥ 200 MB GPU-Z log made in memory from the real logs, read by
//!    the streaming reader (fixed buffer, line by line) into samples encoded to wire JSON,
//!    against the `csv` crate reading the same bytes (records only, and records with
//!    every field parsed as a number). Measured for the second pass alone (what the
//!    figures before the streaming reader measured) and for both passes of a replay
//!    (first pass for the whole-session marks, then the second);
//! 2. produce: the same wire payloads sent through `KafkaSink` (encode + produce + delivery
//!    reports) and through a bare librdkafka `BaseProducer` (pre-encoded payloads, same
//!    keys, same settings), each to its own fresh topic on the same broker.
//!
//! `cargo bench --workspace --bench producer_throughput` (see scripts/bench-producer.sh).
//! Env: `BENCH_LOG_MB` (default 200), `BENCH_MESSAGES` (default 200000),
//! `GPUSTREAM_TEST_BROKERS` (part 2 is skipped without it).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gpustream::Sample;
use gpuz::{Event, Identity, LogReader, LogScan, ParseOptions, parse_log};
use producer::sink::{KafkaSink, SampleSink};
use rdkafka::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn real_logs() -> Vec<PathBuf> {
    let dir = gpustream_test_kit::data::shared_gpuz_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

fn identity() -> Identity {
    Identity {
        host: "bench-host".into(),
        gpu: "gpu0".into(),
        gpu_index: 0,
        gpu_name: None,
    }
}

/// A log's text: the UTF-16BE one by its BOM, the others (GPU-Z's Latin-1) byte for byte.
fn text_of(bytes: &[u8]) -> String {
    match bytes.strip_prefix(&[0xFE, 0xFF]) {
        Some(rest) => char::decode_utf16(
            rest.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]])),
        )
        .map(|r| r.unwrap_or('\u{fffd}'))
        .collect(),
        None => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The real logs, decoded and re-encoded the way GPU-Z writes them (Latin-1), repeated
/// until `min_bytes`.
fn big_log(min_bytes: usize) -> Vec<u8> {
    let mut unit = Vec::new();
    for f in real_logs() {
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let text = text_of(&bytes);
        unit.extend(
            text.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
        if !unit.ends_with(b"\n") {
            unit.extend_from_slice(b"\r\n");
        }
    }
    let mut out = Vec::with_capacity(min_bytes + unit.len());
    while out.len() < min_bytes {
        out.extend_from_slice(&unit);
    }
    out
}

struct Figures {
    secs: f64,
    rows: u64,
}

impl Figures {
    fn show(&self, what: &str, bytes: usize) -> f64 {
        let mbs = bytes as f64 / 1e6 / self.secs;
        println!(
            "{what:<44} {:>8.3} s {:>12.0} rows/s {:>9.1} MB/s",
            self.secs,
            self.rows as f64 / self.secs,
            mbs
        );
        mbs
    }
}

/// The first pass of a replay: counts, time range, whole-session marks.
fn scan(bytes: &[u8]) -> (LogScan, Figures) {
    let t = Instant::now();
    let found = gpuz::scan(
        "big.txt",
        std::io::Cursor::new(bytes),
        &ParseOptions::default(),
    )
    .expect("scan");
    let rows = found.summary.samples;
    (
        found,
        Figures {
            secs: t.elapsed().as_secs_f64(),
            rows,
        },
    )
}

/// The second pass: read, parse, and (with `encode`) encode every sample to wire JSON,
/// then drop it. With `scan`, the marks of a first pass are applied.
fn read_pass(bytes: &[u8], scan: Option<&LogScan>, encode: bool) -> Figures {
    let t = Instant::now();
    let opts = ParseOptions::default();
    let mut reader = LogReader::new("big.txt", bytes, &identity(), &opts, scan);
    let mut buf = Vec::with_capacity(2048);
    let mut rows = 0u64;
    let mut encoded = 0usize;
    while let Some(event) = reader.next_event().expect("read") {
        if let Event::Sample(s) = event {
            rows += 1;
            if encode {
                buf.clear();
                gpustream::wire::encode_into(s, &mut buf);
                encoded += buf.len();
            } else {
                std::hint::black_box(&s);
            }
        }
    }
    std::hint::black_box(encoded);
    Figures {
        secs: t.elapsed().as_secs_f64(),
        rows,
    }
}

/// Both passes of a replay, encoding included.
fn replay_passes(bytes: &[u8]) -> Figures {
    let (found, first) = scan(bytes);
    let second = read_pass(bytes, Some(&found), true);
    Figures {
        secs: first.secs + second.secs,
        rows: second.rows,
    }
}

fn csv_records(bytes: &[u8], parse_numbers: bool) -> Figures {
    let t = Instant::now();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let mut rows = 0u64;
    let mut sum = 0.0f64;
    while rdr.read_byte_record(&mut rec).unwrap_or(false) {
        rows += 1;
        if parse_numbers {
            for f in rec.iter().skip(1) {
                if let Some(v) = std::str::from_utf8(f)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                {
                    sum += v;
                }
            }
        }
    }
    std::hint::black_box(sum);
    Figures {
        secs: t.elapsed().as_secs_f64(),
        rows,
    }
}

fn best(runs: usize, mut f: impl FnMut() -> Figures) -> Figures {
    let mut best: Option<Figures> = None;
    for _ in 0..runs {
        let r = f();
        if best.as_ref().is_none_or(|b| r.secs < b.secs) {
            best = Some(r);
        }
    }
    best.expect("at least one run")
}

fn bench_parse() {
    let mb = env_usize("BENCH_LOG_MB", 200);
    let bytes = big_log(mb * 1_000_000);
    println!(
        "== parse + encode: {:.1} MB GPU-Z log (the real logs, Latin-1, repeated), best of 3, one thread",
        bytes.len() as f64 / 1e6
    );
    let ours = best(3, || read_pass(&bytes, None, true))
        .show("producer: read+parse+encode JSON", bytes.len());
    best(3, || read_pass(&bytes, None, false))
        .show("  of which read+parse (no encode)", bytes.len());
    let both = best(3, || replay_passes(&bytes)).show(
        "producer replay: scan pass + read+parse+encode",
        bytes.len(),
    );
    best(3, || scan(&bytes).1).show("  of which the scan pass", bytes.len());
    let csv_plain =
        best(3, || csv_records(&bytes, false)).show("csv crate: ByteRecords", bytes.len());
    let csv_num = best(3, || csv_records(&bytes, true))
        .show("csv crate: ByteRecords + f64 per field", bytes.len());
    println!(
        "ratio producer / csv records = {:.2}, producer / csv records+numbers = {:.2}; replay (both passes) / csv records+numbers = {:.2}",
        ours / csv_plain,
        ours / csv_num,
        both / csv_num
    );
}

struct Count(Arc<AtomicU64>, Arc<AtomicU64>);
impl ClientContext for Count {}
impl ProducerContext for Count {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if r.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        } else {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn samples_for_produce(n: usize) -> Vec<Sample> {
    let mut out = Vec::with_capacity(n);
    'outer: loop {
        for f in real_logs() {
            let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let mut id = identity();
            id.gpu = format!("gpu{}", out.len() % 8);
            for s in parse_log("x", &bytes, &id, &ParseOptions::default()).samples {
                out.push(s);
                if out.len() == n {
                    break 'outer;
                }
            }
        }
    }
    out
}

fn produce_raw(brokers: &str, topic: &str, keys: &[String], payloads: &[Vec<u8>]) -> f64 {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let p: BaseProducer<Count> = gpustream_runtime::kafka::producer_config(brokers)
        .create_with_context(Count(ok.clone(), failed.clone()))
        .expect("raw producer");
    let t = Instant::now();
    for (k, v) in keys.iter().zip(payloads) {
        let mut rec = BaseRecord::to(topic).key(k.as_str()).payload(v.as_slice());
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(120)).expect("raw flush");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        ok.load(Ordering::Relaxed) as usize,
        payloads.len(),
        "raw: all delivered"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    secs
}

fn produce_sink(brokers: &str, topic: &str, samples: &[Sample]) -> f64 {
    let mut sink = KafkaSink::new(brokers, topic).expect("sink");
    let t = Instant::now();
    for s in samples {
        sink.send(s).expect("send");
    }
    let totals = sink.flush(Duration::from_secs(120)).expect("flush");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        totals.delivered as usize,
        samples.len(),
        "sink: all delivered"
    );
    secs
}

fn bench_produce() {
    let Ok(brokers) = std::env::var("GPUSTREAM_TEST_BROKERS") else {
        println!(
            "== produce: skipped (GPUSTREAM_TEST_BROKERS is not set; source .tools/run/services.env)"
        );
        return;
    };
    let n = env_usize("BENCH_MESSAGES", 200_000);
    let samples = samples_for_produce(n);
    let keys: Vec<String> = samples.iter().map(Sample::key).collect();
    let payloads: Vec<Vec<u8>> = samples
        .iter()
        .map(|s| gpustream::wire::encode_sample(s).expect("encode"))
        .collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    println!(
        "== produce: {n} messages ({:.1} MB of JSON, {} keys) to {brokers}, acks=all, idempotent, lz4; fresh 4-partition topic per run, best of 3",
        bytes as f64 / 1e6,
        8
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let topic = |what: &str, i: usize| {
        let name = format!("bench-{what}-{}-{i}", std::process::id());
        rt.block_on(gpustream_runtime::kafka::ensure_topics(
            &brokers,
            &[(&name, 4)],
        ))
        .expect("create topic");
        name
    };
    let (mut raw, mut ours) = (f64::MAX, f64::MAX);
    for i in 0..3 {
        // Alternate the order so neither side always gets the warmer broker.
        if i % 2 == 0 {
            raw = raw.min(produce_raw(&brokers, &topic("raw", i), &keys, &payloads));
            ours = ours.min(produce_sink(&brokers, &topic("sink", i), &samples));
        } else {
            ours = ours.min(produce_sink(&brokers, &topic("sink", i), &samples));
            raw = raw.min(produce_raw(&brokers, &topic("raw", i), &keys, &payloads));
        }
    }
    let show = |what: &str, secs: f64| {
        println!(
            "{what:<44} {secs:>8.3} s {:>12.0} msg/s {:>9.1} MB/s",
            n as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
    };
    show("raw librdkafka BaseProducer (pre-encoded)", raw);
    show("producer KafkaSink (encode + produce)", ours);
    println!("ratio KafkaSink / raw = {:.2}", raw / ours);
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one part.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    if want("parse") {
        bench_parse();
    }
    if want("produce") {
        bench_produce();
    }
}
