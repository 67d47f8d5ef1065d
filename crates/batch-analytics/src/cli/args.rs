//! The command line: the subcommands and their flags, each with its `GPUSTREAM_*`
//! variable. A setting's flag is an `Option`, so that an unset flag leaves the file's
//! value or the default in place.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gpustream_runtime::config::{parse_duration, serde_opt_duration};
use serde::{Deserialize, Serialize};

use crate::daily::default_date;
use crate::error::{Error, Result};
use crate::maintain::parse_size;

/// Batch analytics over the GPU telemetry lake (Delta tables).
///
/// Every setting can also be set by its GPUSTREAM_* environment variable or in the
/// [batch_analytics] section of the --config file (flag > environment > file).
#[derive(Debug, Clone, Parser)]
#[command(name = "batch-analytics", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration file (section [batch_analytics]).
    #[arg(long, env = "GPUSTREAM_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Nightly job: the analytics tables of one UTC day (or a range), each day replaced
    /// in the Delta tables `analytics/<table>` (one commit per table), headline columns
    /// of `daily_gpu` printed, an HTML report; then upkeep of the day's partitions.
    Daily(DailyArgs),
    /// Runs a read-only SQL query over the lake's tables and prints the result.
    Sql(SqlArgs),
    /// Upkeep of every table: compacts closed days (Delta OPTIMIZE), writes a
    /// checkpoint, vacuums files no recent version references.
    Maintain(MaintainArgs),
    /// Converts a lake of the previous layout (bare Hive-partitioned Parquet) into Delta
    /// tables in place, carrying the stream processor's Kafka progress over.
    Convert(ConvertArgs),
    /// Writes a synthetic fleet day into a lake (benchmarks and demos).
    Generate(GenerateArgs),
    /// Shows the effective settings and exits.
    Config(ConfigArgs),
}

/// `--lake`.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct LakeFlag {
    /// Lake root: a local directory, `file:///dir` or `s3://bucket/prefix` (S3 endpoint
    /// and credentials from the usual `AWS_*` variables). Required.
    #[arg(long, env = "GPUSTREAM_LAKE", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lake: Option<String>,
}

/// Bool flag: `--flag` (true), `--flag=false`, or the variable set to true/false/1/0.
fn bool_flag() -> clap::builder::BoolishValueParser {
    clap::builder::BoolishValueParser::new()
}

