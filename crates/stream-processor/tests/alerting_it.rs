//! Alert routing against a real Alertmanager and plain webhooks.
//!
//! Each test starts its own `prometheus-alertmanager` (as scripts/services.sh does: no
//! gossip cluster, 127.0.0.1, a free port), whose webhook receiver is an HTTP listener
//! inside the test, with 1-second group_wait/group_interval. Runs when GPUSTREAM_IT=1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{TimeZone, Utc};
use gpustream::{AnomalyEvent, AnomalyState, Metric, Metrics, Sample, Source};
use gpustream_test_kit::alertmanager::PrivateAlertmanager;
use gpustream_test_kit::free_port;
use serde_json::Value;
use stream_processor::alerting::{AlertConfig, Alerter};
use stream_processor::detect::{Detector, default_rules};
use tokio::sync::mpsc;

#[derive(Clone)]
struct Sink {
    tx: mpsc::UnboundedSender<(String, Value)>,
    /// Requests to /flaky answered 500 before one is accepted.
    flaky_left: Arc<AtomicUsize>,
}

/// An HTTP listener on 127.0.0.1 that hands every JSON body it receives (with its path) to
/// the test; `/flaky` fails its first requests.
async fn listener(flaky_failures: usize) -> (String, mpsc::UnboundedReceiver<(String, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = Sink {
        tx,
        flaky_left: Arc::new(AtomicUsize::new(flaky_failures)),
    };
    async fn take(State(s): State<Sink>, path: axum::http::Uri, body: String) -> StatusCode {
        let path = path.path().to_string();
        if path == "/flaky"
            && s.flaky_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        let _ = s.tx.send((path, v));
        StatusCode::OK
    }
    let app = axum::Router::new()
        .route("/am", post(take))
        .route("/hook", post(take))
        .route("/flaky", post(take))
        .with_state(sink);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, rx)
}

/// A GPU that runs hot (92 °C) for 20 s, then cools to 70 °C: the default rules fire
/// `gpu_temp_critical` (and more) and resolve them.
fn hot_episode(host: &str) -> (Vec<AnomalyEvent>, Vec<AnomalyEvent>) {
    let start = Utc::now().timestamp() - 120;
    let mut d = Detector::new(default_rules());
    let mut out = Vec::new();
    for i in 0..60 {
        let mut m = Metrics::default();
        m.set(
            Metric::GpuTemp,
            if (10..30).contains(&i) { 92.0 } else { 70.0 },
        );
        let s = Sample {
            event_id: format!("{host}-{i}"),
            event_time: Utc.timestamp_opt(start + i, 0).single().expect("time"),
            host: host.into(),
            gpu: "gpu1".into(),
            gpu_index: 1,
            gpu_name: None,
            source: Source::Sim,
            session: "s".into(),
            seq: i as u64,
            metrics: m,
            unsupported: vec![],
            extra: Default::default(),
        };
        d.observe(&s, &mut out);
    }
    out.into_iter()
        .partition(|e| e.state == AnomalyState::Firing)
}

