//! The Grafana dashboards against real data.
//!
//! **GPU dashboards (InfluxQL).** A real GPU-Z log (the hot benchmark, which crosses 85 °C
//! so `gpu_temp_high` fires and resolves) goes producer → Kafka → stream-processor
//! (anomalies and 1-minute rollups) → consumer-influx → InfluxDB, all in this process.
//! GPU-Z logs have no ECC, XID, PCIe, P-state or energy readings (only NVML has them), so
//! the panels that show those would have nothing to return: the same Kafka topic also
//! carries NVML-style samples from the fleet simulator's GPU model
//! (`gpustream_sim::fleet::model`: ECC counters, XID codes, PCIe throughput, P-state, the
//! energy counter, NVML throttle bits) for the same host and GPU and the same 20 minutes,
//! with two of its labelled faults, an ECC burst and an XID, scripted inside that window;
//! they go through the same stream-processor and consumer-influx. Then every query of every
//! dashboard — panel targets, template variables, annotations, the datasource resolved
//! through the `datasource` variable — is substituted the way Grafana does it (variables
//! set to the ingested host and GPU, a time range around the data, an interval) and sent
//! to InfluxDB's `/query`. Each must answer 200, without an error, with at least one
//! non-empty value; the XID and ECC panels must show the injected faults.
//!
//! **Pipeline dashboard (PromQL).** While they run, the two services' real `/metrics`
//! endpoints (the ops server the binaries start, on their registries) are scraped every
//! two seconds and pushed to VictoriaMetrics (`/api/v1/import/prometheus`) with a job
//! label unique to this run, as Prometheus would scrape them. Then the dashboard's
//! `label_values` variables are resolved against VictoriaMetrics and every PromQL target
//! is evaluated (`/api/v1/query`, PromQL-compatible) at the last scrape: each must return
//! at least one series with a finite value, and only series of this run's jobs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use e2e_tests::grafana::{
    DATASOURCE_UID, Dashboard, DashboardQuery, LabelValues, PROMETHEUS_DATASOURCE_UID, PromTime,
    QueryKind, QueryLanguage, VarValue, Vars, dashboards_dir, format_interval, load_dashboards,
    substitute, substitute_promql,
};
use gpustream::{Sample, Source, event_id};
use gpustream_lake::Lake;
use gpustream_runtime::service::{Health, build_info, serve_ops};
use gpustream_sim::fleet::model::{ActiveFault, GpuModel, Script};
use gpustream_sim::fleet::{FaultKind, FaultLabel};
use gpustream_test_kit::lake::read_local_table;
use gpustream_test_kit::{services, unique};
use gpuz::{Identity, ParseOptions};
use producer::replay::{LogInput, ReplayOptions, replay};
use producer::sink::KafkaSink;
use serde_json::Value;
use stream_processor::detect::{Detector, default_rules};
use stream_processor::metrics::ProcessorMetrics;
use stream_processor::pipeline::{Processor, ProcessorConfig, RunStats};
use tokio_util::sync::CancellationToken;

/// The hot benchmark log: 2026-08-06 18:54:53 – 19:14:36 (UTC wall clock), peaks at 91.5 °C.
const LOG: &str = "nvidia-1377mhz-2x8pin_T2xic-GPU-Z-grapher_bm1.txt";
/// Host and GPU ids with regex metacharacters and a blank: the dashboards' `=~ /^$host$/`
/// filters only match them when the values are escaped as Grafana escapes them.
const HOST: &str = "rig-01.lab";
const GPU: &str = "RTX 2080 (bm1)";

/// The log's first sample and its length: the simulated NVML samples cover the same span.
const LOG_START: (i32, u32, u32, u32, u32, u32) = (2026, 8, 6, 18, 54, 53);
const LOG_SECONDS: u64 = 1183;

fn log_path() -> PathBuf {
    gpustream_test_kit::data::shared_log(LOG)
}

