//! The real `stream-processor` command line with `--rules FILE` and `--webhook-url`:
//! samples through Kafka, anomalies from the file's rules on the anomalies topic, and the
//! same transitions at the webhook; a broken rules file stops it at start-up with the
//! file and line. Runs when GPUSTREAM_IT=1.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gpustream::{AnomalyEvent, AnomalyState};
use gpustream_test_kit::kafka::Sender;
use gpustream_test_kit::kafka::read_topic;
use gpustream_test_kit::samples::t0;
use gpustream_test_kit::{services, unique};
use support::{Proc, sample};

/// A minimal HTTP/1.1 server on 127.0.0.1 that hands each request body to the test and
/// answers 200 (keep-alive, as reqwest expects).
fn webhook_listener() -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut conn = conn;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = tx.send(body);
                    if conn
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

const RULES: &str = r#"
[[threshold]]
name = "e2e_hot"
metric = "gpu_temp_c"
above = 80.0
clear = 75.0
for = "2s"
severity = "critical"
"#;

#[test]
fn rules_file_and_webhook_through_the_real_command_line() {
    let Some(svc) = services("anomaly_alerts") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let topic = unique("alerts-samples");
    let anomalies = unique("alerts-anomalies");
    rt.block_on(gpustream_runtime::kafka::ensure_topics(
        &svc.brokers,
        &[(&topic, 1), (&anomalies, 1)],
    ))
    .expect("topics");
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).expect("rules");
    let lake = dir.path().join("lake");
    let (hook, bodies) = webhook_listener();
    // Proc::start switches the anomalies topic off; this test needs it on.
    let ops = format!("127.0.0.1:{}", gpustream_test_kit::free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_stream-processor-under-test"))
        .args(["--brokers", &svc.brokers, "--topic", &topic])
        .args(["--group", &unique("alerts-group")])
        .args([
            "--lake",
            lake.to_str().expect("utf8"),
            "--metrics-addr",
            &ops,
        ])
        .args(["--anomalies-topic", &anomalies, "--rollups-topic", ""])
        .args(["--dlq-topic", &format!("{topic}-dlq")])
        .args([
            "--rules",
            rules.to_str().expect("utf8"),
            "--webhook-url",
            &hook,
        ])
        .args(["--flush-interval", "200ms"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start stream-processor-under-test");
    let mut proc = Proc {
        child,
        ops: format!("http://{ops}"),
    };
    proc.wait_up(Duration::from_secs(30));

    // 70 °C, then 90 °C for 10 s, then 70 °C: e2e_hot fires 2 s into the heat and
    // resolves with the first cool sample. The default rules (gpu_temp_high, ...) are not
    // loaded, so no other rule may appear.
    let sender = Sender::new(&svc.brokers, &topic);
    for i in 0..30u64 {
        let temp = if (10..20).contains(&i) { 90.0 } else { 70.0 };
        let s = sample("g0", i, t0() + chrono::Duration::seconds(i as i64), temp);
        sender.send_sample(0, &s);
    }
    sender.flush();

    let mut delivered: Vec<AnomalyEvent> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while delivered.len() < 2 && std::time::Instant::now() < deadline {
        if let Ok(body) = bodies.recv_timeout(Duration::from_millis(200)) {
            delivered
                .extend(serde_json::from_slice::<Vec<AnomalyEvent>>(&body).expect("webhook body"));
        }
    }
    let got: Vec<_> = delivered
        .iter()
        .map(|e| (e.rule.as_str(), e.state, e.event_time - t0()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "e2e_hot",
                AnomalyState::Firing,
                chrono::Duration::seconds(12)
            ),
            (
                "e2e_hot",
                AnomalyState::Resolved,
                chrono::Duration::seconds(20)
            ),
        ]
    );
    // The webhook saw exactly what the anomalies topic holds.
    let on_topic: Vec<AnomalyEvent> =
        read_topic(&svc.brokers, &anomalies, 2, Duration::from_secs(20))
            .iter()
            .map(|m| serde_json::from_slice(&m.payload).expect("anomaly json"))
            .collect();
    assert_eq!(on_topic, delivered);
    let sent = proc.wait_metric(
        "stream_processor_alerts_sent_total{destination=\"webhook\"}",
        Duration::from_secs(5),
        |v| v >= 1.0,
    );
    assert!(sent.is_some_and(|v| v >= 1.0), "{}", proc.metrics());
    assert!(proc.terminate(Duration::from_secs(30)).success());
    // And LAKE/anomalies/ holds the same two transitions, once each.
    let mut in_lake: Vec<(String, String)> = Vec::new();
    for batch in gpustream_test_kit::lake::read_local_table(&lake.join("anomalies")) {
        use arrow::array::AsArray;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap_or_else(|| panic!("anomalies column {name}"))
                .as_string::<i32>()
                .clone()
        };
        let (ids, states) = (col("event_id"), col("state"));
        for i in 0..batch.num_rows() {
            in_lake.push((ids.value(i).to_string(), states.value(i).to_string()));
        }
    }
    in_lake.sort();
    let mut expected: Vec<(String, String)> = delivered
        .iter()
        .map(|e| (e.event_id.clone(), e.state.as_str().to_string()))
        .collect();
    expected.sort();
    assert_eq!(in_lake, expected);
    assert!(
        bodies.try_recv().is_err(),
        "a transition was delivered twice"
    );
}

#[test]
fn a_broken_rules_file_stops_the_processor_with_file_and_line() {
    let Some(svc) = services("anomaly_alerts") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("broken-rules.toml");
    std::fs::write(
        &rules,
        "[[threshold]]\nname = \"x\"\nmetric = \"gpu_temp_c\"\nabove = 80\nfor = \"ten seconds\"\n",
    )
    .expect("rules");
    let out = Command::new(env!("CARGO_BIN_EXE_stream-processor-under-test"))
        .args([
            "--brokers",
            &svc.brokers,
            "--topic",
            &unique("broken-rules"),
        ])
        .args(["--lake", dir.path().join("lake").to_str().expect("utf8")])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--rules", rules.to_str().expect("utf8")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("broken-rules.toml") && err.contains("line 5"),
        "{err}"
    );
}
