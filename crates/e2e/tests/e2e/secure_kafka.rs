//! The three Kafka binaries against secured brokers, over real TLS connections:
//! server-verified TLS with a custom CA and mutual TLS (Tansu behind a stunnel
//! terminator, started by scripts/services.sh with certificates made by openssl), and
//! SASL/SCRAM against Tansu's `--authentication` listener. Each misconfiguration —
//! an untrusted certificate, a missing client certificate, a wrong password, an
//! unreachable broker — ends the run with one clear error line naming the setting to
//! check and a non-zero exit within a bounded time; secrets never reach a log.
//!
//! What Tansu cannot serve (see README "Security"): SASL that accepts a login (its user
//! store does not persist users, so every login is refused as `unknown-user`): the SASL
//! tests here cover the refusal path end to end; the accepted path is untested.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gpustream_test_kit::{bins, unique, unique_ident};

/// Addresses of the secured brokers and the test certificates.
struct Secure {
    tls: String,
    mtls: String,
    sasl: String,
    certs: PathBuf,
    influx: String,
    brokers: String,
}

fn secure(test: &str) -> Option<Secure> {
    let svc = gpustream_test_kit::services(test)?;
    let var = |n: &str| {
        std::env::var(n)
            .unwrap_or_else(|_| panic!("GPUSTREAM_IT=1 needs {n} (scripts/services.sh start)"))
    };
    Some(Secure {
        tls: var("GPUSTREAM_TEST_TLS_BROKERS"),
        mtls: var("GPUSTREAM_TEST_MTLS_BROKERS"),
        sasl: var("GPUSTREAM_TEST_SASL_BROKERS"),
        certs: PathBuf::from(var("GPUSTREAM_TEST_TLS_DIR")),
        influx: svc.influx_url().to_string(),
        brokers: svc.brokers,
    })
}

