//! Command line and configuration of the `batch-analytics` binary, and what each command
//! does.
//!
//! Settings come from flags (each with its `GPUSTREAM_*` variable), over the
//! `[batch_analytics]` section of the `--config` file, over built-in defaults
//! ([`Settings`]). Which day to run, the query and the generator's knobs are
//! per-invocation flags, not settings.

use std::io::Write;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gpustream_lake::Lake;
use gpustream_lake::delta::MaintainOptions;
use gpustream_runtime::config::{
    load_file, parse_duration, resolve, serde_duration, serde_opt_duration,
};
use gpustream_sim::lake_day::{SynthOptions, write_synthetic_day};
use serde::{Deserialize, Serialize};

use crate::daily::{DAILY_GPU_TABLE, DailyOutput, default_date, resolve_timezone};
use crate::error::{Error, Result};
use crate::maintain::{DaySelection, maintain_lake, parse_size, serde_size};
use crate::model::AnalysisOptions;
use crate::nightly::{NightlyOptions, run_nightly};
use crate::sql::run_sql;
use crate::tables::LakeSession;

/// The configuration file section of this binary.
pub const SECTION: &str = "batch_analytics";

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

/// Every key of the `[batch_analytics]` section, with its effective value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Lake root URL (required).
    pub lake: String,
    /// IANA timezone (`None`: the machine's zone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Idle below this load, percent.
    pub idle_below: f64,
    /// Busy at or above this load, percent.
    pub busy_from: f64,
    /// A spike rises more than this, °C ...
    pub spike_rise: f64,
    /// ... within this time.
    #[serde(with = "serde_duration")]
    pub spike_window: Duration,
    /// Gap: an interval this many times the typical one.
    pub gap_factor: f64,
    /// Intervals up to this are never gaps.
    #[serde(with = "serde_duration")]
    pub gap_floor: Duration,
    /// Intervals above this are always gaps.
    #[serde(with = "serde_duration")]
    pub max_interval: Duration,
    /// Allocation labels file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations: Option<String>,
    /// `waste`: idle below this load, percent.
    pub waste_idle_below: f64,
    /// `waste`: idle runs from this long on.
    #[serde(with = "serde_duration")]
    pub waste_min_idle: Duration,
    /// `energy_by_owner`: g CO2e per kWh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid_intensity: Option<f64>,
    /// `throttling`: default temperature limit, °C.
    pub thermal_limit: f64,
    /// `throttling`: `MODEL=CELSIUS` limits.
    pub model_thermal_limit: Vec<String>,
    /// `cohorts`: power bucket width, W.
    pub cohort_power_bucket: f64,
    /// `cohorts`: outlier threshold, °C.
    pub cohort_outlier: f64,
    /// Also write CSV copies.
    pub csv: bool,
    /// Also write the report to this local file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Do not write the report into the lake.
    pub no_report: bool,
    /// Do not maintain after `daily`.
    pub no_maintain: bool,
    /// Compaction target file size, bytes.
    #[serde(with = "serde_size")]
    pub target_file_size: u64,
    /// Vacuum retention.
    #[serde(with = "serde_duration")]
    pub retention: Duration,
    /// Output format of `sql`.
    pub format: OutputFormat,
}

impl Default for Settings {
    fn default() -> Self {
        let analysis = AnalysisOptions::default();
        let upkeep = MaintainOptions::default();
        Settings {
            lake: String::new(),
            timezone: None,
            idle_below: analysis.idle_below_pct,
            busy_from: analysis.busy_from_pct,
            spike_rise: analysis.spike_rise_c,
            spike_window: Duration::from_secs_f64(analysis.spike_window_s),
            gap_factor: analysis.gap_factor,
            gap_floor: Duration::from_secs_f64(analysis.gap_floor_s),
            max_interval: Duration::from_secs_f64(analysis.max_interval_s),
            allocations: None,
            waste_idle_below: analysis.waste_idle_below_pct,
            waste_min_idle: Duration::from_secs_f64(analysis.waste_min_idle_s),
            grid_intensity: analysis.grid_g_per_kwh,
            thermal_limit: analysis.thermal_limit_c,
            model_thermal_limit: Vec::new(),
            cohort_power_bucket: analysis.cohort_power_bucket_w,
            cohort_outlier: analysis.cohort_outlier_c,
            csv: false,
            report: None,
            no_report: false,
            no_maintain: false,
            target_file_size: upkeep.target_file_size.get(),
            retention: upkeep.retention,
            format: OutputFormat::Table,
        }
    }
}

