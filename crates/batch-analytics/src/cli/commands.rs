//! What each command does with its settings; results go to `out`, logs to `tracing`.

use std::io::Write;

use chrono::{NaiveDate, Utc};
use gpustream_sim::lake_day::{SynthOptions, write_synthetic_day};

use super::args::{Cli, Command, DailyArgs, GenerateArgs, MaintainArgs, OutputFormat, SqlArgs};
use super::settings::Settings;
use crate::daily::{DAILY_GPU_TABLE, DailyOutput};
use crate::error::Result;
use crate::maintain::{DaySelection, maintain_lake};
use crate::nightly::run_nightly;
use crate::sql::run_sql;
use crate::tables::LakeSession;

/// Runs a parsed command line, writing its results to `out` (logs go to `tracing`).
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let settings = cli.effective()?;
    match cli.command {
        Command::Daily(args) => daily(&settings, &args, out).await,
        Command::Maintain(args) => maintain(&settings, &args, out).await,
        Command::Convert(_) => convert(&settings, out).await,
        Command::Generate(args) => generate(&settings, &args, out).await,
        Command::Sql(args) => sql(&settings, &args, out).await,
        Command::Config(_) => {
            write!(out, "{}", settings.to_toml())?;
            Ok(())
        }
    }
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

/// `maintain`: upkeep of the chosen days of every table.
async fn maintain(settings: &Settings, args: &MaintainArgs, out: &mut dyn Write) -> Result<()> {
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
    Ok(())
}

/// `convert`: a lake of the previous layout into Delta tables, in place.
async fn convert(settings: &Settings, out: &mut dyn Write) -> Result<()> {
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
    Ok(())
}

/// `generate`: a synthetic fleet day into the lake.
async fn generate(settings: &Settings, args: &GenerateArgs, out: &mut dyn Write) -> Result<()> {
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
    Ok(())
}

/// `sql`: one read-only query, printed as a table or CSV.
async fn sql(settings: &Settings, args: &SqlArgs, out: &mut dyn Write) -> Result<()> {
    let session = LakeSession::open(settings.open_lake()?).await?;
    let output = run_sql(&session, &args.query).await?;
    match settings.format {
        OutputFormat::Table => {
            writeln!(out, "{}", output.pretty()?)?;
            writeln!(out, "{} row(s)", output.rows())?;
        }
        OutputFormat::Csv => output.write_csv(out)?,
    }
    Ok(())
}
