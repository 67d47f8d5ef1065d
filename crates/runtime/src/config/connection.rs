//! The flags every Kafka binary shares: where its configuration file is, which brokers,
//! and extra librdkafka properties. One definition, so the names, environment variables
//! and help read the same in `producer`, `stream-processor` and `consumer-influx`.

use std::path::PathBuf;

use super::{ConfigFile, load_file};
use crate::error::Result;
use crate::kafka::KafkaSettings;

/// `--config`, `--brokers` and `-X`, flattened into each binary's command line
/// (`#[command(flatten)]`); global, so they may follow a subcommand.
///
/// ```
/// use clap::Parser;
/// use gpustream_runtime::config::ConnectionArgs;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     connection: ConnectionArgs,
/// }
///
/// let cli = Cli::parse_from(["bin", "--brokers", "k:9093", "-X", "acks=all"]);
/// let kafka = cli.connection.kafka(None, "127.0.0.1:9092").unwrap();
/// assert_eq!(kafka.brokers, "k:9093");
/// ```
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// TOML configuration file (its [kafka] section and this binary's own).
    #[arg(long, env = "GPUSTREAM_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers [default: 127.0.0.1:9092].
    #[arg(
        long,
        env = "GPUSTREAM_BROKERS",
        value_name = "HOST:PORT",
        global = true
    )]
    pub brokers: Option<String>,
    /// A librdkafka property, e.g. -X security.protocol=SSL (repeatable; secrets only
    /// from the environment).
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub kafka_property: Vec<String>,
}

impl ConnectionArgs {
    /// The configuration file named by `--config` or `GPUSTREAM_CONFIG`, if any.
    pub fn file(&self) -> Result<Option<ConfigFile>> {
        load_file(self.config.as_deref())
    }

    /// Kafka settings: `--brokers` and `-X` over the file's `[kafka]` section over
    /// `default_brokers`.
    pub fn kafka(&self, file: Option<&ConfigFile>, default_brokers: &str) -> Result<KafkaSettings> {
        KafkaSettings::load(
            file,
            self.brokers.as_deref(),
            &self.kafka_property,
            default_brokers,
        )
    }
}
