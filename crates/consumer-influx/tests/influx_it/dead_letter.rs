//! Points InfluxDB refuses for good go to the dead-letter topic; the rest is written.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use consumer_influx::SinkMetrics;
use gpustream_test_kit::unique;
use rdkafka::message::Message as _;

use crate::data::{base_time, sample};
use crate::kafka::{Message, committed, header, produce, producer, read_all, sample_message};
use crate::sink::{sink_config, start, stop};
use crate::{Case, case, it_env};

/// Points InfluxDB refuses for good (a field-type conflict) are isolated by splitting the
/// batch: they land in the dead-letter topic with InfluxDB's message and their source
/// offset, every other point of the same batches is written, and the offsets move past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_points_go_to_the_dead_letter_topic_and_the_rest_is_written() {
    let Some(env) = it_env() else { return };
    let topic = unique("it-refused");
    let dlq = unique("it-refused-dlq");
    let Case { group, db, influx } = case(&env, "it-refused", &[(&topic, 1), (&dlq, 1)]).await;
    // `conflict` exists as a string field in the samples' shard: float values are refused.
    let seed = format!(
        "gpu_samples,host=seed conflict=\"text\" {}\n",
        base_time().timestamp_nanos_opt().expect("ns")
    );
    // InfluxDB 1.6 occasionally answers "database not found" for a moment after CREATE
    // DATABASE while another test drops a database: retry briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = influx
            .http
            .post(format!("{}/write", env.influx_url))
            .query(&[("db", db.as_str())])
            .body(seed.clone())
            .send()
            .await
            .expect("seed write");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if status == 404 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(status, 204, "seed write: {body}");
        break;
    }

    const N: u64 = 300;
    let bad: BTreeSet<u64> = [7, 8, 150, 299].into_iter().collect();
    let producer = producer(&env);
    let messages: Vec<Message> = (0..N)
        .map(|seq| {
            let mut s = sample("refused-host", 0, seq);
            if bad.contains(&seq) {
                s.extra.insert("conflict".into(), 1.5);
            }
            sample_message(&topic, &s)
        })
        .collect();
    produce(&producer, &messages).await;

    let mut config = sink_config(&env, &env.influx_url, &db, &group, &topic, None);
    config.dlq_topic = Some(dlq.clone());
    config.rollups_topic = None;
    let metrics = SinkMetrics::unregistered().expect("metrics");
    let (token, handle) = start(config, metrics.clone());
    influx
        .wait_count(
            "SELECT count(seq) FROM gpu_samples WHERE host = 'refused-host'",
            N - bad.len() as u64,
            60,
        )
        .await;
    let dead = read_all(&env.brokers, &dlq, bad.len()).await;
    let summary = stop(token, handle).await.expect("run");
    assert_eq!(summary.points_written, N - bad.len() as u64, "{summary:?}");
    assert_eq!(summary.points_rejected, bad.len() as u64, "{summary:?}");
    assert_eq!(metrics.points_dead_lettered.get(), bad.len() as u64);

    let mut dead_offsets = BTreeSet::new();
    for m in &dead {
        let line = std::str::from_utf8(m.payload().unwrap_or_default()).expect("utf8 line");
        assert!(line.starts_with("gpu_samples,"), "{line}");
        assert!(line.contains("conflict=1.5"), "{line}");
        let error = header(m, "error").unwrap_or_default();
        assert!(error.contains("field type conflict"), "{error}");
        assert_eq!(header(m, "http_status").as_deref(), Some("400"));
        assert_eq!(header(m, "source_topic").as_deref(), Some(topic.as_str()));
        let offset: u64 = header(m, "source_offset")
            .and_then(|o| o.parse().ok())
            .expect("source_offset header");
        dead_offsets.insert(offset);
        // The line names its own sample: seq=<offset> because one message per seq.
        assert!(line.contains(&format!("seq={offset}i")), "{line}");
    }
    assert_eq!(
        dead_offsets, bad,
        "exactly the refused samples are dead-lettered"
    );
    let offsets = committed(&env.brokers, &group, &[(&topic, 0)]).await;
    assert_eq!(offsets.get(&(topic.clone(), 0)), Some(&(N as i64)));
    influx.drop_database().await;
}