/// Flags of the nightly analysis.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct AnalysisFlags {
    /// IANA timezone of the `hourly` table's hours of day and of what "yesterday" is
    /// [default: the machine's zone].
    #[arg(long, env = "GPUSTREAM_TIMEZONE", value_name = "TZ")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A sample is idle below this load, percent [default: 10].
    #[arg(long, env = "GPUSTREAM_IDLE_BELOW", value_name = "PCT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_below: Option<f64>,
    /// A sample is busy at or above this load, percent [default: 70].
    #[arg(long, env = "GPUSTREAM_BUSY_FROM", value_name = "PCT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_from: Option<f64>,
    /// A temperature spike is a rise of more than this many °C ... [default: 10]
    #[arg(long, env = "GPUSTREAM_SPIKE_RISE", value_name = "CELSIUS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spike_rise: Option<f64>,
    /// ... within this time, inside one session and without a gap [default: 30s].
    #[arg(long, env = "GPUSTREAM_SPIKE_WINDOW", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub spike_window: Option<Duration>,
    /// An interval longer than this many times the session's typical (median)
    /// interval is a gap: no energy is integrated and no spike is followed across it
    /// [default: 3].
    #[arg(long, env = "GPUSTREAM_GAP_FACTOR", value_name = "X")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap_factor: Option<f64>,
    /// Intervals up to this long are never gaps (1-second timestamps jitter)
    /// [default: 2s].
    #[arg(long, env = "GPUSTREAM_GAP_FLOOR", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub gap_floor: Option<Duration>,
    /// Intervals longer than this are always gaps [default: 120s].
    #[arg(long, env = "GPUSTREAM_MAX_INTERVAL", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub max_interval: Option<Duration>,
    /// Allocation labels: a CSV file `host,gpu,start,end,user,job[,project]` of who held
    /// which GPU when (see docs/batch-analytics.md). Without it, allocation is unknown.
    #[arg(long, env = "GPUSTREAM_ALLOCATIONS", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations: Option<String>,
    /// `waste`: a sample is idle below this load, percent ... [default: 5]
    #[arg(long, env = "GPUSTREAM_WASTE_IDLE_BELOW", value_name = "PCT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waste_idle_below: Option<f64>,
    /// ... and idle runs count as waste from this long on [default: 30m].
    #[arg(long, env = "GPUSTREAM_WASTE_MIN_IDLE", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub waste_min_idle: Option<Duration>,
    /// `energy_by_owner`: grid carbon intensity in g CO2e per kWh, for `co2e_kg`
    /// [default: none, no CO2e].
    #[arg(long, env = "GPUSTREAM_GRID_INTENSITY", value_name = "G_PER_KWH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid_intensity: Option<f64>,
    /// `throttling`: temperature limit (°C) of GPU models without their own
    /// [default: 85].
    #[arg(long, env = "GPUSTREAM_THERMAL_LIMIT", value_name = "CELSIUS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thermal_limit: Option<f64>,
    /// `throttling`: temperature limit of one GPU model, `"MODEL=CELSIUS"` with the
    /// samples' `gpu_name`; repeat for several (the variable separates them with `;`).
    #[arg(
        long = "model-thermal-limit",
        env = "GPUSTREAM_MODEL_THERMAL_LIMIT",
        value_name = "MODEL=CELSIUS",
        value_delimiter = ';'
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_thermal_limit: Vec<String>,
    /// `cohorts`: width of the power buckets temperatures are compared in, W
    /// [default: 25].
    #[arg(long, env = "GPUSTREAM_COHORT_POWER_BUCKET", value_name = "WATTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort_power_bucket: Option<f64>,
    /// `cohorts`: a GPU this much hotter (°C) than its model's median at equal power
    /// is an outlier [default: 5].
    #[arg(long, env = "GPUSTREAM_COHORT_OUTLIER", value_name = "CELSIUS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort_outlier: Option<f64>,
    /// Also write each table's day as CSV to `analytics/_csv/<table>/date=D/part-0.csv`.
    #[arg(
        long,
        env = "GPUSTREAM_CSV",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = bool_flag(),
        hide_possible_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<bool>,
    /// Also write the HTML report to this local file (with a range: `{date}` in the
    /// name is replaced by each day).
    #[arg(long, env = "GPUSTREAM_REPORT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Do not write the HTML report into the lake (`analytics/_reports/date=D/report.html`).
    #[arg(
        long,
        env = "GPUSTREAM_NO_REPORT",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = bool_flag(),
        hide_possible_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_report: Option<bool>,
}

/// Flags of table upkeep.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct UpkeepFlags {
    /// Compaction writes files of about this size, e.g. 128MiB, 64MB [default: 128MiB].
    #[arg(long, env = "GPUSTREAM_TARGET_FILE_SIZE", value_name = "SIZE", value_parser = parse_size)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_file_size: Option<u64>,
    /// Vacuum deletes data files that no version younger than this references, e.g.
    /// 24h, 7d. A reader (or a writer that has not committed yet) older than this may
    /// lose files [default: 24h].
    #[arg(long, env = "GPUSTREAM_RETENTION", value_parser = parse_duration)]
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_opt_duration")]
    pub retention: Option<Duration>,
}

/// Arguments of `daily`.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct DailyArgs {
    /// The lake.
    #[command(flatten)]
    #[serde(flatten)]
    pub lake: LakeFlag,
    /// The analysis.
    #[command(flatten)]
    #[serde(flatten)]
    pub analysis: AnalysisFlags,
    /// Upkeep after the run.
    #[command(flatten)]
    #[serde(flatten)]
    pub upkeep: UpkeepFlags,
    /// Do not maintain the processed days' partitions afterwards.
    #[arg(
        long,
        env = "GPUSTREAM_NO_MAINTAIN",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = bool_flag(),
        hide_possible_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_maintain: Option<bool>,
    /// UTC day to aggregate (`YYYY-MM-DD`). Default: yesterday in `--timezone`.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with_all = ["from", "to"])]
    #[serde(skip)]
    pub date: Option<NaiveDate>,
    /// First UTC day of a range (with `--to`, inclusive); each day is run and written
    /// on its own.
    #[arg(
        long,
        env = "GPUSTREAM_FROM",
        value_name = "YYYY-MM-DD",
        requires = "to"
    )]
    #[serde(skip)]
    pub from: Option<NaiveDate>,
    /// Last UTC day of a range (inclusive).
    #[arg(
        long,
        env = "GPUSTREAM_TO",
        value_name = "YYYY-MM-DD",
        requires = "from"
    )]
    #[serde(skip)]
    pub to: Option<NaiveDate>,
}

