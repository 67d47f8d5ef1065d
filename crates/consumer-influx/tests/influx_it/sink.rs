//! The sink under test, started and stopped in this process.

use std::time::Duration;

use consumer_influx::{InfluxConfig, RetryPolicy, RunSummary, SinkConfig, SinkMetrics};
use gpustream_runtime::service::Health;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Env, bounded};

/// Retries quick enough for a test: 50 ms, doubling up to 500 ms.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    }
}

/// A sink that reads `topic` (and `anomalies`) as `group` and writes to `db` at
/// `influx_url`, in small batches, with short timeouts.
pub(crate) fn sink_config(
    env: &Env,
    influx_url: &str,
    db: &str,
    group: &str,
    topic: &str,
    anomalies: Option<&str>,
) -> SinkConfig {
    let mut influx = InfluxConfig::new(influx_url, db);
    influx.request_timeout = Duration::from_secs(5);
    influx.retry = fast_retry();
    let mut c = SinkConfig::new(&env.brokers, group, influx);
    c.samples_topic = topic.to_string();
    c.anomalies_topic = anomalies.map(str::to_string);
    c.batch_size = 200;
    c.batch_timeout = Duration::from_millis(200);
    c.shutdown_grace = Duration::from_secs(2);
    c
}

/// Runs the sink on a task of its own; [`stop`] ends it.
pub(crate) fn start(
    config: SinkConfig,
    metrics: SinkMetrics,
) -> (
    CancellationToken,
    JoinHandle<consumer_influx::Result<RunSummary>>,
) {
    let token = CancellationToken::new();
    let handle = tokio::spawn(consumer_influx::run(
        config,
        metrics,
        Health::default(),
        token.clone(),
    ));
    (token, handle)
}

/// Cancels the sink and waits (30 s at most) for what its run returned.
pub(crate) async fn stop(
    token: CancellationToken,
    handle: JoinHandle<consumer_influx::Result<RunSummary>>,
) -> consumer_influx::Result<RunSummary> {
    token.cancel();
    match bounded("sink shutdown", 30, handle).await {
        Ok(r) => r,
        Err(e) => panic!("sink task panicked: {e}"),
    }
}
