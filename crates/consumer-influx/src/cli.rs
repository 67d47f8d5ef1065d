//! Command line and configuration: flags (each with its `GPUSTREAM_*` variable) over the
//! `[consumer_influx]` section of the configuration file over built-in defaults; Kafka
//! connection settings from `--brokers`, `-X key=value` and the file's `[kafka]` section.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use gpustream_runtime::config::{
    ConfigFile, ConnectionArgs, parse_duration, resolve, secret_from_env, serde_duration,
    serde_opt_duration,
};
use gpustream_runtime::kafka::KafkaSettings;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::influx::{Credentials, InfluxConfig, Token};
use crate::sink::SinkConfig;

/// Environment variable of the optional InfluxDB user name (or `..._FILE`).
pub const USERNAME_ENV: &str = "GPUSTREAM_INFLUX_USERNAME";
/// Environment variable of the optional InfluxDB password (or `..._FILE`).
pub const PASSWORD_ENV: &str = "GPUSTREAM_INFLUX_PASSWORD";
/// Environment variable of the optional InfluxDB API token (or `..._FILE`).
pub const TOKEN_ENV: &str = "GPUSTREAM_INFLUX_TOKEN";
/// The configuration file section of this binary.
pub const SECTION: &str = "consumer_influx";

/// InfluxDB write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// `/write?db=` — InfluxDB 1.x, and 3.x's v1 compatibility API.
    V1,
    /// `/api/v2/write?org=&bucket=` — InfluxDB 2.x and 3.x (and VictoriaMetrics).
    V2,
}

/// Writes GPU samples, anomaly events and rollups from Kafka to InfluxDB (v1 or v2 write API).
///
/// Every flag can also be set by its GPUSTREAM_* environment variable or in the
/// [consumer_influx] section of the --config file; Kafka connection settings go in its
/// [kafka] section or -X. Secrets come only from the environment: GPUSTREAM_INFLUX_TOKEN
/// (v2, or v1 on 3.x), or GPUSTREAM_INFLUX_USERNAME / GPUSTREAM_INFLUX_PASSWORD (1.x),
/// GPUSTREAM_KAFKA_SASL_PASSWORD for Kafka; each also from the file named by the same
/// variable with a _FILE suffix.
#[derive(Debug, Clone, Default, Parser, Serialize)]
#[command(name = "consumer-influx", version, about, long_about = None)]
pub struct Cli {
    /// What to do instead of running (`config --print`).
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
    /// --config, --brokers and -X (sections [kafka] and [consumer_influx] of the file).
    #[command(flatten)]
    #[serde(skip)]
    pub connection: ConnectionArgs,
    /// Topic of samples [default: gpu-samples].
    #[arg(long, env = "GPUSTREAM_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Topic of anomaly events; an empty string disables it [default: gpu-anomalies].
    #[arg(long, env = "GPUSTREAM_ANOMALIES_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomalies_topic: Option<String>,
    /// Topic of 1-minute rollups; an empty string disables it [default: gpu-rollups-1m].
    #[arg(long, env = "GPUSTREAM_ROLLUPS_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollups_topic: Option<String>,
    /// Consumer group [default: consumer-influx].
    #[arg(long, env = "GPUSTREAM_GROUP", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// InfluxDB base URL, e.g. http://127.0.0.1:8086 (required).
    #[arg(long, env = "GPUSTREAM_INFLUX_URL", value_name = "URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influx_url: Option<String>,
    /// Write API: v1 (`/write?db=`) or v2 (`/api/v2/write?org=&bucket=`) [default: v1].
    #[arg(long, env = "GPUSTREAM_INFLUX_API", value_enum, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub influx_api: Option<ApiVersion>,
    /// InfluxDB database (v1 API; required there).
    #[arg(long, env = "GPUSTREAM_DATABASE", value_name = "DB", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Organisation (v2 API).
    #[arg(long, env = "GPUSTREAM_ORG", value_name = "ORG", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Bucket (v2 API; defaults to --database).
    #[arg(long, env = "GPUSTREAM_BUCKET", value_name = "BUCKET", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Dead-letter topic for points InfluxDB refuses; an empty string logs and skips them
    /// [default: gpu-influx-dlq].
    #[arg(long, env = "GPUSTREAM_DLQ_TOPIC", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_topic: Option<String>,
    /// Messages per InfluxDB write [default: 5000].
    #[arg(long, env = "GPUSTREAM_BATCH_SIZE", value_name = "N", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Longest time a message waits in a batch, e.g. 500ms [default: 500ms].
    #[arg(long, env = "GPUSTREAM_BATCH_TIMEOUT", value_parser = parse_duration, global = true)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub batch_timeout: Option<Duration>,
    /// Timeout of one InfluxDB request [default: 30s].
    #[arg(long, env = "GPUSTREAM_REQUEST_TIMEOUT", value_parser = parse_duration, global = true)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub request_timeout: Option<Duration>,
    /// On SIGINT/SIGTERM, how long writing the last batch may take [default: 10s].
    #[arg(long, env = "GPUSTREAM_SHUTDOWN_GRACE", value_parser = parse_duration, global = true)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub shutdown_grace: Option<Duration>,
    /// Address of the /metrics and /health endpoint [default: 127.0.0.1:9732].
    #[arg(
        long,
        env = "GPUSTREAM_METRICS_ADDR",
        value_name = "ADDR",
        global = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    /// Deprecated: use --batch-timeout 500ms.
    #[arg(long, env = "GPUSTREAM_BATCH_TIMEOUT_MS", hide = true, global = true)]
    #[serde(skip)]
    pub batch_timeout_ms: Option<u64>,
    /// Deprecated: use --request-timeout 30s.
    #[arg(long, env = "GPUSTREAM_REQUEST_TIMEOUT_MS", hide = true, global = true)]
    #[serde(skip)]
    pub request_timeout_ms: Option<u64>,
    /// Deprecated: use --shutdown-grace 10s.
    #[arg(long, env = "GPUSTREAM_SHUTDOWN_GRACE_MS", hide = true, global = true)]
    #[serde(skip)]
    pub shutdown_grace_ms: Option<u64>,
}

