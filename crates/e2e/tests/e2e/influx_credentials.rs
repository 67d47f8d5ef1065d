//! InfluxDB starts refusing the sink's credentials in the middle of a run: first its
//! write privilege is revoked (403), later its password is changed (401). Each time the
//! sink keeps its data, commits no offset past what InfluxDB accepted, says why on
//! /health, and carries on by itself once the privilege or the password is back; at the
//! end every sample is a point exactly once and the offsets are committed to the end.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use consumer_influx::{Credentials, InfluxConfig};
use gpustream::Metric;
use gpustream_runtime::service::Health;
use gpustream_test_kit::influxd::PrivateInflux;
use gpustream_test_kit::kafka::committed_total;
use gpustream_test_kit::samples::t0;
use gpustream_test_kit::{SampleBuilder, services, unique};

use crate::support::influx_sink::{self, InProcessSink};

const N: usize = 2400;
const REPLAY: Duration = Duration::from_secs(36);
const DB: &str = "creds";

/// An InfluxQL statement as the admin; panics unless InfluxDB accepts it within 10 s
/// (right after start-up the new admin user may not be visible to authentication yet).
async fn admin(http: &reqwest::Client, url: &str, q: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sent = http
            .post(format!("{url}/query"))
            .basic_auth("admin", Some("admin-pw"))
            .query(&[("db", DB)])
            .form(&[("q", q)])
            .send()
            .await;
        let (status, body) = match sent {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                (
                    status.as_u16(),
                    serde_json::from_str(&text).unwrap_or_default(),
                )
            }
            Err(e) => (0, serde_json::json!({ "error": e.to_string() })),
        };
        let body: serde_json::Value = body;
        if status == 200 && body["results"][0]["error"].is_null() && body["error"].is_null() {
            return body;
        }
        assert!(Instant::now() < deadline, "{q}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn points(http: &reqwest::Client, url: &str) -> u64 {
    admin(http, url, "SELECT count(seq) FROM gpu_samples").await["results"][0]["series"][0]
        ["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

/// Watches a refusal for `span`: no more than the batch in flight is written, offsets
/// stay at or below what InfluxDB holds, and /health names the status.
async fn refused_for(
    span: Duration,
    status: &str,
    ctx: (&reqwest::Client, &str, &Health, &str, &str, &str),
) {
    let (http, url, health, brokers, group, topic) = ctx;
    let start = Instant::now();
    let at_start = points(http, url).await;
    let mut named = false;
    while start.elapsed() < span {
        tokio::time::sleep(Duration::from_millis(500)).await;
        named |= health.problem().is_some_and(|p| p.contains(status));
    }
    let now = points(http, url).await;
    assert!(
        now <= at_start + 50,
        "nothing written while refused ({status}): {at_start} -> {now}"
    );
    let (b, g, t) = (brokers.to_string(), group.to_string(), topic.to_string());
    let offsets = tokio::task::spawn_blocking(move || committed_total(&b, &g, &t))
        .await
        .expect("committed");
    assert!(
        offsets as u64 <= now,
        "offsets committed past what InfluxDB holds while refused ({status}): {offsets} > {now}"
    );
    assert!(named, "/health names the {status}: {:?}", health.problem());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_privileges_and_a_changed_password_lose_nothing() {
    let Some(svc) = services("influx_credentials") else {
        return;
    };
    let influx = tokio::task::spawn_blocking(PrivateInflux::start_with_auth)
        .await
        .expect("start influxd");
    let url = influx.url.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http");
    // The first admin may be created without credentials; everything else needs them.
    let first = http
        .post(format!("{url}/query"))
        .form(&[(
            "q",
            "CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES",
        )])
        .send()
        .await
        .expect("create admin");
    let first_status = first.status();
    let first_body = first.text().await.unwrap_or_default();
    assert!(
        first_status.is_success() && !first_body.contains("\"error\""),
        "create admin: {first_status} {first_body}"
    );
    admin(&http, &url, &format!("CREATE DATABASE {DB}")).await;
    admin(&http, &url, "CREATE USER writer WITH PASSWORD 'w-1'").await;
    admin(&http, &url, &format!("GRANT WRITE ON {DB} TO writer")).await;

    let topic = unique("creds-samples");
    let group = unique("creds-group");
    gpustream_runtime::kafka::ensure_topics(&svc.brokers, &[(&topic, 2)])
        .await
        .expect("topic");
    let mut cfg = InfluxConfig::new(&url, DB);
    cfg.credentials = Some(Credentials {
        username: "writer".into(),
        password: "w-1".into(),
    });
    let InProcessSink {
        run,
        health,
        shutdown,
        ..
    } = influx_sink::start(&svc.brokers, &group, &topic, cfg);

    let samples = (0..N)
        .map(|i| {
            SampleBuilder::new("creds-host", &format!("gpu{}", i % 4))
                .seq(i as u64)
                .at(t0() + chrono::Duration::milliseconds(i as i64 * 250))
                .metric(Metric::GpuTemp, 60.0)
                .build()
        })
        .collect();
    let (replay, produced) = influx_sink::paced_replay(&svc.brokers, &topic, samples, REPLAY);
    let ctx = (
        &http,
        url.as_str(),
        &health,
        svc.brokers.as_str(),
        group.as_str(),
        topic.as_str(),
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        points(&http, &url).await > 0,
        "points written before the refusal"
    );
    admin(&http, &url, &format!("REVOKE WRITE ON {DB} FROM writer")).await;
    refused_for(Duration::from_secs(8), "403", ctx).await;
    admin(&http, &url, &format!("GRANT WRITE ON {DB} TO writer")).await;

    tokio::time::sleep(Duration::from_secs(4)).await;
    admin(&http, &url, "SET PASSWORD FOR writer = 'w-2'").await;
    refused_for(Duration::from_secs(8), "401", ctx).await;
    admin(&http, &url, "SET PASSWORD FOR writer = 'w-1'").await;

    replay.await.expect("replay");
    assert_eq!(produced.load(Ordering::Relaxed), N);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut got = 0;
    while Instant::now() < deadline {
        got = points(&http, &url).await;
        if got as usize >= N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(got as usize, N, "every sample is a point, once");
    assert!(health.problem().is_none(), "/health is good again");
    let summary = influx_sink::stop(run, &shutdown).await;
    assert_eq!(summary.points_written as usize, N, "{summary:?}");
    let total = tokio::task::spawn_blocking({
        let (b, g, t) = (svc.brokers.clone(), group.clone(), topic.clone());
        move || committed_total(&b, &g, &t)
    })
    .await
    .expect("committed");
    assert_eq!(total as usize, N, "offsets committed to the end");
    drop(influx);
}
