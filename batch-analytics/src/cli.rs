//! Command line of the `batch-analytics` binary and what each command does.
//!
//! Every flag can also come from the environment (`GPUSTREAM_<FLAG>`) or from the TOML
//! file of `--config` (`lake = "s3://bucket/lake"`, `timezone = "Europe/Berlin"`),
//! with flags taking precedence over the environment over the file.

use std::io::Write;

use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gpustream::lake::Lake;

use crate::daily::{default_date, resolve_timezone, run_daily};
use crate::error::Result;
use crate::sql::run_sql;
use crate::tables::{LakeSession, PartitionDiscovery, RegisterOptions};

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
    /// Nightly job: per-GPU daily statistics of one UTC day, written to
    /// `analytics/daily_gpu/date=D/` and printed.
    Daily(DailyArgs),
    /// Runs a read-only SQL query over the lake's tables and prints the result.
    Sql(SqlArgs),
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
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<NaiveDate>,
    /// IANA timezone that decides what "yesterday" is. Default: the machine's zone.
    #[arg(long, env = "GPUSTREAM_TIMEZONE", value_name = "TZ")]
    pub timezone: Option<String>,
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
            let date = match args.date {
                Some(d) => d,
                None => {
                    let tz = resolve_timezone(args.timezone.as_deref())?;
                    default_date(tz, Utc::now())
                }
            };
            let session = args.lake.open_session().await?;
            let output = run_daily(&session, date).await?;
            writeln!(out, "{}", output.pretty()?)?;
            writeln!(
                out,
                "daily_gpu for {date} (UTC): {} row(s) written to {}",
                output.rows, output.location
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