/// Subcommands (the default is to run the sink): `config --print`.
pub use gpustream_runtime::config::ConfigCommand as Command;

/// The effective settings of the sink: every key of the `[consumer_influx]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Topic of samples.
    pub topic: String,
    /// Topic of anomaly events ("" disables).
    pub anomalies_topic: String,
    /// Topic of rollups ("" disables).
    pub rollups_topic: String,
    /// Consumer group.
    pub group: String,
    /// InfluxDB base URL.
    pub influx_url: String,
    /// Write API.
    pub influx_api: ApiVersion,
    /// Database (v1).
    pub database: String,
    /// Organisation (v2).
    pub org: String,
    /// Bucket (v2; defaults to the database).
    pub bucket: String,
    /// Dead-letter topic ("" disables).
    pub dlq_topic: String,
    /// Messages per write.
    pub batch_size: usize,
    /// Longest wait of a message in a batch.
    #[serde(with = "serde_duration")]
    pub batch_timeout: Duration,
    /// Timeout of one request.
    #[serde(with = "serde_duration")]
    pub request_timeout: Duration,
    /// Time to write the last batch at shutdown.
    #[serde(with = "serde_duration")]
    pub shutdown_grace: Duration,
    /// Ops endpoint.
    pub metrics_addr: SocketAddr,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            topic: gpustream_runtime::kafka::SAMPLES_TOPIC.into(),
            anomalies_topic: gpustream_runtime::kafka::ANOMALIES_TOPIC.into(),
            rollups_topic: gpustream_runtime::kafka::ROLLUPS_TOPIC.into(),
            group: "consumer-influx".into(),
            influx_url: String::new(),
            influx_api: ApiVersion::V1,
            database: String::new(),
            org: String::new(),
            bucket: String::new(),
            dlq_topic: crate::sink::INFLUX_DLQ_TOPIC.into(),
            batch_size: 5000,
            batch_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9732)),
        }
    }
}

/// Kafka brokers when none are configured.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// The effective configuration of one run: Kafka settings and the sink's settings.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Brokers and client properties.
    pub kafka: KafkaSettings,
    /// The `[consumer_influx]` settings.
    pub settings: Settings,
}

impl Effective {
    /// The configuration file's and the environment's view as TOML, secrets redacted.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(&self.settings).unwrap_or_default();
        format!("{}\n[{SECTION}]\n{body}", self.kafka.to_toml_redacted())
    }
}