impl Settings {
    /// Opens the lake; an error names where `lake` can be set when it is not.
    pub fn open_lake(&self) -> Result<Lake> {
        if self.lake.trim().is_empty() {
            return Err(Error::Config(gpustream_runtime::Error::Setting {
                name: "lake".into(),
                message: format!(
                    "required: set --lake, GPUSTREAM_LAKE or `lake` in [{SECTION}] of the --config file"
                ),
            }));
        }
        Ok(Lake::open(&self.lake)?)
    }

    /// The options of a nightly run, checked.
    pub fn nightly_options(&self) -> Result<NightlyOptions> {
        let timezone = resolve_timezone(self.timezone.as_deref())?;
        let analysis = AnalysisOptions {
            timezone,
            idle_below_pct: self.idle_below,
            busy_from_pct: self.busy_from,
            spike_rise_c: self.spike_rise,
            spike_window_s: self.spike_window.as_secs_f64(),
            gap_factor: self.gap_factor,
            gap_floor_s: self.gap_floor.as_secs_f64(),
            max_interval_s: self.max_interval.as_secs_f64(),
            waste_idle_below_pct: self.waste_idle_below,
            waste_min_idle_s: self.waste_min_idle.as_secs_f64(),
            grid_g_per_kwh: self.grid_intensity,
            thermal_limit_c: self.thermal_limit,
            model_thermal_limits: self
                .model_thermal_limit
                .iter()
                .map(String::as_str)
                .map(parse_model_limit)
                .collect::<Result<_>>()?,
            cohort_power_bucket_w: self.cohort_power_bucket,
            cohort_outlier_c: self.cohort_outlier,
        };
        // Written so a NaN threshold is refused too.
        let ordered = analysis.idle_below_pct <= analysis.busy_from_pct;
        if !ordered {
            return Err(Error::Options(format!(
                "--idle-below ({}) must not be above --busy-from ({})",
                analysis.idle_below_pct, analysis.busy_from_pct
            )));
        }
        let sane = analysis.spike_rise_c > 0.0 && analysis.gap_factor >= 1.0;
        if !sane {
            return Err(Error::Options(
                "--spike-rise must be positive and --gap-factor at least 1".into(),
            ));
        }
        // Each written so a NaN is refused too.
        let checks = [
            (
                analysis.waste_idle_below_pct > 0.0 && analysis.waste_idle_below_pct <= 100.0,
                "--waste-idle-below must be above 0 and at most 100",
            ),
            (
                analysis.grid_g_per_kwh.is_none_or(|g| g >= 0.0),
                "--grid-intensity must not be negative",
            ),
            (
                analysis.thermal_limit_c.is_finite(),
                "--thermal-limit must be a number",
            ),
            (
                analysis.cohort_power_bucket_w > 0.0 && analysis.cohort_power_bucket_w.is_finite(),
                "--cohort-power-bucket must be positive",
            ),
            (
                analysis.cohort_outlier_c >= 0.0,
                "--cohort-outlier must not be negative",
            ),
        ];
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(Error::Options((*message).into()));
        }
        let allocations = match &self.allocations {
            Some(path) if !path.trim().is_empty() => Some(std::sync::Arc::new(
                crate::allocations::load(std::path::Path::new(path))?,
            )),
            _ => None,
        };
        Ok(NightlyOptions {
            analysis,
            csv: self.csv,
            report: !self.no_report,
            render_report: self.report.is_some(),
            allocations,
        })
    }

    /// The options of table upkeep.
    pub fn maintain_options(&self) -> Result<MaintainOptions> {
        let target_file_size = NonZeroU64::new(self.target_file_size)
            .ok_or_else(|| Error::Options("--target-file-size must be positive".into()))?;
        Ok(MaintainOptions {
            target_file_size,
            retention: self.retention,
        })
    }

    /// The settings as the `[batch_analytics]` section of a configuration file.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!("[{SECTION}]\n{body}")
    }
}