/// Waits for Alertmanager notifications until one alert with `anomaly_id` in `status`
/// arrived; returns that alert.
async fn wait_am(
    rx: &mut mpsc::UnboundedReceiver<(String, Value)>,
    anomaly_id: &str,
    status: &str,
    hooks: &mut Vec<Value>,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("no {status} notification for {anomaly_id} from Alertmanager")
            })
            .expect("listener alive");
        match got.0.as_str() {
            "/am" => {
                let alerts = got.1["alerts"].as_array().cloned().unwrap_or_default();
                if let Some(a) = alerts
                    .into_iter()
                    .find(|a| a["labels"]["anomaly_id"] == anomaly_id && a["status"] == status)
                {
                    return a;
                }
            }
            _ => hooks.push(got.1),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_and_resolved_alerts_reach_alertmanager_and_the_webhook() {
    if gpustream_test_kit::services("alerting_it").is_none() {
        return;
    }
    let (listen, mut rx) = listener(0).await;
    let am = PrivateAlertmanager::start(&format!("{listen}/am"));
    let registry = prometheus::Registry::new();
    let alerter = Alerter::start(
        AlertConfig {
            alertmanager_url: Some(am.url.clone()),
            webhook_url: Some(format!("{listen}/hook")),
            ..Default::default()
        },
        Some(&registry),
    )
    .expect("alerter")
    .expect("configured");
    let host = format!("am-test-{}", std::process::id());
    let (firing, resolved) = hot_episode(&host);
    let critical = firing
        .iter()
        .find(|e| e.rule == "gpu_temp_critical")
        .expect("gpu_temp_critical fired")
        .clone();
    assert!(resolved.iter().any(|e| e.anomaly_id == critical.anomaly_id));

    let mut hooks = Vec::new();
    alerter.dispatch(&firing);
    let a = wait_am(&mut rx, &critical.anomaly_id, "firing", &mut hooks).await;
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "gpu_temp_critical", "{a}");
    assert_eq!(labels["severity"], "critical", "{a}");
    assert_eq!(labels["host"], host.as_str(), "{a}");
    assert_eq!(labels["gpu"], "gpu1", "{a}");
    assert_eq!(labels["gpu_index"], "1", "{a}");
    assert_eq!(labels["source"], "sim", "{a}");
    assert_eq!(labels["metric"], "gpu_temp_c", "{a}");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("above 90")),
        "{a}"
    );

    alerter.dispatch(&resolved);
    let r = wait_am(&mut rx, &critical.anomaly_id, "resolved", &mut hooks).await;
    assert_eq!(r["labels"], a["labels"], "{r}");
    // Alertmanager's own API agrees: the alert is no longer active.
    let active: Value = reqwest::get(format!(
        "{}/api/v2/alerts?active=true&filter=anomaly_id%3D%22{}%22",
        am.url, critical.anomaly_id
    ))
    .await
    .expect("query")
    .text()
    .await
    .ok()
    .and_then(|t| serde_json::from_str(&t).ok())
    .expect("json");
    assert_eq!(active.as_array().map(Vec::len), Some(0), "{active}");

    // The plain webhook got both batches, each transition exactly as on the Kafka topic.
    alerter.finish(Duration::from_secs(10)).await;
    while let Ok((path, v)) = rx.try_recv() {
        if path == "/hook" {
            hooks.push(v);
        }
    }
    let delivered: Vec<AnomalyEvent> = hooks
        .iter()
        .flat_map(|v| {
            serde_json::from_value::<Vec<AnomalyEvent>>(v.clone()).expect("anomaly events")
        })
        .collect();
    let expected: Vec<AnomalyEvent> = firing.iter().chain(resolved.iter()).cloned().collect();
    assert_eq!(delivered, expected);
    let sent = |dest: &str| {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "stream_processor_alerts_sent_total")
            .flat_map(|f| f.get_metric().to_vec())
            .filter(|m| m.get_label().iter().any(|l| l.value() == dest))
            .map(|m| m.get_counter().get_value())
            .sum::<f64>()
    };
    // At least one request per dispatch (the worker may split a dispatch in two).
    assert!(sent("alertmanager") >= 2.0);
    assert!(sent("webhook") >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_and_a_dead_destination_never_blocks() {
    if gpustream_test_kit::services("alerting_it").is_none() {
        return;
    }
    // Two failures, then success: delivered once, on the third attempt.
    let (listen, mut rx) = listener(2).await;
    let alerter = Alerter::start(
        AlertConfig {
            webhook_url: Some(format!("{listen}/flaky")),
            ..Default::default()
        },
        None,
    )
    .expect("alerter")
    .expect("configured");
    let (firing, _) = hot_episode("retry-host");
    alerter.dispatch(&firing);
    let mut got: Vec<AnomalyEvent> = Vec::new();
    while got.len() < firing.len() {
        let (path, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("delivered after retries")
            .expect("listener");
        assert_eq!(path, "/flaky");
        got.extend(serde_json::from_value::<Vec<AnomalyEvent>>(body).expect("events"));
    }
    assert_eq!(got, firing);
    alerter.finish(Duration::from_secs(5)).await;
    assert!(rx.try_recv().is_err(), "delivered twice");

    // Nothing listens: dispatch still returns at once, overflow is dropped and counted,
    // and shutdown waits no longer than its grace.
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let registry = prometheus::Registry::new();
    let alerter = Alerter::start(
        AlertConfig {
            webhook_url: Some(dead),
            queue: 4,
            timeout: Duration::from_millis(500),
            ..Default::default()
        },
        Some(&registry),
    )
    .expect("alerter")
    .expect("configured");
    let t0 = Instant::now();
    for _ in 0..100 {
        alerter.dispatch(&firing);
    }
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    let dropped: f64 = registry
        .gather()
        .iter()
        .filter(|f| f.name() == "stream_processor_alerts_dropped_total")
        .flat_map(|f| f.get_metric().to_vec())
        .map(|m| m.get_counter().get_value())
        .sum();
    assert!(dropped >= (100 * firing.len() - 20) as f64, "{dropped}");
    let t0 = Instant::now();
    alerter.finish(Duration::from_secs(1)).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}
