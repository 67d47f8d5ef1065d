//! The InfluxDB v2 write API, against VictoriaMetrics.

use std::time::{Duration, Instant};

use chrono::Utc;
use consumer_influx::{InfluxConfig, SinkConfig, SinkMetrics};
use gpustream::Metric;
use gpustream_test_kit::{unique, unique_ident};
use serde_json::Value;

use crate::data::sample;
use crate::it_env;
use crate::kafka::{Message, create_topics, produce, producer, sample_message};
use crate::sink::{fast_retry, start, stop};

/// The v2 write API (`/api/v2/write?org=&bucket=`, token header) against the one local
/// server that speaks it, VictoriaMetrics: every sample arrives as a series point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_write_api_reaches_victoria_metrics() {
    let Some(env) = it_env() else { return };
    let vm = gpustream_test_kit::services("influx_it")
        .map(|s| s.vm_url().to_string())
        .unwrap_or_default();
    let topic = unique("it-v2");
    let group = unique("it-v2-group");
    let host = unique_ident("v2host");
    create_topics(&env, &[(&topic, 1)]).await;
    const N: u64 = 90;
    let producer = producer(&env);
    // One sample per second (VictoriaMetrics keeps millisecond timestamps), within its
    // retention period (it silently drops older points).
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    let at = |seq: u64| {
        let mut s = sample(&host, 0, seq * 3);
        s.seq = seq;
        s.event_time = t0 + chrono::Duration::seconds(seq as i64);
        s
    };
    let messages: Vec<Message> = (0..N).map(|seq| sample_message(&topic, &at(seq))).collect();
    produce(&producer, &messages).await;

    let mut influx = InfluxConfig::v2(&vm, "gpu-org", "gpu-bucket");
    influx.token = Some(consumer_influx::Token("not-logged-token".into()));
    influx.retry = fast_retry();
    let mut config = SinkConfig::new(&env.brokers, &group, influx);
    config.samples_topic = topic.clone();
    config.anomalies_topic = None;
    config.rollups_topic = None;
    config.dlq_topic = None;
    config.batch_size = 50;
    config.batch_timeout = Duration::from_millis(200);
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let (token, handle) = start(config, metrics.clone());

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let selector = format!("{{__name__=\"gpu_samples_gpu_temp_c\",host=\"{host}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (values, timestamps) = loop {
        let text = http
            .get(format!("{vm}/api/v1/export"))
            .query(&[("match[]", selector.as_str())])
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        let mut values = Vec::new();
        let mut timestamps = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("export line is JSON");
            assert_eq!(v["metric"]["gpu"], "GPU 0", "{line}");
            values.extend(v["values"].as_array().cloned().unwrap_or_default());
            timestamps.extend(v["timestamps"].as_array().cloned().unwrap_or_default());
        }
        if values.len() as u64 >= N || Instant::now() > deadline {
            break (values, timestamps);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let summary = stop(token, handle).await.expect("run");
    assert_eq!(summary.points_written, N, "{summary:?}");
    assert_eq!(
        values.len() as u64,
        N,
        "every sample is a point in VictoriaMetrics"
    );
    let mut got: Vec<(i64, f64)> = timestamps
        .iter()
        .zip(&values)
        .map(|(t, v)| (t.as_i64().expect("ms"), v.as_f64().expect("value")))
        .collect();
    got.sort_by_key(|(t, _)| *t);
    for (i, (t, v)) in got.iter().enumerate() {
        let s = at(i as u64);
        assert_eq!(*t, s.event_time.timestamp_millis(), "point {i}");
        assert_eq!(Some(*v), s.metrics.get(Metric::GpuTemp), "point {i}");
    }
}