/// NVML-style samples for [`HOST`]/[`GPU`] over the log's span, and the labelled ECC burst
/// and XID fault they contain.
struct Simulated {
    samples: Vec<Sample>,
    ecc: FaultLabel,
    xid: FaultLabel,
}

/// The XID the simulated GPU reports (79: the GPU has fallen off the bus).
const XID_CODE: u32 = 79;

/// One simulated NVML GPU (the fleet simulator's physical model, `gpustream_sim::fleet::
/// model`) sampled every second over the log's span, as the log's host and GPU, with two
/// of the simulator's labelled faults scripted at fixed ticks rather than drawn at
/// random: an ECC burst (corrected and uncorrected counters and remapped rows jump) 5
/// minutes in and an XID 12 minutes in. Everything else (load phases, power, energy
/// counter, clocks, P-state, PCIe, throttle bits) is the model's own.
fn simulated_nvml() -> Simulated {
    let (y, mo, d, h, mi, s) = LOG_START;
    let start = Utc
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid start");
    let at = |tick: u64| start + chrono::Duration::seconds(tick as i64);
    let label = |kind, from: u64, to: u64| FaultLabel {
        host: HOST.into(),
        gpu: GPU.into(),
        kind,
        start: at(from),
        end: at(to),
    };
    let faults = [
        (label(FaultKind::EccBurst, 300, 304), Script::Ecc),
        (
            label(FaultKind::Xid, 720, 721),
            Script::Xid { code: XID_CODE },
        ),
    ];
    let session = format!("sim-dashboards-{}", start.format("%Y%m%dT%H%M%SZ"));
    let mut model = GpuModel::new(14, 24.0);
    let mut active: Option<ActiveFault> = None;
    let mut samples = Vec::new();
    for tick in 0..LOG_SECONDS {
        if active.as_ref().is_some_and(|f| tick >= f.end) {
            active = None;
        }
        if let Some((l, script)) = faults.iter().find(|(l, _)| l.start == at(tick)) {
            let end = (l.end - start).num_seconds() as u64;
            active = Some(model.activate(l.kind, tick, end, script.clone(), 1.0));
        }
        let Some(metrics) = model.step(1.0, tick, active.as_ref()) else {
            continue;
        };
        samples.push(Sample {
            event_id: event_id(Source::Sim, HOST, GPU, &session, tick),
            event_time: at(tick),
            host: HOST.into(),
            gpu: GPU.into(),
            gpu_index: 0,
            // The GPU-Z log's identity has no model name either.
            gpu_name: None,
            source: Source::Sim,
            session: session.clone(),
            seq: tick,
            metrics,
            unsupported: Vec::new(),
            extra: Default::default(),
        });
    }
    let [(ecc, _), (xid, _)] = faults;
    Simulated { samples, ecc, xid }
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

/// What went in: sample rows (GPU-Z and simulated), the processor's stats, the injected
/// faults and the scrapes pushed to VictoriaMetrics.
struct Ingested {
    rows: usize,
    simulated: usize,
    stats: RunStats,
    ecc: FaultLabel,
    xid: FaultLabel,
    scrapes: ScrapeLog,
}

/// One scrape target: a service's ops endpoint, under the job name Prometheus would give it.
#[derive(Debug, Clone)]
struct Target {
    job: String,
    component: &'static str,
    addr: SocketAddr,
}

/// What the scraper did.
#[derive(Debug, Clone, Default)]
struct ScrapeLog {
    /// Timestamp of the first and the last push, epoch milliseconds.
    first_ms: i64,
    last_ms: i64,
    pushes: usize,
    /// Jobs whose exposition held a `gpustream_consumer_lag` series at least once.
    lag_seen: BTreeSet<String>,
    /// Pushes since every target had shown its lag.
    pushes_after_lag: usize,
    errors: Vec<String>,
}

/// Scrapes every target's `/metrics` and pushes each exposition to VictoriaMetrics with
/// the job and instance labels a Prometheus scrape would add, stamped with the scrape
/// time.
async fn scrape_once(
    client: &reqwest::Client,
    vm: &str,
    targets: &[Target],
    log: &Mutex<ScrapeLog>,
) {
    let now_ms = Utc::now().timestamp_millis();
    let mut lag = Vec::new();
    let mut errors = Vec::new();
    for t in targets {
        let text = match client
            .get(format!("http://{}/metrics", t.addr))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => {
                errors.push(format!("scrape {}: {e}", t.addr));
                continue;
            }
        };
        if text.contains("gpustream_consumer_lag{") {
            lag.push(t.job.clone());
        }
        let pushed = client
            .post(format!("{vm}/api/v1/import/prometheus"))
            .query(&[
                ("extra_label", format!("job={}", t.job)),
                ("extra_label", format!("instance={}", t.addr)),
                ("timestamp", now_ms.to_string()),
            ])
            .body(text)
            .send()
            .await;
        match pushed {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => errors.push(format!("push {}: HTTP {}", t.job, r.status())),
            Err(e) => errors.push(format!("push {}: {e}", t.job)),
        }
    }
    let mut log = log.lock().expect("scrape log");
    if log.pushes == 0 {
        log.first_ms = now_ms;
    }
    log.last_ms = now_ms;
    log.pushes += 1;
    let all_seen = targets.iter().all(|t| log.lag_seen.contains(&t.job));
    log.lag_seen.extend(lag);
    if all_seen {
        log.pushes_after_lag += 1;
    }
    log.errors.extend(errors);
}

