//! Command line of the `batch-analytics` binary and what each command does.
//!
//! Every flag can also come from the environment (`GPUSTREAM_<FLAG>`) or from the TOML
//! file of `--config` (`lake = "s3://bucket/lake"`, `timezone = "Europe/Berlin"`),
//! with flags taking precedence over the environment over the file.

use std::io::Write;

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gpustream_lake::Lake;
use gpustream_runtime::config::parse_duration;

use crate::daily::{DAILY_GPU_TABLE, DailyOutput, default_date, resolve_timezone};
use crate::error::{Error, Result};
use crate::model::AnalysisOptions;
use crate::nightly::{NightlyOptions, run_nightly};
use crate::sql::run_sql;
use crate::tables::{LakeSession, PartitionDiscovery, RegisterOptions};
use gpustream_sim::lake_day::{SynthOptions, write_synthetic_day};

/// Batch analytics over the GPU telemetry Parquet lake.
#[derive(Debug, Parser)]
#[command(name = "batch-analytics", version, about)]
pub struct Cli {
    /// TOML configuration file (also `GPUSTREAM_CONFIG`); read before flags are parsed.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<String>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Nightly job: the analytics tables of one UTC day (or a range), written to
    /// `analytics/<table>/date=D/`, headline columns of `daily_gpu` printed, plus an
    /// HTML report.
    Daily(DailyArgs),
    /// Runs a read-only SQL query over the lake's tables and prints the result.
    Sql(SqlArgs),
    /// Writes a synthetic fleet day into a lake (benchmarks and demos).
    Generate(GenerateArgs),
}

/// Where the lake is and how to register it.
#[derive(Debug, Clone, Args)]
pub struct LakeArgs {
    /// Lake root: a local directory, `file:///dir` or `s3://bucket/prefix` (S3 endpoint
    /// and credentials from the usual `AWS_*` variables).
    #[arg(long, env = "GPUSTREAM_LAKE", value_name = "URL")]
    pub lake: String,
    /// Also register sub-partition columns below `date` (e.g. `hour`) that every file
    /// has. Lists every file of every table first.
    #[arg(long, env = "GPUSTREAM_INFER_PARTITIONS")]
    pub infer_partitions: bool,
}

impl LakeArgs {
    /// Opens the lake and registers its tables.
    pub async fn open_session(&self) -> Result<LakeSession> {
        let lake = Lake::open(&self.lake)?;
        let partitions = if self.infer_partitions {
            PartitionDiscovery::Infer
        } else {
            PartitionDiscovery::DateOnly
        };
        LakeSession::open(lake, RegisterOptions { partitions }).await
    }
}

/// Arguments of `daily`.
#[derive(Debug, Clone, Args)]
pub struct DailyArgs {
    /// The lake.
    #[command(flatten)]
    pub lake: LakeArgs,
    /// UTC day to aggregate (`YYYY-MM-DD`). Default: yesterday in `--timezone`.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// First UTC day of a range (with `--to`, inclusive); each day is run and written
    /// on its own.
    #[arg(
        long,
        env = "GPUSTREAM_FROM",
        value_name = "YYYY-MM-DD",
        requires = "to"
    )]
    pub from: Option<NaiveDate>,
    /// Last UTC day of a range (inclusive).
    #[arg(
        long,
        env = "GPUSTREAM_TO",
        value_name = "YYYY-MM-DD",
        requires = "from"
    )]
    pub to: Option<NaiveDate>,
    /// IANA timezone of the `hourly` table's hours of day and of what "yesterday" is.
    /// Default: the machine's zone.
    #[arg(long, env = "GPUSTREAM_TIMEZONE", value_name = "TZ")]
    pub timezone: Option<String>,
    /// A sample is idle below this load (percent).
    #[arg(
        long,
        env = "GPUSTREAM_IDLE_BELOW",
        default_value_t = 10.0,
        value_name = "PCT"
    )]
    pub idle_below: f64,
    /// A sample is busy at or above this load (percent).
    #[arg(
        long,
        env = "GPUSTREAM_BUSY_FROM",
        default_value_t = 70.0,
        value_name = "PCT"
    )]
    pub busy_from: f64,
    /// A temperature spike is a rise of more than this many °C ...
    #[arg(
        long,
        env = "GPUSTREAM_SPIKE_RISE",
        default_value_t = 10.0,
        value_name = "CELSIUS"
    )]
    pub spike_rise: f64,
    /// ... within this time, inside one session and without a gap.
    #[arg(long, env = "GPUSTREAM_SPIKE_WINDOW", default_value = "30s", value_parser = parse_duration)]
    pub spike_window: Duration,
    /// An interval longer than this many times the session's typical (median)
    /// interval is a gap: no energy is integrated and no spike is followed across it.
    #[arg(
        long,
        env = "GPUSTREAM_GAP_FACTOR",
        default_value_t = 3.0,
        value_name = "X"
    )]
    pub gap_factor: f64,
    /// Intervals up to this long are never gaps (1-second timestamps jitter).
    #[arg(long, env = "GPUSTREAM_GAP_FLOOR", default_value = "2s", value_parser = parse_duration)]
    pub gap_floor: Duration,
    /// Intervals longer than this are always gaps.
    #[arg(long, env = "GPUSTREAM_MAX_INTERVAL", default_value = "120s", value_parser = parse_duration)]
    pub max_interval: Duration,
    /// Also write each table as CSV (`part-0.csv`, with a `date` column) beside its
    /// Parquet file.
    #[arg(long, env = "GPUSTREAM_CSV")]
    pub csv: bool,
    /// Also write the HTML report to this local file (with a range: the last day's;
    /// `{date}` in the name is replaced by each day).
    #[arg(long, env = "GPUSTREAM_REPORT", value_name = "FILE")]
    pub report: Option<String>,
    /// Do not write the HTML report into the lake (`analytics/_reports/date=D/report.html`).
    #[arg(long, env = "GPUSTREAM_NO_REPORT")]
    pub no_report: bool,
}