/// Parses one `MODEL=CELSIUS` thermal limit (the model may itself contain `=`: the
/// last one separates).
fn parse_model_limit(entry: &str) -> Result<(String, f64)> {
    let bad = || {
        Error::Options(format!(
            "--model-thermal-limit `{entry}`: expected MODEL=CELSIUS, e.g. \"NVIDIA A100-SXM4-80GB=85\""
        ))
    };
    let (model, limit) = entry.rsplit_once('=').ok_or_else(bad)?;
    let limit: f64 = limit.trim().parse().map_err(|_| bad())?;
    if model.trim().is_empty() || !limit.is_finite() {
        return Err(bad());
    }
    Ok((model.trim().to_string(), limit))
}

impl Cli {
    /// The effective settings: the command's flags and their environment variables over
    /// the configuration file's `[batch_analytics]` section over the defaults.
    pub fn effective(&self) -> Result<Settings> {
        let file = load_file(self.config.as_deref())?;
        let file = file.as_ref();
        let settings = match &self.command {
            Command::Daily(a) => resolve(file, SECTION, a),
            Command::Sql(a) => resolve(file, SECTION, a),
            Command::Maintain(a) => resolve(file, SECTION, a),
            Command::Convert(a) => resolve(file, SECTION, a),
            Command::Generate(a) => resolve(file, SECTION, a),
            Command::Config(a) => resolve(file, SECTION, a),
        }?;
        Ok(settings)
    }
}

/// Runs a parsed command line, writing its results to `out` (logs go to `tracing`).
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let settings = cli.effective()?;
    match cli.command {
        Command::Daily(args) => daily(&settings, &args, out).await?,
        Command::Maintain(args) => {
            let lake = settings.open_lake()?;
            let days = match (args.date, args.before) {
                (Some(d), _) => DaySelection::Days(vec![d]),
                (None, Some(before)) => DaySelection::Before(before),
                (None, None) => DaySelection::Before(Utc::now().date_naive()),
            };
            let done = maintain_lake(&lake, &days, &settings.maintain_options()?).await?;
            if done.is_empty() {
                writeln!(out, "no Delta tables in {}", lake.root_url())?;
            }
            for t in done {
                writeln!(out, "{t}")?;
            }
        }
        Command::Convert(_) => {
            let lake = settings.open_lake()?;
            let report = gpustream_lake::delta::convert_lake(&lake).await?;
            if report.converted.is_empty() {
                writeln!(
                    out,
                    "nothing to convert in {}: no table of the previous layout",
                    lake.root_url()
                )?;
            }
            for (table, files) in &report.converted {
                writeln!(
                    out,
                    "converted {table}: {files} file(s) now in the Delta table (none copied)"
                )?;
            }
            for (app, offset) in &report.progress {
                writeln!(out, "progress carried over: {app} through offset {offset}")?;
            }
        }
        Command::Generate(args) => {
            let lake = settings.open_lake()?;
            let opts = SynthOptions {
                date: args.date,
                gpus: args.gpus,
                interval_ms: args.interval_ms,
                partitions: args.partitions,
                seed: args.seed,
            };
            let n = write_synthetic_day(&lake, &opts).await?;
            writeln!(
                out,
                "{n} synthetic samples of {} GPU(s) written to {}samples (date={})",
                args.gpus,
                lake.root_url(),
                args.date
            )?;
        }
        Command::Sql(args) => {
            let session = LakeSession::open(settings.open_lake()?).await?;
            let output = run_sql(&session, &args.query).await?;
            match settings.format {
                OutputFormat::Table => {
                    writeln!(out, "{}", output.pretty()?)?;
                    writeln!(out, "{} row(s)", output.rows())?;
                }
                OutputFormat::Csv => output.write_csv(out)?,
            }
        }
        Command::Config(_) => write!(out, "{}", settings.to_toml())?,
    }
    Ok(())
}

