//! The walking skeleton end to end on real services: the six real GPU-Z logs and the
//! project's generated log go producer → Kafka → stream-processor → Parquet lake (local
//! and S3) → DataFusion, and Kafka → consumer-influx → InfluxDB. Row counts must be equal
//! at every stage and spot-checked values must match the file exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use gpustream_lake::Lake;
use gpustream_runtime::service::Health;
use gpustream_test_kit::kafka::read_topic;
use gpustream_test_kit::lake::read_local_table;
use gpustream_test_kit::{services, unique};
use gpuz::{Identity, ParseOptions};
use producer::replay::{LogInput, ReplayOptions, replay};
use producer::sink::KafkaSink;
use stream_processor::detect::{Detector, default_rules};
use stream_processor::metrics::ProcessorMetrics;
use stream_processor::pipeline::{Processor, ProcessorConfig};

fn repo() -> PathBuf {
    gpustream_test_kit::data::workspace_root()
}

fn logs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("../shared/data/gpuz"))
        .expect("../shared/data/gpuz beside the checkout")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    v.sort();
    v.push(repo().join("data/sample-gpuz-log.txt"));
    v
}

/// Independent of the producer's parser: decode (UTF-16BE BOM or Latin-1), treat NUL
/// runs as line breaks, and return (1-based line, cells) of every line starting with a date.
fn data_lines(path: &Path) -> Vec<(usize, Vec<String>)> {
    let bytes = std::fs::read(path).expect("read log");
    let text: String = if bytes.starts_with(&[0xFE, 0xFF]) {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        bytes.iter().map(|&b| b as char).collect()
    };
    let text = text.replace('\0', "\n");
    let is_date = |s: &str| {
        let b = s.as_bytes();
        b.len() == 19
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b' '
            && b[13] == b':'
            && b[0].is_ascii_digit()
    };
    text.split('\n')
        .enumerate()
        .filter_map(|(i, l)| {
            let cells: Vec<String> = l
                .trim_end_matches('\r')
                .split(',')
                .map(|c| c.trim().to_string())
                .collect();
            is_date(&cells[0]).then_some((i + 1, cells))
        })
        .collect()
}

/// GPU id of a log: its file name without extension, as the producer defaults to.
fn gpu_id(path: &Path) -> String {
    path.file_stem()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

struct Produced {
    topic: String,
    expected: BTreeMap<String, usize>,
    lines: BTreeMap<String, Vec<(usize, Vec<String>)>>,
}

fn produce_all(brokers: &str) -> Produced {
    let topic = unique("e2e-samples");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        brokers,
        &[(&topic, 3)],
    ))
    .expect("create topic");
    let mut inputs = Vec::new();
    let mut expected = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for (i, path) in logs().into_iter().enumerate() {
        let l = data_lines(&path);
        assert!(!l.is_empty(), "{}", path.display());
        expected.insert(gpu_id(&path), l.len());
        lines.insert(gpu_id(&path), l);
        inputs.push(LogInput {
            identity: Identity {
                host: "e2e host".into(),
                gpu: gpu_id(&path),
                gpu_index: i as u32,
                gpu_name: None,
            },
            path,
        });
    }
    let opts = ReplayOptions {
        speed: 0.0,
        max_session_gap: Duration::from_secs(5),
        parse: ParseOptions {
            timezone: chrono_tz_utc(),
            fallback_header: None,
        },
        max_issues_logged: 5,
    };
    let mut sink = KafkaSink::new(brokers, &topic).expect("sink");
    sink.check_topic(Duration::from_secs(10))
        .expect("topic exists");
    let report =
        replay(&inputs, &opts, &mut sink, &Arc::new(AtomicBool::new(false))).expect("replay");
    let total: usize = expected.values().sum();
    assert_eq!(report.rows.data_rows as usize, total, "{report}");
    assert_eq!(report.sent as usize, total, "{report}");
    assert_eq!(report.delivery.delivered as usize, total, "{report}");
    assert_eq!(report.delivery.failed, 0);
    Produced {
        topic,
        expected,
        lines,
    }
}

