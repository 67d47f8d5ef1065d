//! The Grafana dashboards against real data: a real GPU-Z log (the hot benchmark, which
//! crosses 85 °C so `gpu_temp_high` fires and resolves) goes producer → Kafka →
//! stream-processor (anomalies and 1-minute rollups) → consumer-influx → InfluxDB, all in
//! this process; then every query of every dashboard — panel targets, template variables,
//! annotations — is substituted the way Grafana does it (variables set to the ingested
//! host and GPU, a time range around the log's data, an interval) and sent to InfluxDB's
//! `/query`. Each must answer 200, without an error, with at least one non-empty value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use e2e_tests::grafana::{
    Dashboard, DashboardQuery, QueryKind, VarValue, Vars, dashboards_dir, format_interval,
    load_dashboards, substitute,
};
use gpustream_lake::Lake;
use gpustream_runtime::service::Health;
use gpustream_test_kit::lake::read_local_table;
use gpustream_test_kit::{services, unique};
use gpuz::{Identity, ParseOptions};
use producer::replay::{LogInput, ReplayOptions, replay};
use producer::sink::KafkaSink;
use serde_json::Value;
use stream_processor::detect::{Detector, default_rules};
use stream_processor::metrics::ProcessorMetrics;
use stream_processor::pipeline::{Processor, ProcessorConfig, RunStats};

/// The hot benchmark log: 2026-08-06 18:54:53 – 19:14:36 (UTC wall clock), peaks at 91.5 °C.
const LOG: &str = "nvidia-1377mhz-2x8pin_T2xic-GPU-Z-grapher_bm1.txt";
/// Host and GPU ids with regex metacharacters and a blank: the dashboards' `=~ /^$host$/`
/// filters only match them when the values are escaped as Grafana escapes them.
const HOST: &str = "rig-01.lab";
const GPU: &str = "RTX 2080 (bm1)";

fn log_path() -> PathBuf {
    gpustream_test_kit::data::shared_log(LOG)
}

fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid time")
        .timestamp_millis()
}

/// One way a user looks at the data: a time range, Grafana's interval for it, and
/// whether variables with an "All" option are set to All or to the ingested GPU.
struct Scenario {
    name: &'static str,
    from_ms: i64,
    to_ms: i64,
    interval: Duration,
    use_all: bool,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "2 h around the log, 10s buckets, the ingested host/GPU selected",
            from_ms: ms(2026, 8, 6, 18, 0, 0),
            to_ms: ms(2026, 8, 6, 20, 0, 0),
            interval: Duration::from_secs(10),
            use_all: false,
        },
        Scenario {
            name: "exactly the log's 20 minutes, 1s buckets, All where offered",
            from_ms: ms(2026, 8, 6, 18, 54, 53),
            to_ms: ms(2026, 8, 6, 19, 14, 37),
            interval: Duration::from_secs(1),
            use_all: true,
        },
        Scenario {
            name: "6 h ending after the log (the default range), 30s buckets",
            from_ms: ms(2026, 8, 6, 14, 0, 0),
            to_ms: ms(2026, 8, 6, 20, 0, 0),
            interval: Duration::from_secs(30),
            use_all: false,
        },
    ]
}