impl DailyArgs {
    /// The run options these flags describe.
    pub fn options(&self) -> Result<NightlyOptions> {
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
        Ok(NightlyOptions {
            analysis,
            csv: self.csv,
            report: !self.no_report,
            render_report: self.report.is_some(),
        })
    }

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

/// Arguments of `generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The lake to write into.
    #[arg(long, env = "GPUSTREAM_LAKE", value_name = "URL")]
    pub lake: String,
    /// UTC day to fill.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: NaiveDate,
    /// Number of GPUs (8 per host).
    #[arg(long, default_value_t = 12)]
    pub gpus: usize,
    /// Sampling interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Kafka partitions the GPUs are spread over (one file per partition and hour).
    #[arg(long, default_value_t = 12)]
    pub partitions: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `sql`.
#[derive(Debug, Clone, Args)]
pub struct SqlArgs {
    /// The lake.
    #[command(flatten)]
    pub lake: LakeArgs,
    /// Output format: an ASCII table for people, or CSV with a header for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// The query, e.g. "SELECT count(*) FROM samples WHERE date = '2024-01-02'".
    /// `SHOW TABLES` lists the tables.
    #[arg(value_name = "SQL")]
    pub query: String,
}

/// How `sql` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// ASCII table followed by a row count.
    Table,
    /// CSV with a header line, nothing else on stdout.
    Csv,
}

/// Runs a parsed command line, writing its results to `out` (logs go to `tracing`).
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Daily(args) => {
            let options = args.options()?;
            let days = args.days(options.analysis.timezone)?;
            let session = args.lake.open_session().await?;
            for date in days {
                let mut nightly = run_nightly(&session, date, &options).await?;
                let html = nightly.report_html.take();
                let output = DailyOutput::from_nightly(nightly)?;
                writeln!(out, "{}", output.summary()?)?;
                writeln!(
                    out,
                    "{DAILY_GPU_TABLE} for {date} (UTC): {} row(s) written to {}",
                    output.rows, output.location
                )?;
                for t in output
                    .nightly
                    .tables
                    .iter()
                    .filter(|t| t.name != DAILY_GPU_TABLE)
                {
                    writeln!(
                        out,
                        "{} for {date}: {} row(s) written to {}",
                        t.name,
                        t.rows(),
                        t.location
                    )?;
                }
                if let Some(at) = &output.nightly.report_location {
                    writeln!(out, "report for {date}: {at}")?;
                }
                // `render_report` is set whenever a file is asked for, so `html` is there.
                if let (Some(file), Some(html)) = (&args.report, html) {
                    let path = file.replace("{date}", &date.to_string());
                    std::fs::write(&path, html.as_bytes())?;
                    writeln!(out, "report for {date}: {path}")?;
                }
            }
        }
        Command::Generate(args) => {
            let lake = Lake::open(&args.lake)?;
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
                "{n} synthetic samples of {} GPU(s) written to {}samples/date={}/",
                args.gpus,
                lake.root_url(),
                args.date
            )?;
        }
        Command::Sql(args) => {
            let session = args.lake.open_session().await?;
            let output = run_sql(&session, &args.query).await?;
            match args.format {
                OutputFormat::Table => {
                    writeln!(out, "{}", output.pretty()?)?;
                    writeln!(out, "{} row(s)", output.rows())?;
                }
                OutputFormat::Csv => output.write_csv(out)?,
            }
        }
    }
    Ok(())
}
