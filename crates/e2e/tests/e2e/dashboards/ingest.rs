//! Getting the data in: the log and the simulated NVML samples through Kafka,
//! stream-processor and consumer-influx into InfluxDB, with both services' `/metrics`
//! scraped into VictoriaMetrics while they run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use consumer_influx::{InfluxConfig, SinkConfig, SinkMetrics};
use gpustream::Sample;
use gpustream_lake::Lake;
use gpustream_runtime::service::{Health, build_info, serve_ops};
use gpustream_sim::fleet::FaultLabel;
use gpustream_test_kit::lake::read_local_table;
use gpustream_test_kit::unique;
use gpuz::{Identity, ParseOptions};
use producer::replay::{LogInput, ReplayOptions, replay};
use producer::sink::KafkaSink;
use stream_processor::detect::{Detector, default_rules};
use stream_processor::metrics::ProcessorMetrics;
use stream_processor::pipeline::{Processor, ProcessorConfig, RunStats};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::influx::count;
use super::scrape::{ScrapeLog, Target, start_scraper};
use super::simulated::simulated_nvml;
use super::{COMPONENTS, GPU, HOST, LOG, LOG_SECONDS};

/// What went in: sample rows (GPU-Z and simulated), the processor's stats, the injected
/// faults and the scrapes pushed to VictoriaMetrics.
pub(super) struct Ingested {
    pub(super) rows: usize,
    pub(super) simulated: usize,
    pub(super) stats: RunStats,
    pub(super) ecc: FaultLabel,
    pub(super) xid: FaultLabel,
    pub(super) scrapes: ScrapeLog,
}

fn log_path() -> PathBuf {
    gpustream_test_kit::data::shared_log(LOG)
}

/// Replays the log and the simulated NVML samples into Kafka, runs stream-processor and
/// consumer-influx (each with its `/metrics` endpoint, scraped into VictoriaMetrics) until
/// InfluxDB holds every sample, anomaly transition and rollup window, then stops both.
pub(super) async fn ingest(
    brokers: &str,
    influx: &str,
    db: &str,
    vm: &str,
    jobs: &str,
) -> Ingested {
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

    let gpuz_rows = replay_log(brokers, &samples).await;

    // The simulated NVML samples of the same GPU, after the log's (so the log's rollups
    // and anomalies are what they were without them; these are late for the rollups).
    let sim = simulated_nvml();
    let simulated = sim.samples.len();
    assert!(
        simulated > LOG_SECONDS as usize / 2,
        "{simulated} simulated samples"
    );
    send_samples(brokers, &samples, sim.samples).await;
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
        // The loop decodes itself here; the other runs use decoding threads.
        decode_threads: 0,
    };
    let (processor_metrics, processor_health, processor_addr) =
        ops_endpoint("stream-processor", |r| {
            ProcessorMetrics::new(r).expect("metrics")
        })
        .await;
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
    let mut sink_cfg = SinkConfig::new(
        brokers,
        unique("dash-influx"),
        InfluxConfig::new(influx, db),
    );
    sink_cfg.samples_topic = samples;
    sink_cfg.anomalies_topic = Some(anomalies);
    sink_cfg.rollups_topic = Some(rollups);
    let (sink_metrics, sink_health, sink_addr) = ops_endpoint("consumer-influx", |r| {
        SinkMetrics::register(r).expect("metrics")
    })
    .await;
    let stop_sink = CancellationToken::new();
    let sink = tokio::spawn(consumer_influx::run(
        sink_cfg,
        sink_metrics,
        sink_health,
        stop_sink.clone(),
    ));

    // One job per service, as docker/prometheus.yml scrapes them.
    let targets: Vec<Target> = COMPONENTS
        .into_iter()
        .zip([processor_addr, sink_addr])
        .map(|(component, addr)| Target {
            job: format!("{jobs}-{component}"),
            component,
            addr,
        })
        .collect();
    let stop_scraper = CancellationToken::new();
    let (scrape_log, scraper) =
        start_scraper(vm.to_string(), targets.clone(), stop_scraper.clone());

    let client = reqwest::Client::new();
    let samples_dir = lake_dir.path().join("samples");
    let deadline = Instant::now() + Duration::from_secs(180);
    let (in_lake, in_influx) = poll_until(
        deadline,
        async || {
            let in_lake = read_local_table(&samples_dir)
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>();
            let in_influx = count(
                &client,
                influx,
                db,
                "SELECT count(\"seq\") FROM \"gpu_samples\"",
            )
            .await as usize;
            (in_lake, in_influx)
        },
        |&(in_lake, in_influx)| in_lake >= rows && in_influx >= rows,
    )
    .await;
    assert_eq!(in_lake, rows, "sample rows in the processor's lake");
    assert_eq!(in_influx, rows, "sample points in InfluxDB");

    // Both services report their lag every 5 s (librdkafka statistics): keep scraping
    // until both have, and twice more, so the last scrapes hold every series.
    poll_until(
        Instant::now() + Duration::from_secs(30),
        async || scrape_log.lock().expect("scrape log").pushes_after_lag,
        |&pushes| pushes >= 2,
    )
    .await;
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
    let stats = stopped_task("processor", processor).await;
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

    let (anomaly_points, rollup_points) = poll_until(
        deadline,
        async || {
            let anomalies = count(
                &client,
                influx,
                db,
                "SELECT count(\"anomaly_id\") FROM \"gpu_anomalies\"",
            )
            .await;
            let rollups = count(
                &client,
                influx,
                db,
                "SELECT count(\"count\") FROM \"gpu_rollups_1m\"",
            )
            .await;
            (anomalies, rollups)
        },
        |&(anomalies, rollups)| anomalies >= stats.anomalies && rollups >= stats.rollups,
    )
    .await;
    stop_sink.cancel();
    let summary = stopped_task("sink", sink).await;
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

