//! The whole path: samples and anomalies (and garbage) from Kafka land in InfluxDB
//! exactly once, and a second run of the group resumes after the committed offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use consumer_influx::SinkMetrics;
use gpustream::{AnomalyState, Metric};
use gpustream_test_kit::unique;
use serde_json::Value;

use crate::data::{EXTRA_NAMES, HOSTS, anomaly, sample};
use crate::influx::ql_str;
use crate::kafka::{Message, committed, produce, producer, sample_message};
use crate::sink::{sink_config, start, stop};
use crate::{Case, case, it_env};

const SAMPLE_PARTITIONS: i32 = 3;
const ROWS_PER_GPU: u64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_and_anomalies_reach_influxdb_and_offsets_follow_writes() {
    let Some(env) = it_env() else { return };
    let topic = unique("it-samples");
    let anomalies_topic = unique("it-anomalies");
    let Case { group, db, influx } = case(
        &env,
        "it",
        &[(&topic, SAMPLE_PARTITIONS), (&anomalies_topic, 1)],
    )
    .await;

    // Produce: samples of two GPUs per tricky host, garbage, anomalies.
    let producer = producer(&env);
    let mut expected = Vec::new();
    for (host, _) in HOSTS {
        for gpu_index in 0..2 {
            for seq in 0..ROWS_PER_GPU {
                expected.push(sample(host, gpu_index, seq));
            }
        }
    }
    let mut messages: Vec<Message> = expected.iter().map(|s| sample_message(&topic, s)).collect();
    let garbage: &[&[u8]] = &[b"not json", b"{\"schema_version\":99}", b""];
    for g in garbage {
        messages.push((topic.as_str(), "garbage".to_string(), g.to_vec()));
    }
    let message = "GPU \"hot\" at C:\\temp, 91.5 °C\nsecond line";
    for ev in [
        anomaly(AnomalyState::Firing, message),
        anomaly(AnomalyState::Resolved, "cleared"),
    ] {
        messages.push((
            anomalies_topic.as_str(),
            ev.key(),
            serde_json::to_vec(&ev).expect("json"),
        ));
    }
    messages.push((
        anomalies_topic.as_str(),
        "garbage".to_string(),
        b"{\"state\":\"firing\"}".to_vec(),
    ));
    produce(&producer, &messages).await;
    let n = expected.len() as u64;
    let sample_messages = n + garbage.len() as u64;

    // First run: everything lands, then shut down.
    let config = || {
        sink_config(
            &env,
            &env.influx_url,
            &db,
            &group,
            &topic,
            Some(&anomalies_topic),
        )
    };
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let (token, handle) = start(config(), metrics.clone());
    influx
        .wait_count("SELECT count(seq) FROM gpu_samples", n, 90)
        .await;
    influx
        .wait_count("SELECT count(anomaly_id) FROM gpu_anomalies", 2, 30)
        .await;
    let summary = stop(token, handle).await.expect("first run");
    assert_eq!(summary.messages, sample_messages + 3, "{summary:?}");
    assert_eq!(summary.decode_errors, 4, "{summary:?}");
    assert_eq!(summary.points_written, n + 2, "{summary:?}");
    assert_eq!(summary.points_rejected, 0, "{summary:?}");
    assert_eq!(metrics.points_written.get(), n + 2);
    assert_eq!(metrics.decode_errors.get(), 4);

    // Every point is there exactly once (rows sharing a timestamp included).
    assert_eq!(influx.count("SELECT count(seq) FROM gpu_samples").await, n);
    assert_eq!(
        influx
            .count("SELECT count(seq) FROM gpu_samples WHERE time = 1700000000000000000")
            .await,
        HOSTS.len() as u64 * 2,
        "seq 0 of each GPU at the exact event time"
    );

    // Host names survive escaping in real InfluxDB 1.x.
    let stored: BTreeSet<String> = influx
        .rows("SHOW TAG VALUES FROM gpu_samples WITH KEY = \"host\"")
        .await
        .iter()
        .filter_map(|r| r.get(1).and_then(Value::as_str).map(str::to_string))
        .collect();
    let want: BTreeSet<String> = HOSTS
        .iter()
        .map(|(_, stored)| (*stored).to_string())
        .collect();
    assert_eq!(stored, want);

    // Spot check one row completely.
    let probe = &expected[expected.len() / 2 + 7];
    let stored_host = HOSTS
        .iter()
        .find(|(h, _)| *h == probe.host)
        .map(|(_, s)| *s)
        .expect("host");
    let q = format!(
        "SELECT seq, gpu_index, gpu_temp_c, board_power_w, pstate, fan_rpm, \"unsupported\", \"GPU Clock [MHz]\", \"Memory Temp [°C]\", \"odd,name=x \\\"q\\\"\", \"gpu_name\" FROM gpu_samples WHERE \"host\" = {} AND \"gpu\" = {} AND seq = {}",
        ql_str(stored_host),
        ql_str(&probe.gpu),
        probe.seq
    );
    let rows = influx.rows(&q).await;
    assert_eq!(rows.len(), 1, "{q}: {rows:?}");
    let row = &rows[0];
    let expected_ts =
        probe.event_time.timestamp_nanos_opt().expect("ns") + (probe.seq % 1_000_000) as i64;
    assert_eq!(row[0].as_i64(), Some(expected_ts));
    assert_eq!(row[1].as_u64(), Some(probe.seq));
    assert_eq!(row[2].as_u64(), Some(u64::from(probe.gpu_index)));
    assert_eq!(row[3].as_f64(), probe.metrics.get(Metric::GpuTemp));
    assert_eq!(row[4].as_f64(), probe.metrics.get(Metric::BoardPower));
    assert_eq!(
        row[5].as_i64(),
        probe.metrics.get(Metric::PState).map(|v| v as i64)
    );
    assert_eq!(row[6].as_f64(), Some(0.0));
    assert_eq!(row[7].as_str(), Some("fan_rpm"));
    for (i, name) in EXTRA_NAMES.iter().enumerate() {
        assert_eq!(
            row[8 + i].as_f64(),
            probe.extra.get(*name).copied(),
            "{name}"
        );
    }
    assert_eq!(row[11].as_str(), Some("NVIDIA GeForce RTX 4090"));

    // Field types: integers stay integers.
    let types: BTreeMap<String, String> = influx
        .rows("SHOW FIELD KEYS FROM gpu_samples")
        .await
        .iter()
        .filter_map(|r| {
            Some((
                r.first()?.as_str()?.to_string(),
                r.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect();
    for (field, ty) in [
        ("seq", "integer"),
        ("gpu_index", "integer"),
        ("pstate", "integer"),
        ("gpu_temp_c", "float"),
        ("unsupported", "string"),
        ("Memory Temp [°C]", "float"),
    ] {
        assert_eq!(
            types.get(field).map(String::as_str),
            Some(ty),
            "{field}: {types:?}"
        );
    }

    // Anomalies, message verbatim.
    let rows = influx
        .rows("SELECT message, anomaly_id, value, threshold, started_at_ms, \"metric\", \"state\", \"host\" FROM gpu_anomalies WHERE \"state\" = 'firing'")
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1].as_str(), Some(message));
    assert_eq!(rows[0][2].as_str(), Some("anomaly-1"));
    assert_eq!(rows[0][3].as_f64(), Some(91.5));
    assert_eq!(rows[0][4].as_f64(), Some(90.0));
    assert_eq!(rows[0][5].as_i64(), Some(1_700_000_010_000));
    assert_eq!(rows[0][6].as_str(), Some("gpu_temp_c"));
    assert_eq!(rows[0][7].as_str(), Some("firing"));
    assert_eq!(rows[0][8].as_str(), Some("comma,host=eq"));

    // Offsets: committed past every message, garbage included.
    let mut partitions: Vec<(&str, i32)> = (0..SAMPLE_PARTITIONS)
        .map(|p| (topic.as_str(), p))
        .collect();
    partitions.push((anomalies_topic.as_str(), 0));
    let offsets = committed(&env.brokers, &group, &partitions).await;
    let sum = |t: &str| -> u64 {
        offsets
            .iter()
            .filter(|((topic, _), _)| topic == t)
            .map(|(_, o)| u64::try_from(*o).unwrap_or(0))
            .sum()
    };
    assert_eq!(sum(&topic), sample_messages, "{offsets:?}");
    assert_eq!(sum(&anomalies_topic), 3, "{offsets:?}");

    // Second run of the same group resumes at the committed offsets: only the new
    // message is consumed.
    produce(
        &producer,
        &[sample_message(&topic, &sample("late-host", 0, 0))],
    )
    .await;
    let (token, handle) = start(config(), SinkMetrics::unregistered().expect("metrics"));
    influx
        .wait_count("SELECT count(seq) FROM gpu_samples", n + 1, 60)
        .await;
    // Give a wrongly re-read backlog time to show up in the summary.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let summary = stop(token, handle).await.expect("second run");
    assert_eq!(summary.messages, 1, "{summary:?}");
    assert_eq!(
        influx.count("SELECT count(seq) FROM gpu_samples").await,
        n + 1
    );

    influx.drop_database().await;
}
