//! `consumer-influx` run in-process on a topic of its own, and a producer that sends
//! samples at an even pace: what the InfluxDB outage and credential tests share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use consumer_influx::{InfluxConfig, RetryPolicy, RunSummary, SinkConfig, SinkMetrics};
use gpustream::Sample;
use gpustream_runtime::service::Health;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running in-process sink and what a test watches it through.
pub struct InProcessSink {
    pub run: JoinHandle<consumer_influx::Result<RunSummary>>,
    pub metrics: SinkMetrics,
    pub health: Health,
    pub shutdown: CancellationToken,
}

/// Starts the sink on `topic` (samples only: no anomalies, rollups or dead letters) with
/// small batches and quick retries, so that an outage of seconds shows within a test.
pub fn start(brokers: &str, group: &str, topic: &str, mut influx: InfluxConfig) -> InProcessSink {
    influx.request_timeout = Duration::from_secs(2);
    influx.retry = RetryPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    let mut sink = SinkConfig::new(brokers, group, influx);
    sink.samples_topic = topic.to_string();
    sink.anomalies_topic = None;
    sink.rollups_topic = None;
    sink.dlq_topic = None;
    sink.batch_size = 50;
    sink.batch_timeout = Duration::from_millis(200);
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let health = Health::default();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(consumer_influx::run(
        sink,
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    InProcessSink {
        run,
        metrics,
        health,
        shutdown,
    }
}

/// Cancels the sink and waits (at most 30 s) for its run to end; panics unless it ends
/// well. What the run reports.
pub async fn stop(
    run: JoinHandle<consumer_influx::Result<RunSummary>>,
    shutdown: &CancellationToken,
) -> RunSummary {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("sink stops")
        .expect("sink task")
        .expect("sink run")
}

/// Sends `samples` to `topic` in order, evenly spread over `over` (as a replay would);
/// the counter says how many were delivered so far.
pub fn paced_replay(
    brokers: &str,
    topic: &str,
    samples: Vec<Sample>,
    over: Duration,
) -> (JoinHandle<()>, Arc<AtomicUsize>) {
    let producer: FutureProducer = gpustream_runtime::kafka::producer_config(brokers)
        .create()
        .expect("producer");
    let topic = topic.to_string();
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let task = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let step = over / samples.len().max(1) as u32;
        for (i, s) in samples.iter().enumerate() {
            tokio::time::sleep_until(start + step * i as u32).await;
            let payload = gpustream::wire::encode_sample(s).expect("encode");
            producer
                .send(
                    FutureRecord::to(&topic).key(&s.key()).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .expect("delivered");
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    (task, produced)
}
