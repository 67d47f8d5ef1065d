//! Command line: flags, with `GPUSTREAM_*` environment variables (and the `--config`
//! TOML file, loaded into the environment by `main`) as fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::error::{Error, Result};
use crate::influx::{Credentials, InfluxConfig, Token};
use crate::pipeline::SinkConfig;

/// Environment variable of the optional InfluxDB user name (or `..._FILE`).
pub const USERNAME_ENV: &str = "GPUSTREAM_INFLUX_USERNAME";
/// Environment variable of the optional InfluxDB password (or `..._FILE`).
pub const PASSWORD_ENV: &str = "GPUSTREAM_INFLUX_PASSWORD";
/// Environment variable of the optional InfluxDB API token (or `..._FILE`).
pub const TOKEN_ENV: &str = "GPUSTREAM_INFLUX_TOKEN";

/// InfluxDB write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiVersion {
    /// `/write?db=` — InfluxDB 1.x, and 3.x's v1 compatibility API.
    V1,
    /// `/api/v2/write?org=&bucket=` — InfluxDB 2.x and 3.x (and VictoriaMetrics).
    V2,
}

/// Writes GPU samples, anomaly events and rollups from Kafka to InfluxDB (v1 or v2 write API).
///
/// Secrets come only from the environment: GPUSTREAM_INFLUX_TOKEN (v2, or v1 on 3.x), or
/// GPUSTREAM_INFLUX_USERNAME / GPUSTREAM_INFLUX_PASSWORD (1.x), each also from the file
/// named by the same variable with a _FILE suffix.
#[derive(Debug, Clone, Parser)]
#[command(name = "consumer-influx", version, about, long_about = None)]
pub struct Cli {
    /// Kafka bootstrap servers.
    #[arg(long, env = "GPUSTREAM_BROKERS", value_name = "HOST:PORT")]
    pub brokers: String,
    /// Topic of samples.
    #[arg(long, env = "GPUSTREAM_TOPIC", default_value = gpustream::kafka::SAMPLES_TOPIC)]
    pub topic: String,
    /// Topic of anomaly events; an empty string disables it.
    #[arg(long, env = "GPUSTREAM_ANOMALIES_TOPIC", default_value = gpustream::kafka::ANOMALIES_TOPIC)]
    pub anomalies_topic: String,
    /// Topic of 1-minute rollups; an empty string disables it.
    #[arg(long, env = "GPUSTREAM_ROLLUPS_TOPIC", default_value = gpustream::kafka::ROLLUPS_TOPIC)]
    pub rollups_topic: String,
    /// Consumer group.
    #[arg(long, env = "GPUSTREAM_GROUP", default_value = "consumer-influx")]
    pub group: String,
    /// InfluxDB base URL, e.g. http://127.0.0.1:8086.
    #[arg(long, env = "GPUSTREAM_INFLUX_URL", value_name = "URL")]
    pub influx_url: String,
    /// Write API: v1 (`/write?db=`) or v2 (`/api/v2/write?org=&bucket=`).
    #[arg(long, env = "GPUSTREAM_INFLUX_API", value_enum, default_value = "v1")]
    pub influx_api: ApiVersion,
    /// InfluxDB database (v1 API; required there).
    #[arg(long, env = "GPUSTREAM_DATABASE", value_name = "DB")]
    pub database: Option<String>,
    /// Organisation (v2 API).
    #[arg(long, env = "GPUSTREAM_ORG", value_name = "ORG", default_value = "")]
    pub org: String,
    /// Bucket (v2 API; defaults to --database).
    #[arg(long, env = "GPUSTREAM_BUCKET", value_name = "BUCKET")]
    pub bucket: Option<String>,
    /// Dead-letter topic for points InfluxDB refuses; an empty string logs and skips them.
    #[arg(long, env = "GPUSTREAM_DLQ_TOPIC", default_value = crate::pipeline::INFLUX_DLQ_TOPIC)]
    pub dlq_topic: String,
    /// Messages per InfluxDB write.
    #[arg(
        long,
        env = "GPUSTREAM_BATCH_SIZE",
        default_value_t = 5000,
        value_name = "N"
    )]
    pub batch_size: usize,
    /// Longest time a message waits in a batch, in milliseconds.
    #[arg(
        long,
        env = "GPUSTREAM_BATCH_TIMEOUT_MS",
        default_value_t = 500,
        value_name = "MS"
    )]
    pub batch_timeout_ms: u64,
    /// Timeout of one InfluxDB request, in milliseconds.
    #[arg(
        long,
        env = "GPUSTREAM_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000,
        value_name = "MS"
    )]
    pub request_timeout_ms: u64,
    /// On SIGINT/SIGTERM, how long writing the last batch may take, in milliseconds.
    #[arg(
        long,
        env = "GPUSTREAM_SHUTDOWN_GRACE_MS",
        default_value_t = 10_000,
        value_name = "MS"
    )]
    pub shutdown_grace_ms: u64,
    /// Address of the /metrics and /health endpoint.
    #[arg(
        long,
        env = "GPUSTREAM_METRICS_ADDR",
        default_value = "127.0.0.1:9102",
        value_name = "ADDR"
    )]
    pub metrics_addr: SocketAddr,
    /// TOML configuration file (keys named like the flags, `influx_url = "..."`).
    #[arg(long, env = "GPUSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Cli {
    /// The sink configuration, with credentials read from the environment.
    pub fn sink_config(&self) -> Result<SinkConfig> {
        let username = gpustream::config::secret_from_env(USERNAME_ENV)?;
        let password = gpustream::config::secret_from_env(PASSWORD_ENV)?;
        let mut config = self.sink_config_with(username, password)?;
        config.influx.token = gpustream::config::secret_from_env(TOKEN_ENV)?.map(Token);
        Ok(config)
    }

    /// The sink configuration with explicit credentials.
    pub fn sink_config_with(
        &self,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<SinkConfig> {
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
        let mut influx = match self.influx_api {
            ApiVersion::V1 => {
                let Some(database) = self.database.as_deref().filter(|d| !d.is_empty()) else {
                    return Err(Error::Config(
                        "--database (GPUSTREAM_DATABASE) is required with the v1 API".into(),
                    ));
                };
                InfluxConfig::new(&self.influx_url, database)
            }
            ApiVersion::V2 => {
                let Some(bucket) = self
                    .bucket
                    .as_deref()
                    .or(self.database.as_deref())
                    .filter(|b| !b.is_empty())
                else {
                    return Err(Error::Config(
                        "--bucket (GPUSTREAM_BUCKET) or --database is required with the v2 API"
                            .into(),
                    ));
                };
                InfluxConfig::v2(&self.influx_url, &self.org, bucket)
            }
        };
        influx.credentials = credentials;
        influx.request_timeout = Duration::from_millis(self.request_timeout_ms.max(1));
        // Fail on a bad URL now rather than at the first write.
        crate::influx::write_url(&influx.url, &influx.api)?;
        let mut config = SinkConfig::new(&self.brokers, &self.group, influx);
        config.samples_topic = self.topic.clone();
        config.anomalies_topic = Some(self.anomalies_topic.clone()).filter(|t| !t.is_empty());
        config.rollups_topic = Some(self.rollups_topic.clone()).filter(|t| !t.is_empty());
        config.dlq_topic = Some(self.dlq_topic.clone()).filter(|t| !t.is_empty());
        config.batch_size = self.batch_size;
        config.batch_timeout = Duration::from_millis(self.batch_timeout_ms);
        config.shutdown_grace = Duration::from_millis(self.shutdown_grace_ms);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::WriteApi;

    fn parse(extra: &[&str]) -> Cli {
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
            Ok(cli) => cli,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults() {
        let cli = parse(&["--topic", "t", "--group", "g"]);
        let c = cli.sink_config_with(None, None).expect("valid");
        assert_eq!(c.samples_topic, "t");
        assert_eq!(c.group, "g");
        assert_eq!(c.batch_size, 5000);
        assert_eq!(c.batch_timeout, Duration::from_millis(500));
        assert!(c.influx.credentials.is_none());
        assert_eq!(cli.metrics_addr.port(), 9102);
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
        let cli = parse(&[]);
        let c = cli
            .sink_config_with(Some("u".into()), Some("p".into()))
            .expect("valid");
        let creds = c.influx.credentials.expect("credentials");
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("u", "p")
        );
        assert!(cli.sink_config_with(None, Some("p".into())).is_err());
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
        let mut cli = parse(&[]);
        cli.database = None;
        assert!(
            cli.sink_config_with(None, None).is_err(),
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
        let mut cli = parse(&[]);
        cli.influx_url = "127.0.0.1:8086".into();
        assert!(cli.sink_config_with(None, None).is_err());
    }
}
