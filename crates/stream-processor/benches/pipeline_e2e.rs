//! End to end from the real broker: the `stream-processor` binary (consume → decode →
//! detect → rollup → Parquet lake → commit) against a bare librdkafka consumer reading
//! the same topic in the same run, and the processor's resident memory.
//!
//! ```sh
//! source .tools/run/services.env   # GPUSTREAM_TEST_BROKERS: the Tansu broker
//! cargo test --workspace --bench pipeline_e2e    # GPUSTREAM_BENCH_SAMPLES=N to resize
//! # the same topic through another build too, e.g. the previous commit's binary:
//! GPUSTREAM_BENCH_BASELINE_BIN=/tmp/stream-processor.prev cargo test --workspace --bench pipeline_e2e
//! ```
//!
//! Rates are taken from the first message consumed to the last one (for the processor:
//! to the last row published in the lake, observed on `/metrics` every 50 ms), so the
//! consumer-group join is not counted; the wall time including it is printed too.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use gpustream_test_kit::http::{http_get, metric};
use gpustream_test_kit::unique;

const PARTITIONS: i32 = 4;

fn produce(brokers: &str, topic: &str, payloads: &[Vec<u8>]) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        gpustream_runtime::kafka::producer_config(brokers)
            .create()
            .expect("producer");
    for (i, p) in payloads.iter().enumerate() {
        let key = format!("bench-host/gpu{:02}", i as u64 % common::GPUS);
        let partition = (i as u64 % common::GPUS) as i32 % PARTITIONS;
        let mut record = BaseRecord::to(topic)
            .partition(partition)
            .key(&key)
            .payload(p);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
}

/// A bare librdkafka consumer with the processor's fetch settings, assigned every
/// partition from the beginning: seconds from the first to the `n`-th message.
fn bare_consume(brokers: &str, topic: &str, n: usize) -> Duration {
    let consumer: BaseConsumer =
        gpustream_runtime::kafka::consumer_config(brokers, &unique("bare"))
            .create()
            .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let (mut got, mut bytes, mut first) = (0usize, 0usize, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while got < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            bytes += m.payload_len();
            got += 1;
        }
    }
    assert_eq!(got, n, "bare consumer read every message");
    std::hint::black_box(bytes);
    first.map(|t| t.elapsed()).unwrap_or_default()
}

fn main() {
    let Ok(brokers) = std::env::var("GPUSTREAM_TEST_BROKERS") else {
        eprintln!(
            "pipeline_e2e: skipped (source .tools/run/services.env for GPUSTREAM_TEST_BROKERS)"
        );
        return;
    };
    let n: u64 = std::env::var("GPUSTREAM_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let topic = unique("bench-e2e");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &brokers,
        &[(&topic, PARTITIONS)],
    ))
    .expect("topic");
    let payloads = common::payloads(n);
    let t = Instant::now();
    produce(&brokers, &topic, &payloads);
    println!(
        "produced {n} samples ({} B each on average) to {PARTITIONS} partitions in {:.1} s",
        payloads.iter().map(Vec::len).sum::<usize>() / payloads.len(),
        t.elapsed().as_secs_f64()
    );
    drop(payloads);

    let bare = bare_consume(&brokers, &topic, n as usize);
    let bare_rate = n as f64 / bare.as_secs_f64();
    println!(
        "bare librdkafka consumer: {bare_rate:>9.0} msg/s ({:.2} s)",
        bare.as_secs_f64()
    );

    let this = env!("CARGO_BIN_EXE_stream-processor");
    let run = processor_run(this, &brokers, &topic, n);
    run.print("stream-processor", bare_rate);
    // The same topic again through another build (e.g. the previous commit's binary):
    // the comparison the issue asks for where a change is outside the processor's code.
    if let Some(baseline) = std::env::var_os("GPUSTREAM_BENCH_BASELINE_BIN") {
        let baseline = baseline.to_string_lossy().into_owned();
        let base = processor_run(&baseline, &brokers, &topic, n);
        base.print(&format!("baseline {baseline}"), bare_rate);
        println!(
            "this build / baseline: rate {:.2}, VmHWM {:.2}",
            run.rate / base.rate,
            run.hwm_kb as f64 / base.hwm_kb.max(1) as f64
        );
    }
}

/// One processor run over the whole topic, in a consumer group of its own.
struct ProcessorRun {
    rate: f64,
    seconds: f64,
    /// From the first message to the last one consumed: the rest of `seconds` is the
    /// last batch waiting for its age bound (`--flush-interval`) and being written.
    consumed_seconds: f64,
    wall: f64,
    hwm_kb: u64,
    max_rss_kb: u64,
    median_rss_kb: u64,
}

