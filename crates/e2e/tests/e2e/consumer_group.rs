//! Two stream-processor instances in one consumer group on the real broker: they split
//! the topic's partitions, one is killed with SIGKILL mid-run, the other takes its
//! partitions over, and together they write every sample to the lake exactly once.

use crate::support;

use std::time::{Duration, Instant};

use gpustream_test_kit::http::metric;
use gpustream_test_kit::kafka::Sender;
use gpustream_test_kit::lake::lake_ids;
use gpustream_test_kit::samples::t0;
use gpustream_test_kit::{services, unique};
use support::{Proc, sample, wait_lake};

const PARTITIONS: i32 = 4;
/// Samples per partition, produced over ~`PARTITIONS * PER_PARTITION / RATE` seconds.
const PER_PARTITION: u64 = 1500;
/// Samples per second over all partitions.
const RATE: u64 = 400;

#[test]
fn two_instances_split_partitions_and_write_each_sample_once() {
    let Some(svc) = services("two_instances_split_partitions_and_write_each_sample_once") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("group");
    let group = unique("group-g");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, PARTITIONS), (&format!("{topic}-dlq"), 1)],
    ))
    .expect("topics");
    let lake = tempfile::tempdir().expect("lake dir");
    let lake_str = lake.path().to_str().expect("utf8").to_string();
    let flags = ["--flush-interval", "300ms", "--flush-rows", "97"];
    let mut a = Proc::start(&svc.brokers, &topic, &group, &lake_str, &flags);
    let mut b = Proc::start(&svc.brokers, &topic, &group, &lake_str, &flags);

    // One GPU per partition, produced at a steady pace in the background.
    let brokers = svc.brokers.clone();
    let topic_owned = topic.clone();
    let producer = std::thread::spawn(move || {
        let sender = Sender::new(&brokers, &topic_owned);
        let mut ids = Vec::new();
        let started = Instant::now();
        for i in 0..PER_PARTITION {
            for p in 0..PARTITIONS {
                let s = sample(
                    &format!("gpu{p}"),
                    i,
                    t0() + chrono::Duration::seconds(i as i64),
                    50.0 + (i % 20) as f64,
                );
                sender.send_sample(p, &s);
                ids.push(s.event_id);
            }
            // Pace: the whole run spans the join, the split, the kill and the takeover.
            let due = Duration::from_millis(1000 * (i + 1) * PARTITIONS as u64 / RATE);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        sender.flush();
        ids
    });

    // Both instances join and split the partitions between them.
    let assigned = |p: &Proc| metric(&p.metrics(), "gpustream_assigned_partitions");
    let consumed = |p: &Proc| metric(&p.metrics(), "gpustream_records_in_total");
    let deadline = Instant::now() + Duration::from_secs(30);
    let split = loop {
        let (na, nb) = (assigned(&a), assigned(&b));
        let (ca, cb) = (consumed(&a), consumed(&b));
        if let (Some(na), Some(nb), Some(ca), Some(cb)) = (na, nb, ca, cb)
            && na >= 1.0
            && nb >= 1.0
            && na + nb == PARTITIONS as f64
            && ca > 0.0
            && cb > 0.0
        {
            break (na, nb);
        }
        assert!(
            Instant::now() < deadline,
            "the two instances never split the {PARTITIONS} partitions (assigned {na:?}/{nb:?}, consumed {ca:?}/{cb:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("split: instance A {} partitions, B {}", split.0, split.1);
    // Let both publish for a while before one dies.
    std::thread::sleep(Duration::from_secs(2));
    let b_wrote = metric(&b.metrics(), "gpustream_records_out_total").unwrap_or(0.0);
    assert!(
        b_wrote > 0.0,
        "instance B published samples before it was killed"
    );

    // SIGKILL B mid-run: A takes all partitions over after B's session times out.
    let _ = b.child.kill();
    let _ = b.child.wait();
    let killed_at = Instant::now();
    let took_over = a.wait_metric(
        "gpustream_assigned_partitions",
        Duration::from_secs(30),
        |v| v == PARTITIONS as f64,
    );
    assert_eq!(
        took_over,
        Some(PARTITIONS as f64),
        "instance A took every partition over"
    );
    eprintln!("takeover {:?} after the kill", killed_at.elapsed());

    let expected = producer.join().expect("producer thread");
    assert_eq!(expected.len() as u64, PER_PARTITION * PARTITIONS as u64);
    let took = wait_lake(lake.path(), expected.len(), Duration::from_secs(45));
    let status = a.terminate(Duration::from_secs(20));
    assert!(status.success(), "graceful stop: {status}");
    assert!(took.is_some(), "every sample reached the lake");

    let (ids, strays) = lake_ids(lake.path());
    assert!(strays.is_empty(), "no temporary files visible: {strays:?}");
    let dupes: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dupes.is_empty(), "duplicated event ids: {dupes:?}");
    let missing = expected.iter().filter(|id| !ids.contains_key(*id)).count();
    assert_eq!(missing, 0, "samples missing from the lake");
    assert_eq!(ids.len(), expected.len());
}