impl Cli {
    /// Layers flags and environment over the configuration file and the defaults.
    pub fn effective(&self) -> Result<Effective> {
        let file = self.connection.file()?;
        let mut cli = self.clone();
        let deprecated = [
            (
                "--batch-timeout-ms",
                "--batch-timeout",
                cli.batch_timeout_ms.take(),
                &mut cli.batch_timeout,
            ),
            (
                "--request-timeout-ms",
                "--request-timeout",
                cli.request_timeout_ms.take(),
                &mut cli.request_timeout,
            ),
            (
                "--shutdown-grace-ms",
                "--shutdown-grace",
                cli.shutdown_grace_ms.take(),
                &mut cli.shutdown_grace,
            ),
        ];
        for (old, new, ms, target) in deprecated {
            if let Some(ms) = ms {
                tracing::warn!("{old} is deprecated: use {new} {ms}ms");
                target.get_or_insert(Duration::from_millis(ms));
            }
        }
        let settings: Settings = resolve(file.as_ref(), SECTION, &cli)?;
        let kafka = self.connection.kafka(file.as_ref(), DEFAULT_BROKERS)?;
        Ok(Effective { kafka, settings })
    }

    /// The sink configuration, with credentials read from the environment.
    pub fn sink_config(&self) -> Result<SinkConfig> {
        let username = secret_from_env(USERNAME_ENV)?;
        let password = secret_from_env(PASSWORD_ENV)?;
        let mut config = self.effective()?.sink_config_with(username, password)?;
        config.influx.token = secret_from_env(TOKEN_ENV)?.map(Token);
        Ok(config)
    }
}

/// Where a setting is looked up, for error messages.
fn origin(flag: &str, env: &str, key: &str) -> String {
    format!("--{flag} ({env} or [{SECTION}] {key})")
}

impl Effective {
    /// The sink configuration with explicit credentials.
    pub fn sink_config_with(
        &self,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<SinkConfig> {
        let s = &self.settings;
        let credentials = match (username, password) {
            (None, None) => None,
            (Some(username), password) => Some(Credentials {
                username,
                password: password.unwrap_or_default(),
            }),
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{PASSWORD_ENV} is set but {USERNAME_ENV} is not"
                )));
            }
        };
        if s.influx_url.is_empty() {
            return Err(Error::Config(format!(
                "{} is required",
                origin("influx-url", "GPUSTREAM_INFLUX_URL", "influx_url")
            )));
        }
        let mut influx = match s.influx_api {
            ApiVersion::V1 => {
                if s.database.is_empty() {
                    return Err(Error::Config(format!(
                        "{} is required with the v1 API",
                        origin("database", "GPUSTREAM_DATABASE", "database")
                    )));
                }
                InfluxConfig::new(&s.influx_url, &s.database)
            }
            ApiVersion::V2 => {
                let bucket = if s.bucket.is_empty() {
                    &s.database
                } else {
                    &s.bucket
                };
                if bucket.is_empty() {
                    return Err(Error::Config(format!(
                        "{} or --database is required with the v2 API",
                        origin("bucket", "GPUSTREAM_BUCKET", "bucket")
                    )));
                }
                InfluxConfig::v2(&s.influx_url, &s.org, bucket)
            }
        };
        influx.credentials = credentials;
        influx.request_timeout = s.request_timeout.max(Duration::from_millis(1));
        // Fail on a bad URL now rather than at the first write.
        crate::influx::write_url(&influx.url, &influx.api)?;
        let mut config = SinkConfig::new(&self.kafka.brokers, &s.group, influx);
        config.kafka = self.kafka.clone();
        config.samples_topic = s.topic.clone();
        config.anomalies_topic = Some(s.anomalies_topic.clone()).filter(|t| !t.is_empty());
        config.rollups_topic = Some(s.rollups_topic.clone()).filter(|t| !t.is_empty());
        config.dlq_topic = Some(s.dlq_topic.clone()).filter(|t| !t.is_empty());
        config.batch_size = s.batch_size;
        config.batch_timeout = s.batch_timeout;
        config.shutdown_grace = s.shutdown_grace;
        Ok(config)
    }
}