async fn query(client: &reqwest::Client, url: &str, db: &str, q: &str) -> (u16, String) {
    let r = client
        .get(format!("{url}/query"))
        .query(&[("db", db), ("q", q), ("epoch", "ms")])
        .send()
        .await
        .expect("InfluxDB reachable");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// A single number from `SELECT count(...)`, 0 when there is no series.
async fn count(client: &reqwest::Client, url: &str, db: &str, q: &str) -> u64 {
    let (_, body) = query(client, url, db, q).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    v["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

/// Checks an InfluxDB `/query` answer: HTTP 200, no `error` anywhere, at least one series
/// with at least one row holding a non-null value besides `time`. Returns the rows with
/// data, or why it failed.
fn check_answer(status: u16, body: &str) -> Result<usize, String> {
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {body}"))?;
    if let Some(e) = v.get("error") {
        return Err(format!("error: {e}"));
    }
    let results = v["results"]
        .as_array()
        .ok_or_else(|| format!("no results: {body}"))?;
    let mut rows = 0;
    for r in results {
        if let Some(e) = r.get("error") {
            return Err(format!("error: {e}"));
        }
        for s in r["series"].as_array().into_iter().flatten() {
            let columns: Vec<&str> = s["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for row in s["values"].as_array().into_iter().flatten() {
                let has_value = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .any(|(i, x)| columns.get(i) != Some(&"time") && !x.is_null());
                if has_value {
                    rows += 1;
                }
            }
        }
    }
    if rows == 0 {
        return Err(format!("no data: {body}"));
    }
    Ok(rows)
}

/// Values of a `SHOW TAG VALUES` answer.
fn tag_values(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|row| row.get(1).and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The processor's stats and the number of sample rows the replay sent.
struct Ingested {
    rows: usize,
    stats: RunStats,
}

/// Replays the log into Kafka, runs stream-processor and consumer-influx until InfluxDB
/// holds every sample, anomaly transition and rollup window, then stops both.
async fn ingest(brokers: &str, influx: &str, db: &str) -> Ingested {
    let samples = unique("dash-samples");
    let anomalies = unique("dash-anomalies");
    let rollups = unique("dash-rollups");
    let dlq = unique("dash-dlq");
    gpustream_runtime::kafka::ensure_topics(
        brokers,
        &[(&samples, 1), (&anomalies, 1), (&rollups, 1), (&dlq, 1)],
    )
    .await
    .expect("create topics");

    // producer replay, as fast as the broker takes it, timestamps read as UTC.
    let inputs = vec![LogInput {
        identity: Identity {
            host: HOST.into(),
            gpu: GPU.into(),
            gpu_index: 0,
            gpu_name: None,
        },
        path: log_path(),
    }];
    let opts = ReplayOptions {
        speed: 0.0,
        max_session_gap: Duration::from_secs(5),
        parse: ParseOptions {
            timezone: chrono_tz::UTC,
            fallback_header: None,
        },
        max_issues_logged: 5,
    };
    let brokers_owned = brokers.to_string();
    let samples_topic = samples.clone();
    let report = tokio::task::spawn_blocking(move || {
        let mut sink = KafkaSink::new(&brokers_owned, &samples_topic).expect("sink");
        sink.check_topic(Duration::from_secs(10))
            .expect("topic exists");
        replay(&inputs, &opts, &mut sink, &Arc::new(AtomicBool::new(false))).expect("replay")
    })
    .await
    .expect("replay task");
    let rows = report.delivery.delivered as usize;
    assert!(rows > 1000, "{report}");
    assert_eq!(report.delivery.failed, 0, "{report}");

    // stream-processor: lake in a temporary directory, anomalies and rollups to Kafka.
    let lake_dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(lake_dir.path().to_str().expect("utf8 path")).expect("lake");
    let cfg = ProcessorConfig {
        kafka: gpustream_runtime::kafka::KafkaSettings::plaintext(brokers),
        topic: samples.clone(),
        group: unique("dash-processor"),
        anomalies_topic: anomalies.clone(),
        dlq_topic: dlq,
        rollups_topic: rollups.clone(),
        rollup: stream_processor::rollups::RollupConfig::default(),
        flush_rows: 4000,
        flush_interval: Duration::from_millis(500),
        flush_bytes: stream_processor::pipeline::DEFAULT_FLUSH_BYTES,
    };
    let registry = prometheus::Registry::new();
    let processor = Processor::new(
        cfg,
        lake,
        Detector::new(default_rules()),
        ProcessorMetrics::new(&registry).expect("metrics"),
        Health::default(),
    )
    .expect("processor");
    let (stop_processor, stopped) = tokio::sync::oneshot::channel::<()>();
    let processor = tokio::spawn(processor.run(async move {
        let _ = stopped.await;
    }));

    // consumer-influx: samples, anomalies and rollups into `db`.
    use consumer_influx::{InfluxConfig, SinkConfig, SinkMetrics};
    let mut sink_cfg = SinkConfig::new(
        brokers,
        unique("dash-influx"),
        InfluxConfig::new(influx, db),
    );
    sink_cfg.samples_topic = samples;
    sink_cfg.anomalies_topic = Some(anomalies);
    sink_cfg.rollups_topic = Some(rollups);
    let stop_sink = tokio_util::sync::CancellationToken::new();
    let sink = tokio::spawn(consumer_influx::run(
        sink_cfg,
        SinkMetrics::unregistered().expect("metrics"),
        Health::default(),
        stop_sink.clone(),
    ));

    let client = reqwest::Client::new();
    let samples_dir = lake_dir.path().join("samples");
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut in_lake, mut in_influx) = (0, 0);
    while Instant::now() < deadline {
        in_lake = read_local_table(&samples_dir)
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>();
        in_influx = count(
            &client,
            influx,
            db,
            "SELECT count(\"seq\") FROM \"gpu_samples\"",
        )
        .await as usize;
        if in_lake >= rows && in_influx >= rows {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(in_lake, rows, "sample rows in the processor's lake");
    assert_eq!(in_influx, rows, "sample points in InfluxDB");

    // Stopping the processor closes the last rollup windows and publishes them.
    let _ = stop_processor.send(());
    let stats = tokio::time::timeout(Duration::from_secs(60), processor)
        .await
        .expect("processor stops")
        .expect("join")
        .expect("processor ok");
    assert_eq!(stats.consumed as usize, rows, "{stats:?}");
    assert!(
        stats.anomalies >= 2,
        "the benchmark log fires and resolves: {stats:?}"
    );
    assert!(
        stats.rollups >= 15,
        "20 minutes of samples make 1-minute rollups: {stats:?}"
    );

    let (mut anomaly_points, mut rollup_points) = (0, 0);
    while Instant::now() < deadline {
        anomaly_points = count(
            &client,
            influx,
            db,
            "SELECT count(\"anomaly_id\") FROM \"gpu_anomalies\"",
        )
        .await;
        rollup_points = count(
            &client,
            influx,
            db,
            "SELECT count(\"count\") FROM \"gpu_rollups_1m\"",
        )
        .await;
        if anomaly_points >= stats.anomalies && rollup_points >= stats.rollups {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_sink.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(60), sink)
        .await
        .expect("sink stops")
        .expect("join")
        .expect("sink ok");
    assert_eq!(
        anomaly_points, stats.anomalies,
        "anomaly points in InfluxDB"
    );
    assert_eq!(rollup_points, stats.rollups, "rollup points in InfluxDB");
    assert_eq!(summary.points_rejected, 0, "{summary:?}");
    Ingested { rows, stats }
}

/// Runs the dashboard's variable queries in order and picks values as a user would: the
/// ingested host and GPU, or All where offered and `use_all` is set; other variables
/// (rule, severity) get All, or every value their query returns.
async fn resolve_variables(
    client: &reqwest::Client,
    url: &str,
    db: &str,
    dashboard: &Dashboard,
    s: &Scenario,
    failures: &mut Vec<String>,
) -> Vars {
    let mut vars = Vars::new();
    for v in dashboard.variables() {
        let q = substitute(&v.query, &vars, s.from_ms, s.to_ms, s.interval);
        let (status, body) = query(client, url, db, &q).await;
        let values = tag_values(&body);
        if let Err(e) = check_answer(status, &body) {
            failures.push(format!(
                "[{}] dashboard \"{}\", variable \"{}\": {q}\n    {e}",
                s.name, dashboard.title, v.name
            ));
        }
        let ours = match v.name.as_str() {
            "host" => Some(HOST),
            "gpu" => Some(GPU),
            _ => None,
        };
        if let Some(ours) = ours
            && !values.iter().any(|x| x == ours)
        {
            failures.push(format!(
                "[{}] dashboard \"{}\", variable \"{}\" does not offer {ours:?}: {values:?}\n    {q}",
                s.name, dashboard.title, v.name
            ));
        }
        let value = match (ours, v.include_all && s.use_all, &v.all_value) {
            (_, true, Some(all)) => VarValue::All(all.clone()),
            (Some(ours), _, _) => VarValue::one(ours),
            (None, _, _) => VarValue::Values(values),
        };
        vars.insert(v.name.clone(), value);
    }
    vars
}

#[test]
fn every_dashboard_query_returns_data_from_the_real_pipeline() {
    let Some(svc) = services("every_dashboard_query_returns_data_from_the_real_pipeline") else {
        return;
    };
    let influx = svc.influx_url().to_string();
    let dashboards = load_dashboards(&dashboards_dir()).expect("dashboards");
    assert_eq!(dashboards.len(), 4, "four dashboards in grafana/dashboards");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let db = unique("dashboards").replace('-', "_");
        let created = client
            .post(format!("{influx}/query"))
            .query(&[("q", format!("CREATE DATABASE {db}"))])
            .send()
            .await
            .expect("create database");
        assert!(
            created.status().is_success(),
            "CREATE DATABASE: {created:?}"
        );
        let ingested = ingest(&svc.brokers, &influx, &db).await;
        eprintln!(
            "ingested {} samples, {} anomaly transitions, {} rollups into {db}",
            ingested.rows, ingested.stats.anomalies, ingested.stats.rollups
        );

        let mut failures = Vec::new();
        let mut checked: BTreeMap<(String, QueryKind), usize> = BTreeMap::new();
        let mut distinct = 0;
        for s in scenarios() {
            for d in &dashboards {
                let vars = resolve_variables(&client, &influx, &db, d, &s, &mut failures).await;
                let queries: Vec<DashboardQuery> = d.queries();
                if s.use_all {
                    distinct += queries.len();
                }
                for q in queries {
                    // Variables were run (and checked) while resolving them.
                    if q.kind != QueryKind::Variable {
                        let interval = q.min_interval.map_or(s.interval, |m| m.max(s.interval));
                        let sent = substitute(&q.query, &vars, s.from_ms, s.to_ms, interval);
                        let (status, body) = query(&client, &influx, &db, &sent).await;
                        if let Err(e) = check_answer(status, &body) {
                            let e: String = e.chars().take(600).collect();
                            failures.push(format!(
                                "[{}] {q}\n    sent ({}): {sent}\n    {e}",
                                s.name,
                                format_interval(interval)
                            ));
                        }
                    }
                    *checked.entry((d.file.clone(), q.kind)).or_default() += 1;
                }
            }
        }
        let total: usize = checked.values().sum();
        for ((file, kind), n) in &checked {
            eprintln!("{file}: {n} {kind} queries checked");
        }
        eprintln!(
            "{distinct} dashboard queries, {total} executions over {} scenarios",
            scenarios().len()
        );
        assert!(
            failures.is_empty(),
            "{} of {total} dashboard queries failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // Kept for inspection when something failed; dropped otherwise.
        let _ = client
            .post(format!("{influx}/query"))
            .query(&[("q", format!("DROP DATABASE {db}"))])
            .send()
            .await;
    });
}