impl Secure {
    fn cert(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// `-X` flags for TLS with the test CA, plus the client certificate when `mutual`.
    fn tls_flags(&self, mutual: bool) -> Vec<String> {
        let mut f = vec![
            "-X".to_string(),
            "security.protocol=ssl".to_string(),
            "-X".to_string(),
            format!("ssl.ca.location={}", self.cert("ca.pem")),
        ];
        if mutual {
            f.extend([
                "-X".to_string(),
                format!("ssl.certificate.location={}", self.cert("client.pem")),
                "-X".to_string(),
                format!("ssl.key.location={}", self.cert("client.key")),
            ]);
        }
        f
    }
}

/// A short GPU-Z log of the shared data set (1,006 data rows).
const LOG: &str = "intel-irisxe_rleaderjoon-GPU_DashBoard_c-b3212db.txt";
const LOG_ROWS: u64 = 1006;

/// Runs a binary to completion, at most `limit`; panics if it hangs.
fn run_bounded(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    while started.elapsed() < limit {
        if child.try_wait().expect("try_wait").is_some() {
            return (child.wait_with_output().expect("output"), started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "did not exit within {limit:?} (a hang):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Replays the log to `brokers` with `flags`; returns its output.
fn produce(brokers: &str, topic: &str, flags: &[String]) -> Output {
    let mut cmd = bins::command("producer");
    cmd.args(["replay"])
        .arg(gpustream_test_kit::data::shared_log(LOG))
        .args(["--brokers", brokers, "--topic", topic, "--speed", "0"])
        .args(["--timezone", "UTC", "--host", "tls-host"])
        .args(flags);
    run_bounded(cmd, Duration::from_secs(120)).0
}

/// Starts `name` (stream-processor or consumer-influx) reading `topic` from `brokers`
/// in a new group named after `group`, without anomaly or rollup topics, its metrics on
/// a free port, with `args` and the client `flags`; returns the child.
fn start_consumer(
    name: &str,
    brokers: &str,
    topic: &str,
    group: &str,
    args: &[&str],
    flags: &[String],
) -> std::process::Child {
    bins::command(name)
        .args(["--brokers", brokers, "--topic", topic])
        .args(["--group", &unique(group)])
        .args(["--anomalies-topic", "", "--rollups-topic", ""])
        .args([
            "--metrics-addr",
            &format!("127.0.0.1:{}", gpustream_test_kit::free_port()),
        ])
        .args(args)
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn stop(mut child: std::process::Child) -> Output {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("did not stop within 60 s of SIGTERM");
}

/// Creates topics over the secured listener (the broker behind the terminator
/// advertises the terminator's port, so a plaintext client cannot use it).
fn create_topics(brokers: &str, flags: &[String], topics: &[(&str, i32)]) {
    let overrides: Vec<String> = flags
        .chunks(2)
        .filter(|pair| pair[0] == "-X")
        .map(|pair| pair[1].clone())
        .collect();
    let settings =
        gpustream_runtime::kafka::KafkaSettings::load(None, Some(brokers), &overrides, brokers)
            .expect("settings");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(settings.ensure_topics(topics))
        .expect("create topics over TLS");
}

/// The whole path over one secured broker: producer → Kafka (TLS) → stream-processor
/// (TLS) → lake, and consumer-influx (TLS) → InfluxDB.
fn pipeline_over(s: &Secure, brokers: &str, mutual: bool) {
    let topic = unique("tls-samples");
    let flags = s.tls_flags(mutual);
    let dlq = format!("{topic}-dlq");
    create_topics(brokers, &flags, &[(&topic, 2), (&dlq, 1)]);
    let out = produce(brokers, &topic, &flags);
    assert!(out.status.success(), "producer over TLS:\n{}", text(&out));
    assert!(
        text(&out).contains(&format!("delivered {LOG_ROWS}, failed 0")),
        "{}",
        text(&out)
    );

    let lake = tempfile::tempdir().expect("tempdir");
    let lake_dir = lake.path().to_str().expect("utf8");
    let proc = start_consumer(
        "stream-processor",
        brokers,
        &topic,
        "tls-proc",
        &[
            "--lake",
            lake_dir,
            "--flush-interval",
            "1s",
            "--dlq-topic",
            &dlq,
        ],
        &flags,
    );

    let db = unique_ident("tls_db");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(gpustream_test_kit::influxdb::query(
        &s.influx,
        "",
        &format!("CREATE DATABASE {db}"),
    ));
    let sink = start_consumer(
        "consumer-influx",
        brokers,
        &topic,
        "tls-influx",
        &[
            "--influx-url",
            &s.influx,
            "--database",
            &db,
            "--dlq-topic",
            "",
        ],
        &flags,
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut in_lake, mut points) = (0, 0);
    while Instant::now() < deadline && (in_lake < LOG_ROWS as usize || points < LOG_ROWS) {
        std::thread::sleep(Duration::from_millis(500));
        in_lake = gpustream_test_kit::lake::lake_ids(lake.path()).0.len();
        points = rt.block_on(gpustream_test_kit::influxdb::first_value(
            &s.influx,
            &db,
            "SELECT count(seq) FROM gpu_samples",
        ));
    }
    // Both stopped before either is judged: a failed assertion must not leave one running.
    let stopped = [
        ("stream-processor", stop(proc)),
        ("consumer-influx", stop(sink)),
    ];
    for (name, out) in stopped {
        assert!(
            out.status.success(),
            "{name}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        in_lake, LOG_ROWS as usize,
        "every sample in the lake over TLS"
    );
    assert_eq!(points, LOG_ROWS, "every sample in InfluxDB over TLS");
}

#[test]
fn the_pipeline_over_tls_with_a_custom_ca() {
    let Some(s) = secure("the_pipeline_over_tls_with_a_custom_ca") else {
        return;
    };
    pipeline_over(&s, &s.tls, false);
}

#[test]
fn the_pipeline_over_mutual_tls() {
    let Some(s) = secure("the_pipeline_over_mutual_tls") else {
        return;
    };
    pipeline_over(&s, &s.mtls, true);
}

/// Runs each Kafka binary with `brokers` and `flags` (secret in the environment) and
/// checks it exits non-zero within `limit`, naming `expect` on one line.
fn each_binary_fails(
    s: &Secure,
    brokers: &str,
    flags: &[String],
    env: &[(&str, &str)],
    expect: &str,
    limit: Duration,
) -> Vec<String> {
    let lake = tempfile::tempdir().expect("tempdir");
    let lake = lake.path().to_str().expect("utf8").to_string();
    let log = gpustream_test_kit::data::shared_log(LOG);
    let log = log.to_str().expect("utf8");
    let runs: [(&str, &[&str]); 3] = [
        (
            "producer",
            &["replay", log, "--topic", "secure-topic", "--speed", "0"],
        ),
        (
            "stream-processor",
            &["--lake", &lake, "--metrics-addr", "127.0.0.1:0"],
        ),
        (
            "consumer-influx",
            &[
                "--influx-url",
                &s.influx,
                "--database",
                "none",
                "--metrics-addr",
                "127.0.0.1:0",
            ],
        ),
    ];
    let mut outputs = Vec::new();
    for (bin, args) in runs {
        let mut cmd = bins::command(bin);
        cmd.args(args).args(["--brokers", brokers]).args(flags);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (out, took) = run_bounded(cmd, limit + Duration::from_secs(15));
        let all = text(&out);
        assert!(!out.status.success(), "{bin} must fail:\n{all}");
        assert!(
            took <= limit,
            "{bin} took {took:?} (limit {limit:?}) to fail"
        );
        let prefix = format!("{bin}: error:");
        let errors: Vec<&str> = all.lines().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(errors.len(), 1, "{bin}: one error line, got:\n{all}");
        assert!(
            errors[0].contains(expect),
            "{bin}: `{expect}` in `{}`",
            errors[0]
        );
        outputs.push(all);
    }
    outputs
}

#[test]
fn an_untrusted_certificate_fails_fast_naming_the_ca_setting() {
    let Some(s) = secure("an_untrusted_certificate_fails_fast_naming_the_ca_setting") else {
        return;
    };
    let flags = vec![
        "-X".to_string(),
        "security.protocol=ssl".to_string(),
        "-X".to_string(),
        format!("ssl.ca.location={}", s.cert("other-ca.pem")),
    ];
    each_binary_fails(
        &s,
        &s.tls,
        &flags,
        &[],
        "ssl.ca.location",
        Duration::from_secs(20),
    );
}

#[test]
fn a_missing_client_certificate_fails_fast_naming_the_setting() {
    let Some(s) = secure("a_missing_client_certificate_fails_fast_naming_the_setting") else {
        return;
    };
    let flags = s.tls_flags(false);
    each_binary_fails(
        &s,
        &s.mtls,
        &flags,
        &[],
        "ssl.certificate.location",
        Duration::from_secs(20),
    );
}

#[test]
fn an_unreachable_broker_fails_within_the_connect_timeout() {
    let Some(s) = secure("an_unreachable_broker_fails_within_the_connect_timeout") else {
        return;
    };
    let nowhere = format!("127.0.0.1:{}", gpustream_test_kit::free_port());
    each_binary_fails(
        &s,
        &nowhere,
        &[],
        &[],
        "check brokers",
        Duration::from_secs(25),
    );
}

#[test]
fn a_refused_sasl_login_fails_fast_and_the_password_is_never_logged() {
    let Some(s) = secure("a_refused_sasl_login_fails_fast_and_the_password_is_never_logged") else {
        return;
    };
    let secret = "s3cr3t-never-to-be-logged";
    let flags: Vec<String> = [
        "-X",
        "security.protocol=sasl_plaintext",
        "-X",
        "sasl.mechanism=SCRAM-SHA-256",
        "-X",
        "sasl.username=alice",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let env = [("GPUSTREAM_KAFKA_SASL_PASSWORD", secret)];
    let mut env_debug = env.to_vec();
    env_debug.push(("RUST_LOG", "debug"));
    for out in each_binary_fails(
        &s,
        &s.sasl,
        &flags,
        &env_debug,
        "sasl",
        Duration::from_secs(20),
    ) {
        assert!(
            !out.contains(secret),
            "the password leaked into the output:\n{out}"
        );
    }
    // `config --print` shows that a password is set, never the password.
    for bin in ["stream-processor", "consumer-influx"] {
        let mut cmd = bins::command(bin);
        cmd.args(["config", "--print", "--brokers", &s.brokers])
            .args(&flags)
            .env("GPUSTREAM_KAFKA_SASL_PASSWORD", secret);
        let (out, _) = run_bounded(cmd, Duration::from_secs(20));
        let all = text(&out);
        assert!(out.status.success(), "{bin} config --print:\n{all}");
        assert!(!all.contains(secret), "{bin}: the password leaked:\n{all}");
        assert!(
            all.contains("sasl.password") && all.contains("redacted"),
            "{all}"
        );
    }
    // A secret in a flag is refused before anything connects, and not echoed.
    let mut cmd = bins::command("stream-processor");
    cmd.args([
        "--brokers",
        &s.sasl,
        "-X",
        &format!("sasl.password={secret}"),
    ]);
    let (out, _) = run_bounded(cmd, Duration::from_secs(20));
    assert!(!out.status.success());
    let all = text(&out);
    assert!(all.contains("GPUSTREAM_KAFKA_SASL_PASSWORD"), "{all}");
    assert!(!all.contains(secret), "{all}");
}