/// Scrapes every two seconds until `stop`, then once more.
fn start_scraper(
    vm: String,
    targets: Vec<Target>,
    stop: CancellationToken,
) -> (Arc<Mutex<ScrapeLog>>, tokio::task::JoinHandle<()>) {
    let log = Arc::new(Mutex::new(ScrapeLog::default()));
    let shared = log.clone();
    let handle = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        loop {
            scrape_once(&client, &vm, &targets, &shared).await;
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        scrape_once(&client, &vm, &targets, &shared).await;
    });
    (log, handle)
}

/// Replays the log and the simulated NVML samples into Kafka, runs stream-processor and
/// consumer-influx (each with its `/metrics` endpoint, scraped into VictoriaMetrics) until
/// InfluxDB holds every sample, anomaly transition and rollup window, then stops both.
async fn ingest(brokers: &str, influx: &str, db: &str, vm: &str, jobs: &str) -> Ingested {
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
    let gpuz_rows = report.delivery.delivered as usize;
    assert!(gpuz_rows > 1000, "{report}");
    assert_eq!(report.delivery.failed, 0, "{report}");

    // The simulated NVML samples of the same GPU, after the log's (so the log's rollups
    // and anomalies are what they were without them; these are late for the rollups).
    let sim = simulated_nvml();
    let simulated = sim.samples.len();
    assert!(
        simulated > LOG_SECONDS as usize / 2,
        "{simulated} simulated samples"
    );
    let brokers_owned = brokers.to_string();
    let samples_topic = samples.clone();
    let to_send = sim.samples;
    tokio::task::spawn_blocking(move || {
        let sender = gpustream_test_kit::kafka::Sender::new(&brokers_owned, &samples_topic);
        for s in &to_send {
            sender.send_sample(0, s);
        }
        sender.flush();
    })
    .await
    .expect("send simulated samples");
    let rows = gpuz_rows + simulated;

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
    // Metrics wired as the binaries wire them: build info, the component's metrics, and
    // the ops endpoint (which adds the process metrics), here on a free port.
    let version = env!("CARGO_PKG_VERSION");
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let registry = prometheus::Registry::new();
    build_info(&registry, "stream-processor", version).expect("build info");
    let processor_metrics = ProcessorMetrics::new(&registry).expect("metrics");
    let processor_health = Health::default();
    let processor_addr = serve_ops(any_port, registry, processor_health.clone())
        .await
        .expect("processor ops endpoint");
    let processor = Processor::new(
        cfg,
        lake,
        Detector::new(default_rules()),
        processor_metrics,
        processor_health,
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
    let sink_registry = prometheus::Registry::new();
    build_info(&sink_registry, "consumer-influx", version).expect("build info");
    let sink_metrics = SinkMetrics::register(&sink_registry).expect("metrics");
    let sink_health = Health::default();
    let sink_addr = serve_ops(any_port, sink_registry, sink_health.clone())
        .await
        .expect("sink ops endpoint");
    let stop_sink = CancellationToken::new();
    let sink = tokio::spawn(consumer_influx::run(
        sink_cfg,
        sink_metrics,
        sink_health,
        stop_sink.clone(),
    ));

    // One job per service, as docker/prometheus.yml scrapes them.
    let targets = vec![
        Target {
            job: format!("{jobs}-stream-processor"),
            component: "stream-processor",
            addr: processor_addr,
        },
        Target {
            job: format!("{jobs}-consumer-influx"),
            component: "consumer-influx",
            addr: sink_addr,
        },
    ];
    let stop_scraper = CancellationToken::new();
    let (scrape_log, scraper) =
        start_scraper(vm.to_string(), targets.clone(), stop_scraper.clone());

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

    // Both services report their lag every 5 s (librdkafka statistics): keep scraping
    // until both have, and twice more, so the last scrapes hold every series.
    let lag_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = scrape_log.lock().expect("scrape log").pushes_after_lag >= 2;
        if done || Instant::now() > lag_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_scraper.cancel();
    scraper.await.expect("scraper");
    let scrapes = scrape_log.lock().expect("scrape log").clone();
    assert!(scrapes.errors.is_empty(), "scrapes: {:?}", scrapes.errors);
    for t in &targets {
        assert!(
            scrapes.lag_seen.contains(&t.job),
            "{} ({}) never reported gpustream_consumer_lag: {scrapes:?}",
            t.component,
            t.addr
        );
    }

    // Stopping the processor closes the last rollup windows and publishes them.
    let _ = stop_processor.send(());
    let stats = tokio::time::timeout(Duration::from_secs(60), processor)
        .await
        .expect("processor stops")
        .expect("join")
        .expect("processor ok");
    assert_eq!(stats.consumed as usize, rows, "{stats:?}");
    assert!(
        stats.late > 0,
        "the simulated samples come after the log's: {stats:?}"
    );
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
    Ingested {
        rows,
        simulated,
        stats,
        ecc: sim.ecc,
        xid: sim.xid,
        scrapes,
    }
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

/// Runs every InfluxQL query of the GPU dashboards for every scenario; returns the
/// executions per dashboard and kind, and the number of distinct queries.
async fn check_influx_dashboards(
    client: &reqwest::Client,
    influx: &str,
    db: &str,
    dashboards: &[&Dashboard],
    failures: &mut Vec<String>,
) -> (BTreeMap<(String, QueryKind), usize>, usize) {
    let mut checked: BTreeMap<(String, QueryKind), usize> = BTreeMap::new();
    let mut distinct = 0;
    for s in scenarios() {
        for d in dashboards {
            let vars = resolve_variables(client, influx, db, d, &s, failures).await;
            let queries: Vec<DashboardQuery> = d.queries();
            if s.use_all {
                distinct += queries.len();
            }
            for q in queries {
                // The checker resolved `${datasource}` to the variable's default: the
                // provisioned InfluxDB, which this test plays.
                assert_eq!(q.datasource_uid.as_deref(), Some(DATASOURCE_UID), "{q}");
                // Variables were run (and checked) while resolving them.
                if q.kind != QueryKind::Variable {
                    let interval = q.min_interval.map_or(s.interval, |m| m.max(s.interval));
                    let sent = substitute(&q.query, &vars, s.from_ms, s.to_ms, interval);
                    let (status, body) = query(client, influx, db, &sent).await;
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
    (checked, distinct)
}

/// (time in epoch ms, first column) of the rows of a `/query` answer (`epoch=ms`).
fn xid_rows(body: &str) -> Vec<(i64, i64)> {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|row| Some((row.get(0)?.as_i64()?, row.get(1)?.as_i64()?)))
        .collect()
}

/// The panels that exist for the NVML health metrics show the injected faults: the XID
/// table lists the XID at the labelled tick, and the ECC panel counts new errors inside
/// the labelled burst.
async fn check_injected_faults(
    client: &reqwest::Client,
    influx: &str,
    db: &str,
    detail: &Dashboard,
    ingested: &Ingested,
) {
    let panel = |title: &str| {
        detail
            .queries()
            .into_iter()
            .find(|q| q.panel == title)
            .unwrap_or_else(|| panic!("gpu-detail has no panel \"{title}\""))
    };
    let vars: Vars = [
        ("host".to_string(), VarValue::one(HOST)),
        ("gpu".to_string(), VarValue::one(GPU)),
    ]
    .into_iter()
    .collect();
    let s = &scenarios()[0];
    let xid = panel("XID events");
    let sent = substitute(&xid.query, &vars, s.from_ms, s.to_ms, s.interval);
    let (status, body) = query(client, influx, db, &sent).await;
    assert_eq!(status, 200, "{body}");
    let at = ingested.xid.start.timestamp_millis();
    assert!(
        xid_rows(&body).contains(&(at, i64::from(XID_CODE))),
        "XID events does not list XID {XID_CODE} injected at {}: {body}",
        ingested.xid.start
    );
    let ecc = panel("ECC errors per interval");
    let sent = substitute(&ecc.query, &vars, s.from_ms, s.to_ms, s.interval);
    let (_, body) = query(client, influx, db, &sent).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let in_burst = |t: i64| {
        let t: DateTime<Utc> = Utc.timestamp_millis_opt(t).single().unwrap_or_default();
        // A 10 s bucket holding any tick of the burst.
        t + chrono::Duration::seconds(10) > ingested.ecc.start && t < ingested.ecc.end
    };
    let new_errors: f64 = v["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter(|row| row.get(0).and_then(Value::as_i64).is_some_and(in_burst))
        .filter_map(|row| row.get(1).and_then(Value::as_f64))
        .sum();
    assert!(
        new_errors > 0.0,
        "ECC errors per interval shows no corrected errors in the burst {:?}: {body}",
        ingested.ecc
    );
}

/// GET a Prometheus-API endpoint of VictoriaMetrics; the `data` of a `success` answer.
async fn vm_get(
    client: &reqwest::Client,
    vm: &str,
    path: &str,
    params: &[(&str, String)],
) -> Result<Value, String> {
    let r = client
        .get(format!("{vm}{path}"))
        .query(params)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&body)
        .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
    if v["status"] != "success" {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(v["data"].clone())
}

/// Checks an instant query's `data`: at least one series with a finite value, each from one
/// of `jobs` when it carries a job label. Returns the number of series.
fn check_promql_answer(data: &Value, jobs: &BTreeSet<String>) -> Result<usize, String> {
    let finite = |v: &Value| {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    let series: Vec<&Value> = match data["resultType"].as_str() {
        Some("vector") => data["result"].as_array().into_iter().flatten().collect(),
        Some("scalar") => vec![data],
        other => return Err(format!("result type {other:?}: {data}")),
    };
    let mut n = 0;
    for s in series {
        if let Some(job) = s.pointer("/metric/job").and_then(Value::as_str)
            && !jobs.contains(job)
        {
            return Err(format!("a series of another job ({job}): {s}"));
        }
        let value = if data["resultType"] == "scalar" {
            &s["result"]
        } else {
            &s["value"]
        };
        if finite(value) {
            n += 1;
        }
    }
    if n == 0 {
        return Err(format!("no series with a finite value: {data}"));
    }
    Ok(n)
}

/// Resolves the pipeline dashboard's `label_values` variables against VictoriaMetrics:
/// `job` must offer this run's jobs and is set to them; the others must offer what the
/// services expose and get All (`use_all`) or every offered value.
async fn resolve_prometheus_variables(
    client: &reqwest::Client,
    vm: &str,
    dashboard: &Dashboard,
    t: PromTime,
    jobs: &BTreeSet<String>,
    use_all: bool,
) -> Result<Vars, String> {
    let mut vars = Vars::new();
    let range = [
        ("start", (t.from_ms / 1000).to_string()),
        ("end", (t.to_ms / 1000 + 1).to_string()),
    ];
    for v in dashboard.variables() {
        let lv = LabelValues::parse(&v.query)
            .ok_or_else(|| format!("variable {}: not label_values(): {}", v.name, v.query))?;
        let mut params = range.to_vec();
        if let Some(sel) = &lv.selector {
            params.push(("match[]", substitute_promql(sel, &vars, t)));
        }
        let data = vm_get(
            client,
            vm,
            &format!("/api/v1/label/{}/values", lv.label),
            &params,
        )
        .await
        .map_err(|e| format!("variable {}: {e}", v.name))?;
        let offered: BTreeSet<String> = data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let want: BTreeSet<String> = match v.name.as_str() {
            "job" => jobs.clone(),
            "component" => ["stream-processor", "consumer-influx"]
                .into_iter()
                .map(str::to_string)
                .collect(),
            _ => BTreeSet::new(),
        };
        if !want.is_subset(&offered) || offered.is_empty() {
            return Err(format!(
                "variable {} offers {offered:?}, expected at least {want:?} ({params:?})",
                v.name
            ));
        }
        let value = match (v.name.as_str(), use_all, &v.all_value) {
            ("job", _, _) => VarValue::Values(jobs.iter().cloned().collect()),
            (_, true, Some(all)) => VarValue::All(all.clone()),
            _ => VarValue::Values(offered.into_iter().collect()),
        };
        vars.insert(v.name.clone(), value);
    }
    Ok(vars)
}

/// Runs every PromQL target of the pipeline dashboard against VictoriaMetrics at the last
/// scrape, with All and with explicit values; retries for a while, since pushed samples
/// become searchable within seconds, not at once. Returns the executions.
async fn check_pipeline_dashboard(
    client: &reqwest::Client,
    vm: &str,
    dashboard: &Dashboard,
    jobs: &BTreeSet<String>,
    scrapes: &ScrapeLog,
    failures: &mut Vec<String>,
) -> usize {
    // The rate window covers every scrape (as $__rate_interval covers at least four
    // scrape intervals); the range starts just before the first.
    let span = Duration::from_millis((scrapes.last_ms - scrapes.first_ms).max(0) as u64);
    let t = PromTime {
        from_ms: scrapes.first_ms - 10_000,
        to_ms: scrapes.last_ms,
        interval: Duration::from_secs(15),
        rate_interval: Duration::from_secs((span.as_secs() + 10).max(60)),
    };
    let time = format!("{:.3}", scrapes.last_ms as f64 / 1000.0);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let mut round = Vec::new();
        let mut executed = 0;
        for use_all in [true, false] {
            let vars =
                match resolve_prometheus_variables(client, vm, dashboard, t, jobs, use_all).await {
                    Ok(v) => v,
                    Err(e) => {
                        round.push(format!("[use_all={use_all}] {e}"));
                        continue;
                    }
                };
            for q in dashboard.queries() {
                assert_eq!(
                    q.datasource_uid.as_deref(),
                    Some(PROMETHEUS_DATASOURCE_UID),
                    "{q}"
                );
                if q.kind == QueryKind::Variable {
                    continue;
                }
                executed += 1;
                let sent = substitute_promql(&q.query, &vars, t);
                let answer = vm_get(
                    client,
                    vm,
                    "/api/v1/query",
                    &[
                        ("query", sent.clone()),
                        ("time", time.clone()),
                        ("nocache", "1".to_string()),
                    ],
                )
                .await
                .and_then(|data| check_promql_answer(&data, jobs));
                if let Err(e) = answer {
                    let e: String = e.chars().take(600).collect();
                    round.push(format!(
                        "[use_all={use_all}] {q}\n    sent: {sent}\n    {e}"
                    ));
                }
            }
        }
        if round.is_empty() || Instant::now() > deadline {
            failures.extend(round);
            return executed;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[test]
fn every_dashboard_query_returns_data_from_the_real_pipeline() {
    let Some(svc) = services("every_dashboard_query_returns_data_from_the_real_pipeline") else {
        return;
    };
    let influx = svc.influx_url().to_string();
    let vm = svc.vm_url().to_string();
    let dashboards = load_dashboards(&dashboards_dir()).expect("dashboards");
    assert_eq!(dashboards.len(), 5, "five dashboards in grafana/dashboards");
    let by_language = |l: QueryLanguage| -> Vec<&Dashboard> {
        dashboards
            .iter()
            .filter(|d| d.queries().iter().all(|q| q.language == l))
            .collect()
    };
    let influx_dashboards = by_language(QueryLanguage::InfluxQl);
    let prom_dashboards = by_language(QueryLanguage::PromQl);
    assert_eq!(
        influx_dashboards.len() + prom_dashboards.len(),
        dashboards.len(),
        "every dashboard queries InfluxDB or Prometheus only"
    );
    assert_eq!(prom_dashboards.len(), 1, "the pipeline dashboard");

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
        // A regex metacharacter in the job names: the dashboard's `job=~"$job"` matches
        // them only when the values are escaped as Grafana escapes them.
        let job_prefix = unique("dash.pipeline");
        let ingested = ingest(&svc.brokers, &influx, &db, &vm, &job_prefix).await;
        eprintln!(
            "ingested {} samples ({} simulated NVML), {} anomaly transitions, {} rollups into {db}; \
             {} scrapes pushed to VictoriaMetrics over {} ms",
            ingested.rows,
            ingested.simulated,
            ingested.stats.anomalies,
            ingested.stats.rollups,
            ingested.scrapes.pushes,
            ingested.scrapes.last_ms - ingested.scrapes.first_ms
        );

        let mut failures = Vec::new();
        let (checked, distinct) =
            check_influx_dashboards(&client, &influx, &db, &influx_dashboards, &mut failures)
                .await;
        let detail = dashboards
            .iter()
            .find(|d| d.file == "gpu-detail.json")
            .expect("gpu-detail.json");
        check_injected_faults(&client, &influx, &db, detail, &ingested).await;

        let jobs: BTreeSet<String> = ["stream-processor", "consumer-influx"]
            .iter()
            .map(|c| format!("{job_prefix}-{c}"))
            .collect();
        let mut prom_executions = 0;
        for d in &prom_dashboards {
            prom_executions +=
                check_pipeline_dashboard(&client, &vm, d, &jobs, &ingested.scrapes, &mut failures)
                    .await;
        }

        let total: usize = checked.values().sum();
        for ((file, kind), n) in &checked {
            eprintln!("{file}: {n} {kind} queries checked");
        }
        eprintln!(
            "{distinct} InfluxQL dashboard queries, {total} executions over {} scenarios; \
             {prom_executions} PromQL executions",
            scenarios().len()
        );
        assert!(
            failures.is_empty(),
            "{} dashboard queries failed:\n{}",
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