impl DailyArgs {
    /// The days to run, in order.
    pub fn days(&self, tz: chrono_tz::Tz) -> Result<Vec<NaiveDate>> {
        match (self.date, self.from, self.to) {
            (Some(d), _, _) => Ok(vec![d]),
            (None, Some(from), Some(to)) => {
                if from > to {
                    return Err(Error::Options(format!("--from {from} is after --to {to}")));
                }
                Ok(from.iter_days().take_while(|d| *d <= to).collect())
            }
            _ => Ok(vec![default_date(tz, Utc::now())]),
        }
    }
}

/// Arguments of `maintain`.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct MaintainArgs {
    /// The lake.
    #[command(flatten)]
    #[serde(flatten)]
    pub lake: LakeFlag,
    /// Sizes and retention.
    #[command(flatten)]
    #[serde(flatten)]
    pub upkeep: UpkeepFlags,
    /// Compact this UTC day only (even if it is today's).
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "before")]
    #[serde(skip)]
    pub date: Option<NaiveDate>,
    /// Compact every day strictly before this one [default: today, UTC].
    #[arg(long, value_name = "YYYY-MM-DD")]
    #[serde(skip)]
    pub before: Option<NaiveDate>,
}

/// Arguments of `convert`.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct ConvertArgs {
    /// The lake.
    #[command(flatten)]
    #[serde(flatten)]
    pub lake: LakeFlag,
}

/// Arguments of `generate`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct GenerateArgs {
    /// The lake to write into.
    #[command(flatten)]
    #[serde(flatten)]
    pub lake: LakeFlag,
    /// UTC day to fill.
    #[arg(long, value_name = "YYYY-MM-DD")]
    #[serde(skip)]
    pub date: NaiveDate,
    /// Number of GPUs (8 per host).
    #[arg(long, default_value_t = 12)]
    #[serde(skip)]
    pub gpus: usize,
    /// Sampling interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    #[serde(skip)]
    pub interval_ms: u64,
    /// Kafka partitions the GPUs are spread over (one file per partition and hour).
    #[arg(long, default_value_t = 12)]
    #[serde(skip)]
    pub partitions: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    #[serde(skip)]
    pub seed: u64,
}

/// Arguments of `sql`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SqlArgs {
    /// The lake.
    #[command(flatten)]
    #[serde(flatten)]
    pub lake: LakeFlag,
    /// Output format: an ASCII table for people, or CSV with a header for scripts
    /// [default: table].
    #[arg(long, env = "GPUSTREAM_FORMAT", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
    /// The query, e.g. "SELECT count(*) FROM samples WHERE date = '2024-01-02'".
    /// `SHOW TABLES` lists the tables.
    #[arg(value_name = "SQL")]
    #[serde(skip)]
    pub query: String,
}

/// Arguments of `config`: every setting's flag, so the printout shows what a command
/// given the same flags and environment would use.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct ConfigArgs {
    /// Print the effective settings as a `[batch_analytics]` section.
    #[arg(long)]
    #[serde(skip)]
    pub print: bool,
    /// The lake.
    #[command(flatten)]
    #[serde(flatten)]
    pub lake: LakeFlag,
    /// The analysis.
    #[command(flatten)]
    #[serde(flatten)]
    pub analysis: AnalysisFlags,
    /// Upkeep.
    #[command(flatten)]
    #[serde(flatten)]
    pub upkeep: UpkeepFlags,
    /// Do not maintain after `daily`.
    #[arg(
        long,
        env = "GPUSTREAM_NO_MAINTAIN",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = bool_flag(),
        hide_possible_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_maintain: Option<bool>,
    /// Output format of `sql`.
    #[arg(long, env = "GPUSTREAM_FORMAT", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<OutputFormat>,
}

/// How `sql` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// ASCII table followed by a row count.
    Table,
    /// CSV with a header line, nothing else on stdout.
    Csv,
}
