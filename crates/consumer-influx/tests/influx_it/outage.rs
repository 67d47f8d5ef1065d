//! InfluxDB unreachable: the sink retries, commits nothing, and a later run of the same
//! group writes everything.

use std::time::{Duration, Instant};

use consumer_influx::{Error, SinkMetrics};
use gpustream_test_kit::unique;

use crate::data::sample;
use crate::kafka::{Message, committed, produce, producer, sample_message};
use crate::sink::{sink_config, start, stop};
use crate::{Case, case, it_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_committed_while_influxdb_is_down() {
    let Some(env) = it_env() else { return };
    let topic = unique("it-down");
    let Case { group, db, influx } = case(&env, "it-down", &[(&topic, 1)]).await;
    let producer = producer(&env);
    let messages: Vec<Message> = (0..50)
        .map(|seq| sample_message(&topic, &sample("down-host", 0, seq)))
        .collect();
    produce(&producer, &messages).await;

    // A port nothing listens on: connection refused, retried until shutdown.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let (token, handle) = start(
        sink_config(&env, &dead, &db, &group, &topic, None),
        metrics.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while metrics.write_retries.get() < 3 {
        assert!(Instant::now() < deadline, "no retries seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match stop(token, handle).await {
        Err(Error::WriteAbandoned { points, .. }) => {
            assert!(points > 0 && points <= 50, "{points}")
        }
        other => panic!("expected WriteAbandoned, got {other:?}"),
    }
    assert_eq!(metrics.points_written.get(), 0);
    let offsets = committed(&env.brokers, &group, &[(&topic, 0)]).await;
    assert!(offsets.is_empty(), "nothing may be committed: {offsets:?}");

    // InfluxDB back: the same group writes everything.
    let (token, handle) = start(
        sink_config(&env, &env.influx_url, &db, &group, &topic, None),
        SinkMetrics::unregistered().expect("metrics"),
    );
    influx
        .wait_count("SELECT count(seq) FROM gpu_samples", 50, 60)
        .await;
    let summary = stop(token, handle).await.expect("recovery run");
    assert_eq!(summary.points_written, 50);
    let offsets = committed(&env.brokers, &group, &[(&topic, 0)]).await;
    assert_eq!(offsets.get(&(topic.clone(), 0)), Some(&50));
    influx.drop_database().await;
}