fn chrono_tz_utc() -> chrono_tz::Tz {
    chrono_tz::UTC
}

/// Runs the processor until the lake holds `total` sample rows, then shuts it down.
async fn run_processor(
    brokers: &str,
    topic: &str,
    group: &str,
    dlq_topic: &str,
    lake: Lake,
    count_rows: impl Fn() -> futures::future::BoxFuture<'static, usize>,
    total: usize,
) -> stream_processor::pipeline::RunStats {
    let registry = prometheus::Registry::new();
    let cfg = ProcessorConfig {
        kafka: gpustream_runtime::kafka::KafkaSettings::plaintext(brokers),
        topic: topic.to_string(),
        group: group.to_string(),
        anomalies_topic: unique("e2e-anomalies"),
        dlq_topic: dlq_topic.to_string(),
        rollups_topic: unique("e2e-rollups"),
        rollup: stream_processor::rollups::RollupConfig::default(),
        flush_rows: 4000,
        flush_interval: Duration::from_millis(500),
        flush_bytes: stream_processor::pipeline::DEFAULT_FLUSH_BYTES,
        decode_threads: 2,
    };
    gpustream_runtime::kafka::ensure_topics(
        brokers,
        &[(&cfg.anomalies_topic, 1), (&cfg.dlq_topic, 1)],
    )
    .await
    .expect("topics");
    let processor = Processor::new(
        cfg,
        lake,
        Detector::new(default_rules()),
        ProcessorMetrics::new(&registry).expect("metrics"),
        Health::default(),
    )
    .expect("processor");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(processor.run(async move {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut rows = 0;
    while Instant::now() < deadline {
        rows = count_rows().await;
        if rows >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = tx.send(());
    let stats = tokio::time::timeout(Duration::from_secs(60), handle)
        .await
        .expect("processor stops")
        .expect("join")
        .expect("processor ok");
    assert_eq!(rows, total, "lake rows after waiting");
    stats
}

/// Counts the rows of the `samples` table of the local lake in `lake_dir`, as a reader
/// sees it (through Delta): what [`run_processor`] waits on.
fn local_rows(lake_dir: &Path) -> impl Fn() -> futures::future::BoxFuture<'static, usize> {
    let samples = lake_dir.join("samples");
    move || {
        let d = samples.clone();
        Box::pin(async move { read_local_table(&d).iter().map(RecordBatch::num_rows).sum() })
    }
}

/// The real logs produced to a new topic, then processed into `lake` (in a new group,
/// with a new dead-letter topic) until `count_rows` sees every data row; returns what
/// was produced, the group and the processor's statistics.
fn produce_and_process(
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    lake: Lake,
    count_rows: impl Fn() -> futures::future::BoxFuture<'static, usize>,
) -> (Produced, String, stream_processor::pipeline::RunStats) {
    let produced = produce_all(brokers);
    let total: usize = produced.expected.values().sum();
    let group = unique("e2e-processor");
    let stats = rt.block_on(run_processor(
        brokers,
        &produced.topic,
        &group,
        &unique("e2e-dlq"),
        lake,
        count_rows,
        total,
    ));
    (produced, group, stats)
}

fn column_f64(b: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    let col = b.column_by_name(name)?;
    if col.is_null(row) {
        return None;
    }
    match col.data_type() {
        arrow::datatypes::DataType::Float64 => Some(col.as_primitive::<Float64Type>().value(row)),
        arrow::datatypes::DataType::Int64 => {
            Some(col.as_primitive::<Int64Type>().value(row) as f64)
        }
        _ => None,
    }
}

/// Every numeric value of a lake row: metrics and extra columns.
fn row_values(b: &RecordBatch, row: usize) -> Vec<f64> {
    let mut v: Vec<f64> = gpustream::Metric::ALL
        .iter()
        .filter_map(|m| column_f64(b, m.column(), row))
        .collect();
    let extra = b.column_by_name("extra").expect("extra").as_map();
    let values = extra.value(row);
    let vals = values.column(1).as_primitive::<Float64Type>();
    v.extend(
        (0..vals.len())
            .filter(|i| !vals.is_null(*i))
            .map(|i| vals.value(i)),
    );
    v.sort_by(f64::total_cmp);
    v
}

fn file_values(cells: &[String]) -> Vec<f64> {
    let mut v: Vec<f64> = cells[1..]
        .iter()
        .filter_map(|c| c.parse::<f64>().ok())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

#[derive(Default)]
struct LakeIndex {
    counts: HashMap<String, usize>,
    ids: HashMap<String, usize>,
    /// (gpu, seq) → (batch, row)
    by_seq: HashMap<(String, i64), (usize, usize)>,
}

fn index(batches: &[RecordBatch]) -> LakeIndex {
    let mut ix = LakeIndex::default();
    for (bi, b) in batches.iter().enumerate() {
        let gpu = b.column_by_name("gpu").expect("gpu").as_string::<i32>();
        let seq = b
            .column_by_name("seq")
            .expect("seq")
            .as_primitive::<Int64Type>();
        let id = b
            .column_by_name("event_id")
            .expect("event_id")
            .as_string::<i32>();
        for r in 0..b.num_rows() {
            *ix.counts.entry(gpu.value(r).to_string()).or_default() += 1;
            *ix.ids.entry(id.value(r).to_string()).or_default() += 1;
            ix.by_seq
                .insert((gpu.value(r).to_string(), seq.value(r)), (bi, r));
        }
    }
    ix
}

fn check_lake(p: &Produced, batches: &[RecordBatch]) {
    let ix = index(batches);
    for (gpu, n) in &p.expected {
        assert_eq!(
            ix.counts.get(gpu).copied().unwrap_or(0),
            *n,
            "{gpu}: lake rows = data rows in the file"
        );
    }
    assert!(
        ix.ids.values().all(|c| *c == 1),
        "every event id exactly once"
    );
    // Spot checks: first, middle and last data row of every file, values exactly as written.
    for (gpu, lines) in &p.lines {
        for k in [0, lines.len() / 2, lines.len() - 1] {
            let (line_no, cells) = &lines[k];
            let &(bi, r) = ix
                .by_seq
                .get(&(gpu.clone(), k as i64))
                .unwrap_or_else(|| panic!("{gpu} seq {k} in lake"));
            let b = &batches[bi];
            let t = b
                .column_by_name("event_time")
                .expect("event_time")
                .as_primitive::<TimestampMicrosecondType>()
                .value(r);
            let t = chrono::DateTime::from_timestamp_micros(t)
                .expect("time")
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            assert_eq!(t, cells[0], "{gpu} line {line_no}: timestamp");
            assert_eq!(
                row_values(b, r),
                file_values(cells),
                "{gpu} line {line_no}: values"
            );
        }
    }
}

#[test]
fn real_logs_through_kafka_into_the_local_lake() {
    let Some(svc) = services("real_logs_through_kafka_into_the_local_lake") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("utf8 path")).expect("lake");
    let (produced, group, stats) =
        produce_and_process(&rt, &svc.brokers, lake, local_rows(dir.path()));
    let total: usize = produced.expected.values().sum();

    // Kafka holds exactly one message per data row, each valid on the wire.
    let msgs = read_topic(
        &svc.brokers,
        &produced.topic,
        total,
        Duration::from_secs(60),
    );
    assert_eq!(msgs.len(), total, "messages in Kafka = data rows");
    let mut per_gpu: HashMap<String, usize> = HashMap::new();
    for payload in msgs.iter().map(|m| &m.payload) {
        let s = gpustream::wire::decode_sample(payload).expect("valid message");
        *per_gpu.entry(s.gpu).or_default() += 1;
    }
    for (gpu, n) in &produced.expected {
        assert_eq!(per_gpu.get(gpu), Some(n), "{gpu}: messages");
    }

    assert_eq!(stats.consumed as usize, total);
    assert_eq!(stats.dead_lettered, 0);
    // The hot benchmark log crosses 85 °C: the classic rule fires.
    assert!(stats.anomalies > 0, "{stats:?}");

    let batches = read_local_table(&dir.path().join("samples"));
    check_lake(&produced, &batches);

    // Every sample is counted in exactly one 1-minute rollup window (logs never go back in time).
    assert_eq!(stats.late, 0);
    let mut rolled: BTreeMap<String, usize> = BTreeMap::new();
    let mut windows = std::collections::HashSet::new();
    for b in read_local_table(&dir.path().join("rollups_1m")) {
        let gpu = b.column_by_name("gpu").expect("gpu").as_string::<i32>();
        let count = b
            .column_by_name("count")
            .expect("count")
            .as_primitive::<Int64Type>();
        let start = b
            .column_by_name("window_start")
            .expect("window_start")
            .as_primitive::<TimestampMicrosecondType>();
        for r in 0..b.num_rows() {
            *rolled.entry(gpu.value(r).to_string()).or_default() += count.value(r) as usize;
            assert!(
                windows.insert((gpu.value(r).to_string(), start.value(r))),
                "one row per GPU and window"
            );
        }
    }
    assert_eq!(rolled, produced.expected, "rollup counts per GPU");

    // DataFusion over the same lake sees the same rows, per GPU and per date.
    rt.block_on(check_analytics(
        &produced,
        Lake::open(dir.path().to_str().expect("utf8")).expect("lake"),
    ));

    // consumer-influx: the same messages land in InfluxDB, one point per data row.
    if let Some(influx) = &svc.influx_url {
        rt.block_on(check_influx(&svc.brokers, &produced, influx));
    }
    // Offsets were committed up to the end of every partition, after the files were
    // published; a partition that received nothing has no commit (-1).
    let mut ends: HashMap<i32, i64> = (0..3).map(|p| (p, -1)).collect();
    for m in &msgs {
        let e = ends.entry(m.partition).or_insert(-1);
        *e = (*e).max(m.offset + 1);
    }
    assert!(
        ends.values().filter(|o| **o > 0).count() >= 2,
        "keys spread over partitions: {ends:?}"
    );
    assert_eq!(
        gpustream_test_kit::kafka::committed(&svc.brokers, &group, &produced.topic),
        ends
    );
}

/// DataFusion (batch-analytics) over the lake: per-GPU counts, unique ids, and the daily job.
async fn check_analytics(p: &Produced, lake: Lake) {
    use batch_analytics::{LakeSession, run_daily, run_sql};
    let session = LakeSession::open(lake).await.expect("session");
    let out = run_sql(
        &session,
        "SELECT gpu, count(*) AS n, count(DISTINCT event_id) AS ids FROM samples GROUP BY gpu",
    )
    .await
    .expect("sql");
    let mut seen = BTreeMap::new();
    for b in &out.batches {
        let gpu = b.column(0).as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        let ids = b.column(2).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            assert_eq!(n.value(r), ids.value(r), "{}: distinct ids", gpu.value(r));
            seen.insert(gpu.value(r).to_string(), n.value(r) as usize);
        }
    }
    assert_eq!(seen, p.expected, "DataFusion counts per GPU");

    // The nightly job for the hot benchmark's day counts exactly that day's rows.
    let bench = p
        .lines
        .keys()
        .find(|g| g.contains("1377mhz"))
        .expect("benchmark log")
        .clone();
    let day = p.lines[&bench][0].1[0][..10].to_string();
    let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").expect("date");
    let expected_that_day: usize = p
        .lines
        .values()
        .flatten()
        .filter(|(_, c)| c[0].starts_with(&day))
        .count();
    let daily = run_daily(&session, date).await.expect("daily");
    let count_col = daily.schema.index_of("gpu_temp_c_count").ok();
    let samples_col = daily.schema.index_of("samples").expect("samples column");
    let total: i64 = daily
        .batches
        .iter()
        .map(|b| {
            let c = b.column(samples_col);
            (0..b.num_rows())
                .map(|r| c.as_primitive::<Int64Type>().value(r))
                .sum::<i64>()
        })
        .sum();
    assert_eq!(
        total as usize, expected_that_day,
        "daily_gpu samples for {day}"
    );
    assert!(count_col.is_some());
}

async fn influx_query(client: &reqwest::Client, url: &str, db: &str, q: &str) -> serde_json::Value {
    client
        .get(format!("{url}/query"))
        .query(&[("db", db), ("q", q)])
        .send()
        .await
        .expect("influx query")
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).expect("influx json"))
        .expect("influx body")
}