/// Parses a configuration file from text, for tests and `config --print` checks.
pub fn parse_file(path: &str, text: &str) -> Result<ConfigFile> {
    Ok(ConfigFile::parse(path, text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::WriteApi;

    fn parse(extra: &[&str]) -> Effective {
        let mut args = vec![
            "consumer-influx",
            "--brokers",
            "127.0.0.1:9092",
            "--influx-url",
            "http://127.0.0.1:8086",
            "--database",
            "gpu",
        ];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args) {
            Ok(cli) => cli.effective().expect("effective"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults() {
        let e = parse(&["--topic", "t", "--group", "g"]);
        let c = e.sink_config_with(None, None).expect("valid");
        assert_eq!(c.samples_topic, "t");
        assert_eq!(c.group, "g");
        assert_eq!(c.batch_size, 5000);
        assert_eq!(c.batch_timeout, Duration::from_millis(500));
        assert!(c.influx.credentials.is_none());
        assert_eq!(e.settings.metrics_addr.port(), 9732);
    }

    #[test]
    fn durations_are_humantime_and_ms_flags_still_work() {
        let e = parse(&["--batch-timeout", "250ms", "--shutdown-grace", "1m"]);
        assert_eq!(e.settings.batch_timeout, Duration::from_millis(250));
        assert_eq!(e.settings.shutdown_grace, Duration::from_secs(60));
        let e = parse(&["--batch-timeout-ms", "750"]);
        assert_eq!(e.settings.batch_timeout, Duration::from_millis(750));
    }

    #[test]
    fn empty_anomalies_topic_disables_it() {
        let c = parse(&["--anomalies-topic", ""])
            .sink_config_with(None, None)
            .expect("valid");
        assert_eq!(c.anomalies_topic, None);
        let c = parse(&[]).sink_config_with(None, None).expect("valid");
        assert_eq!(c.anomalies_topic.as_deref(), Some("gpu-anomalies"));
    }

    #[test]
    fn credentials() {
        let e = parse(&[]);
        let c = e
            .sink_config_with(Some("u".into()), Some("p".into()))
            .expect("valid");
        let creds = c.influx.credentials.expect("credentials");
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("u", "p")
        );
        assert!(e.sink_config_with(None, Some("p".into())).is_err());
    }

    #[test]
    fn v2_api_uses_bucket_or_database() {
        let c = parse(&["--influx-api", "v2", "--org", "lab", "--bucket", "gpu-raw"])
            .sink_config_with(None, None)
            .expect("valid");
        assert_eq!(
            c.influx.api,
            WriteApi::V2 {
                org: "lab".into(),
                bucket: "gpu-raw".into()
            }
        );
        let c = parse(&["--influx-api", "v2"])
            .sink_config_with(None, None)
            .expect("bucket defaults to the database");
        assert!(matches!(c.influx.api, WriteApi::V2 { ref bucket, .. } if bucket == "gpu"));
        let mut e = parse(&[]);
        e.settings.database = String::new();
        assert!(
            e.sink_config_with(None, None).is_err(),
            "v1 needs a database"
        );
    }

    #[test]
    fn dlq_topic_defaults_and_can_be_disabled() {
        let c = parse(&[]).sink_config_with(None, None).expect("valid");
        assert_eq!(c.dlq_topic.as_deref(), Some("gpu-influx-dlq"));
        let c = parse(&["--dlq-topic", ""])
            .sink_config_with(None, None)
            .expect("valid");
        assert_eq!(c.dlq_topic, None);
    }

    #[test]
    fn bad_url_is_rejected_early() {
        let mut e = parse(&[]);
        e.settings.influx_url = "127.0.0.1:8086".into();
        assert!(e.sink_config_with(None, None).is_err());
    }

    #[test]
    fn file_section_below_flags_and_typos_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gpustream.toml");
        std::fs::write(
            &path,
            "[kafka]\nbrokers = \"k:9093\"\nsecurity.protocol = \"SSL\"\n\n[consumer_influx]\ngroup = \"from-file\"\nbatch_size = 10\nbatch_timeout = \"2s\"\n",
        )
        .expect("write");
        let p = path.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from(["consumer-influx", "--config", p, "--batch-size", "20"])
            .expect("args");
        let e = cli.effective().expect("effective");
        assert_eq!(e.settings.group, "from-file");
        assert_eq!(e.settings.batch_size, 20, "flag over file");
        assert_eq!(e.settings.batch_timeout, Duration::from_secs(2));
        assert_eq!(e.kafka.brokers, "k:9093");
        assert_eq!(e.kafka.properties["security.protocol"], "SSL");
        let printed = e.to_toml();
        assert!(printed.contains("group = \"from-file\""), "{printed}");

        std::fs::write(&path, "[consumer_influx]\ngroup = \"g\"\nbatch_sise = 10\n")
            .expect("write");
        let err = Cli::try_parse_from(["consumer-influx", "--config", p])
            .expect("args")
            .effective()
            .expect_err("typo")
            .to_string();
        assert!(err.contains(&format!("{p}:3:")), "{err}");
        assert!(err.contains("did you mean `batch_size`"), "{err}");

        std::fs::write(&path, "[consumer_influx]\nbatch_size = \"many\"\n").expect("write");
        let err = Cli::try_parse_from(["consumer-influx", "--config", p])
            .expect("args")
            .effective()
            .expect_err("wrong type")
            .to_string();
        assert!(err.contains(&format!("{p}:2:")), "{err}");
        assert!(err.contains("batch_size"), "{err}");
    }
}