impl ProcessorRun {
    fn print(&self, label: &str, bare_rate: f64) {
        println!(
            "{label} to lake: {:>9.0} samples/s ({:.2} s from first message to last row published; {:.2} s wall incl. group join)",
            self.rate, self.seconds, self.wall
        );
        println!(
            "{label} consumed everything in {:.2} s ({:.0} samples/s); the last batch's age bound and write took the other {:.2} s",
            self.consumed_seconds,
            self.rate * self.seconds / self.consumed_seconds.max(1e-9),
            self.seconds - self.consumed_seconds
        );
        let ratio = self.rate / bare_rate;
        println!(
            "{label} / bare consumer: {ratio:.2} (target 0.30: {})",
            if ratio >= 0.3 { "met" } else { "NOT met" }
        );
        println!(
            "{label} memory: VmHWM {:.0} MB, max sampled VmRSS {:.0} MB, median VmRSS after the first flush {:.0} MB (target 150 MB: {})",
            self.hwm_kb as f64 / 1024.0,
            self.max_rss_kb as f64 / 1024.0,
            self.median_rss_kb as f64 / 1024.0,
            if self.hwm_kb <= 150 * 1024 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}

/// Runs the processor binary `bin` from the start of `topic` to its `n`-th row in a
/// fresh lake, sampling its memory every 50 ms.
fn processor_run(bin: &str, brokers: &str, topic: &str, n: u64) -> ProcessorRun {
    let lake = tempfile::tempdir().expect("lake");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let ops = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args([
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--group",
            &unique("bench-group"),
        ])
        .args([
            "--lake",
            lake.path().to_str().expect("utf8"),
            "--metrics-addr",
            &ops,
        ])
        .args(["--anomalies-topic", &format!("{topic}-anomalies")])
        .args(["--rollups-topic", &format!("{topic}-rollups")])
        .args(["--dlq-topic", &format!("{topic}-dlq")])
        // A backlog is cut by size; a 1 s age bound keeps the tail of the run short.
        .args(["--flush-interval", "1s"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start stream-processor");
    let pid = child.id().to_string();
    let (mut first, mut max_rss, mut rss_after_first_flush) = (None, 0u64, Vec::new());
    let mut all_consumed = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let verbose = std::env::var_os("GPUSTREAM_BENCH_VERBOSE").is_some();
    let mut last_print = Instant::now();
    let done = loop {
        std::thread::sleep(Duration::from_millis(50));
        let text = http_get(&format!("http://{ops}/metrics"))
            .map(|(_, body)| body)
            .unwrap_or_default();
        let consumed = metric(&text, "gpustream_records_in_total").unwrap_or(0.0);
        let written = metric(&text, "gpustream_records_out_total").unwrap_or(0.0);
        if consumed > 0.0 {
            first.get_or_insert_with(Instant::now);
        }
        if consumed as u64 >= n {
            all_consumed.get_or_insert_with(Instant::now);
        }
        if verbose && last_print.elapsed() >= Duration::from_millis(500) {
            last_print = Instant::now();
            eprintln!(
                "{:>6.1} s: consumed {consumed}, written {written}, flushes {:?} ({:?} s), VmRSS {} MB",
                started.elapsed().as_secs_f64(),
                metric(&text, "gpustream_write_seconds_count"),
                metric(&text, "gpustream_write_seconds_sum"),
                common::rss_kb(&pid).map_or(0, |(rss, _)| rss / 1024),
            );
        }
        if let Some((rss, _)) = common::rss_kb(&pid) {
            max_rss = max_rss.max(rss);
            if written > 0.0 {
                rss_after_first_flush.push(rss);
            }
        }
        if written as u64 >= n {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "processor did not finish ({written} of {n} rows)"
        );
    };
    let hwm = common::rss_kb(&pid).map(|(_, h)| h).unwrap_or(0);
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "processor exit: {status}");
    let proc_time = done - first.unwrap_or(started);
    rss_after_first_flush.sort_unstable();
    ProcessorRun {
        rate: n as f64 / proc_time.as_secs_f64(),
        seconds: proc_time.as_secs_f64(),
        consumed_seconds: (all_consumed.unwrap_or(done) - first.unwrap_or(started)).as_secs_f64(),
        wall: (done - started).as_secs_f64(),
        hwm_kb: hwm,
        max_rss_kb: max_rss,
        median_rss_kb: rss_after_first_flush
            .get(rss_after_first_flush.len() / 2)
            .copied()
            .unwrap_or(0),
    }
}