/// The producer's replay of the log into `topic`, as fast as the broker takes it,
/// timestamps read as UTC; the rows delivered.
async fn replay_log(brokers: &str, topic: &str) -> usize {
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
    let brokers = brokers.to_string();
    let topic = topic.to_string();
    let report = tokio::task::spawn_blocking(move || {
        let mut sink = KafkaSink::new(&brokers, &topic).expect("sink");
        sink.check_topic(Duration::from_secs(10))
            .expect("topic exists");
        replay(&inputs, &opts, &mut sink, &Arc::new(AtomicBool::new(false))).expect("replay")
    })
    .await
    .expect("replay task");
    let delivered = report.delivery.delivered as usize;
    assert!(delivered > 1000, "{report}");
    assert_eq!(report.delivery.failed, 0, "{report}");
    delivered
}

/// Sends `samples` to partition 0 of `topic` and waits until they are delivered.
async fn send_samples(brokers: &str, topic: &str, samples: Vec<Sample>) {
    let brokers = brokers.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let sender = gpustream_test_kit::kafka::Sender::new(&brokers, &topic);
        for s in &samples {
            sender.send_sample(0, s);
        }
        sender.flush();
    })
    .await
    .expect("send simulated samples");
}

/// A service's metrics wired as the binaries wire them: build info and the component's
/// metrics (`register`) on a fresh registry, served by the ops endpoint (which adds the
/// process metrics), here on a free port. The metrics, the health the endpoint reports,
/// and its address.
async fn ops_endpoint<M>(
    component: &str,
    register: impl FnOnce(&prometheus::Registry) -> M,
) -> (M, Health, SocketAddr) {
    let registry = prometheus::Registry::new();
    build_info(&registry, component, env!("CARGO_PKG_VERSION")).expect("build info");
    let metrics = register(&registry);
    let health = Health::default();
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let addr = serve_ops(any_port, registry, health.clone())
        .await
        .unwrap_or_else(|e| panic!("{component} ops endpoint: {e:?}"));
    (metrics, health, addr)
}

/// Reads with `read` every half second until `done` accepts what it read or `deadline`
/// has passed; the last value read.
async fn poll_until<T>(
    deadline: Instant,
    mut read: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    loop {
        let value = read().await;
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a stopped service's task returned, once it has ended (within a minute).
async fn stopped_task<T, E: std::fmt::Debug>(what: &str, task: JoinHandle<Result<T, E>>) -> T {
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .unwrap_or_else(|_| panic!("{what} stops"))
        .unwrap_or_else(|e| panic!("{what} join: {e}"))
        .unwrap_or_else(|e| panic!("{what} ok: {e:?}"))
}