/// consumer-influx end to end: every sample becomes exactly one point.
async fn check_influx(brokers: &str, p: &Produced, url: &str) {
    use consumer_influx::{InfluxConfig, SinkConfig, SinkMetrics};
    let client = reqwest::Client::new();
    let db = unique("e2e").replace('-', "_");
    client
        .post(format!("{url}/query"))
        .query(&[("q", format!("CREATE DATABASE {db}"))])
        .send()
        .await
        .expect("create db");
    let mut cfg = SinkConfig::new(brokers, unique("e2e-influx"), InfluxConfig::new(url, &db));
    cfg.samples_topic = p.topic.clone();
    cfg.anomalies_topic = None;
    cfg.rollups_topic = None;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(consumer_influx::run(
        cfg,
        SinkMetrics::unregistered().expect("metrics"),
        Health::default(),
        shutdown.clone(),
    ));
    let total: usize = p.expected.values().sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut counts = BTreeMap::new();
    while Instant::now() < deadline {
        let v = influx_query(
            &client,
            url,
            &db,
            "SELECT count(seq) FROM gpu_samples GROUP BY gpu",
        )
        .await;
        counts.clear();
        for series in v["results"][0]["series"].as_array().into_iter().flatten() {
            let gpu = series["tags"]["gpu"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            counts.insert(gpu, series["values"][0][1].as_u64().unwrap_or(0) as usize);
        }
        if counts.values().sum::<usize>() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shutdown.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(60), handle)
        .await
        .expect("sink stops")
        .expect("join")
        .expect("sink ok");
    assert_eq!(
        counts, p.expected,
        "InfluxDB points per GPU (repeated seconds must not overwrite)"
    );
    assert_eq!(summary.points_written as usize, total);
    // Spot check: the last row of the benchmark log, field by field.
    let bench = p
        .lines
        .keys()
        .find(|g| g.contains("1377mhz"))
        .expect("benchmark log");
    let (line_no, cells) = p.lines[bench].last().expect("rows");
    let seq = p.lines[bench].len() - 1;
    let v = influx_query(
        &client,
        url,
        &db,
        &format!("SELECT * FROM gpu_samples WHERE gpu = '{bench}' AND seq = {seq}"),
    )
    .await;
    let series = &v["results"][0]["series"][0];
    let cols: Vec<&str> = series["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    let row = series["values"][0].as_array().expect("one point");
    let get = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .and_then(|i| row[i].as_f64())
    };
    assert_eq!(
        get("gpu_temp_c"),
        cells[3].parse::<f64>().ok(),
        "line {line_no}"
    );
    assert_eq!(
        get("core_clock_mhz"),
        cells[1].parse::<f64>().ok(),
        "line {line_no}"
    );
    assert_eq!(
        get("board_power_w"),
        cells[12].parse::<f64>().ok(),
        "line {line_no}"
    );
}

#[test]
fn real_logs_into_a_lake_on_s3() {
    let Some(svc) = services("real_logs_into_a_lake_on_s3") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bucket = gpustream_test_kit::s3::new_bucket(svc.s3_endpoint(), "lake");
    let url = format!("s3://{bucket}/gpu-lake");
    let lake = Lake::open(&url).expect("s3 lake");
    let counter = lake.clone();
    let (produced, _, _) = produce_and_process(&rt, &svc.brokers, lake, move || {
        let lake = counter.clone();
        Box::pin(async move { s3_rows(&lake).await })
    });
    // Same per-GPU counts and unique ids through DataFusion on S3, and the daily job runs there.
    rt.block_on(check_analytics(
        &produced,
        Lake::open(&url).expect("s3 lake"),
    ));
}

/// Sample rows in the lake's Parquet files on S3, read through object_store.
async fn s3_rows(lake: &Lake) -> usize {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let prefix = lake.path("samples");
    let Ok(objects) = lake
        .store()
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
    else {
        return 0;
    };
    let mut rows = 0;
    for o in objects
        .iter()
        .filter(|o| o.location.as_ref().ends_with(".parquet"))
    {
        let Ok(bytes) = lake.store().get(&o.location).await else {
            return 0;
        };
        let Ok(bytes) = bytes.bytes().await else {
            return 0;
        };
        let reader =
            parquet::file::serialized_reader::SerializedFileReader::new(bytes).expect("parquet");
        rows += parquet::file::reader::FileReader::metadata(&reader)
            .file_metadata()
            .num_rows() as usize;
    }
    rows
}

#[test]
fn poison_messages_go_to_the_dead_letter_topic_and_good_samples_all_land() {
    use rdkafka::message::{Headers, Message};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let Some(svc) =
        services("poison_messages_go_to_the_dead_letter_topic_and_good_samples_all_land")
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("poison");
    let dlq = unique("poison-dlq");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, 2), (&dlq, 1)],
    ))
    .expect("topics");

    let poison: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        br#"{"schema_version": 99}"#.to_vec(),
        br#"{"schema_version": 1, "host": "h"}"#.to_vec(),
        b"[1, 2, 3]".to_vec(),
        b"".to_vec(),
        br#"{"schema_version":1,"event_id":"x","event_time":"yesterday","host":"h","gpu":"g","gpu_index":0,"source":"gpuz","session":"s","seq":0,"metrics":{}}"#.to_vec(),
        br#"{"schema_version":1,"event_id":"x","event_time":"2024-01-01T00:00:00Z","host":"h","gpu":"g","gpu_index":0,"source":"gpuz","session":"s","seq":0,"metrics":{"no_such_metric":1}}"#.to_vec(),
    ];
    let raw: ThreadedProducer<DefaultProducerContext> =
        gpustream_runtime::kafka::producer_config(&svc.brokers)
            .create()
            .expect("raw producer");
    let send_poison = |items: &[Vec<u8>]| {
        for p in items {
            raw.send(
                BaseRecord::<str, [u8]>::to(&topic)
                    .key("e2e host/poison")
                    .payload(p),
            )
            .expect("queue poison");
        }
        raw.flush(Duration::from_secs(10)).expect("flush poison");
    };
    send_poison(&poison[..3]);
    let log =
        repo().join("../shared/data/gpuz/intel-irisxe_rleaderjoon-GPU_DashBoard_c-b3212db.txt");
    let expected = data_lines(&log).len();
    let mut sink = KafkaSink::new(&svc.brokers, &topic).expect("sink");
    let opts = ReplayOptions {
        speed: 0.0,
        max_session_gap: Duration::from_secs(1),
        parse: ParseOptions::default(),
        max_issues_logged: 0,
    };
    let input = LogInput {
        path: log,
        identity: Identity {
            host: "e2e host".into(),
            gpu: "iris".into(),
            gpu_index: 0,
            gpu_name: None,
        },
    };
    let report = replay(
        &[input],
        &opts,
        &mut sink,
        &Arc::new(AtomicBool::new(false)),
    )
    .expect("replay");
    assert_eq!(report.delivery.delivered as usize, expected);
    send_poison(&poison[3..]);

    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().to_str().expect("utf8")).expect("lake");
    let stats = rt.block_on(run_processor(
        &svc.brokers,
        &topic,
        &unique("poison-group"),
        &dlq,
        lake,
        local_rows(dir.path()),
        expected,
    ));
    assert_eq!(stats.dead_lettered as usize, poison.len(), "{stats:?}");
    assert_eq!(stats.consumed as usize, expected + poison.len());

    // Every bad message is in the DLQ, byte for byte, with the reason in a header.
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &svc.brokers)
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    rdkafka::consumer::Consumer::subscribe(&consumer, &[&dlq]).expect("subscribe");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < poison.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m.headers().expect("headers on a dead letter");
            let reason = headers
                .iter()
                .find(|h| h.key == "error")
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned());
            assert!(
                reason.as_deref().is_some_and(|r| !r.is_empty()),
                "reason header"
            );
            got.push(m.payload().unwrap_or_default().to_vec());
        }
    }
    let mut want = poison.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "dead letters");
}