/// `daily`: the nightly job for each day, then upkeep of the closed ones.
async fn daily(settings: &Settings, args: &DailyArgs, out: &mut dyn Write) -> Result<()> {
    let options = settings.nightly_options()?;
    let days = args.days(options.analysis.timezone)?;
    let lake = settings.open_lake()?;
    let session = LakeSession::open(lake.clone()).await?;
    for &date in &days {
        let mut nightly = run_nightly(&session, date, &options).await?;
        let html = nightly.report_html.take();
        let output = DailyOutput::from_nightly(nightly)?;
        writeln!(out, "{}", output.summary()?)?;
        writeln!(
            out,
            "{DAILY_GPU_TABLE} for {date} (UTC): {} row(s) written to {} (version {})",
            output.rows, output.location, output.version
        )?;
        for t in output
            .nightly
            .tables
            .iter()
            .filter(|t| t.name != DAILY_GPU_TABLE)
        {
            writeln!(
                out,
                "{} for {date}: {} row(s) written to {} (version {})",
                t.name,
                t.rows(),
                t.location,
                t.version
            )?;
        }
        if let Some(at) = &output.nightly.report_location {
            writeln!(out, "report for {date}: {at}")?;
        }
        // `render_report` is set whenever a file is asked for, so `html` is there.
        if let (Some(file), Some(html)) = (&settings.report, html) {
            let path = file.replace("{date}", &date.to_string());
            std::fs::write(&path, html.as_bytes())?;
            writeln!(out, "report for {date}: {path}")?;
        }
    }
    if settings.no_maintain {
        return Ok(());
    }
    // The stream processor still appends to today (and to a future day, for a clock
    // that runs ahead): compacting it now would be redone tomorrow.
    let today = Utc::now().date_naive();
    let closed: Vec<NaiveDate> = days.iter().copied().filter(|d| *d < today).collect();
    if closed.is_empty() {
        tracing::info!("no closed day processed: upkeep skipped");
        return Ok(());
    }
    let upkeep = maintain_lake(
        &lake,
        &DaySelection::Days(closed),
        &settings.maintain_options()?,
    )
    .await?;
    for t in upkeep {
        writeln!(out, "upkeep {t}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_project_configuration_file_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/gpustream.toml");
        let cli = parse(&["batch-analytics", "--config", path, "config", "--print"]);
        let s = cli
            .effective()
            .expect("config/gpustream.toml [batch_analytics]");
        assert_eq!(s.lake, "./lake");
        assert_eq!(s.timezone.as_deref(), Some("UTC"));
        assert_eq!(s.idle_below, 10.0, "not in the file: the default");
        // A flag wins over the file.
        let cli = parse(&[
            "batch-analytics",
            "--config",
            path,
            "daily",
            "--lake",
            "/tmp/other",
            "--timezone",
            "Europe/Berlin",
        ]);
        let s = cli.effective().expect("effective");
        assert_eq!(
            (s.lake.as_str(), s.timezone.as_deref()),
            ("/tmp/other", Some("Europe/Berlin"))
        );
    }

    #[test]
    fn defaults_without_a_file() {
        let s = parse(&["batch-analytics", "config", "--print"])
            .effective()
            .expect("defaults");
        let d = Settings::default();
        assert_eq!(s, d);
        assert_eq!(d.spike_window, Duration::from_secs(30));
        assert_eq!(d.target_file_size, 128 << 20);
        assert_eq!(d.retention, Duration::from_secs(24 * 3600));
        assert!(s.open_lake().unwrap_err().to_string().contains("--lake"));
    }

    #[test]
    fn file_below_flags_typos_name_the_line_and_print_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gpustream.toml");
        std::fs::write(
            &path,
            "[batch_analytics]\nlake = \"s3://b/lake\"\nspike_window = \"1m\"\ntarget_file_size = \"64MiB\"\nretention = \"7d\"\ncsv = true\nformat = \"csv\"\n",
        )
        .expect("write");
        let p = path.to_str().expect("utf-8 path");
        let s = parse(&[
            "batch-analytics",
            "--config",
            p,
            "maintain",
            "--target-file-size",
            "32MiB",
        ])
        .effective()
        .expect("effective");
        assert_eq!(s.lake, "s3://b/lake");
        assert_eq!(s.spike_window, Duration::from_secs(60));
        assert_eq!(s.target_file_size, 32 << 20, "flag over file");
        assert_eq!(s.retention, Duration::from_secs(7 * 86400));
        assert!(s.csv);
        assert_eq!(s.format, OutputFormat::Csv);
        // What `config --print` writes is a file that loads to the same settings.
        let printed = s.to_toml();
        assert!(
            printed.contains("target_file_size = \"32MiB\""),
            "{printed}"
        );
        std::fs::write(&path, &printed).expect("write back");
        let again = parse(&["batch-analytics", "--config", p, "config", "--print"])
            .effective()
            .expect("printed settings load");
        assert_eq!(again, s);

        std::fs::write(
            &path,
            "[batch_analytics]\nlake = \"x\"\nretension = \"1h\"\n",
        )
        .expect("write");
        let err = parse(&["batch-analytics", "--config", p, "config", "--print"])
            .effective()
            .expect_err("typo")
            .to_string();
        assert!(err.contains(&format!("{p}:3:")), "{err}");
        assert!(err.contains("did you mean `retention`"), "{err}");

        std::fs::write(&path, "[batch_analytics]\ntarget_file_size = \"huge\"\n").expect("write");
        let err = parse(&["batch-analytics", "--config", p, "config", "--print"])
            .effective()
            .expect_err("bad size")
            .to_string();
        assert!(err.contains(&format!("{p}:2:")), "{err}");
        assert!(err.contains("target_file_size"), "{err}");
    }

    #[test]
    fn fleet_settings_from_flags_are_checked() {
        let s = parse(&[
            "batch-analytics",
            "daily",
            "--lake",
            "x",
            "--waste-idle-below",
            "3",
            "--waste-min-idle",
            "45m",
            "--grid-intensity",
            "380",
            "--thermal-limit",
            "83",
            "--model-thermal-limit",
            "NVIDIA A100-SXM4-80GB=88",
            "--model-thermal-limit",
            "odd=name=90",
            "--cohort-power-bucket",
            "50",
        ])
        .effective()
        .expect("effective");
        let o = s.nightly_options().expect("valid");
        let a = &o.analysis;
        assert_eq!(a.waste_idle_below_pct, 3.0);
        assert_eq!(a.waste_min_idle_s, 2700.0);
        assert_eq!(a.grid_g_per_kwh, Some(380.0));
        assert_eq!(a.thermal_limit_c, 83.0);
        assert_eq!(
            a.model_thermal_limits,
            [
                ("NVIDIA A100-SXM4-80GB".to_string(), 88.0),
                ("odd=name".to_string(), 90.0)
            ]
        );
        assert_eq!(a.cohort_power_bucket_w, 50.0);
        assert!(o.allocations.is_none(), "no labels: allocation unknown");
        let mut defaults = Settings::default()
            .nightly_options()
            .expect("defaults")
            .analysis;
        defaults.timezone = chrono_tz::Tz::UTC;
        assert_eq!(defaults, AnalysisOptions::default(), "one set of defaults");

        for (flag, value, message) in [
            ("--model-thermal-limit", "A100", "MODEL=CELSIUS"),
            ("--model-thermal-limit", "A100=hot", "MODEL=CELSIUS"),
            ("--waste-idle-below", "0", "--waste-idle-below"),
            ("--grid-intensity", "-1", "--grid-intensity"),
            ("--cohort-power-bucket", "0", "--cohort-power-bucket"),
            (
                "--allocations",
                "/nonexistent/labels.csv",
                "/nonexistent/labels.csv",
            ),
        ] {
            let arg = format!("{flag}={value}");
            let s = parse(&["batch-analytics", "daily", "--lake", "x", &arg])
                .effective()
                .expect("effective");
            let err = s.nightly_options().expect_err(value).to_string();
            assert!(err.contains(message), "{flag} {value}: {err}");
        }
    }

    #[test]
    fn bool_flags_and_durations() {
        let s = parse(&[
            "batch-analytics",
            "daily",
            "--lake",
            "x",
            "--csv",
            "--no-maintain",
            "--no-report=false",
            "--gap-floor",
            "1500ms",
        ])
        .effective()
        .expect("effective");
        assert!(s.csv && s.no_maintain && !s.no_report);
        assert_eq!(s.gap_floor, Duration::from_millis(1500));
        assert!(
            Cli::try_parse_from(["batch-analytics", "maintain", "--target-file-size", "lots"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "batch-analytics",
                "maintain",
                "--date",
                "2024-01-02",
                "--before",
                "2024-01-03"
            ])
            .is_err(),
            "--date excludes --before"
        );
    }
}
