//! The nightly job: reads one UTC day of samples (and anomalies), computes every
//! analytics table and replaces that day's outputs.
//!
//! One run is a pipeline of four steps, one module each:
//!
//! 1. `scan`: list `samples/date=D/` and read it hour by hour (lake I/O);
//! 2. `compute`: feed the per-GPU accumulators of [`crate::analyze`] and produce the
//!    day's [`DayResult`](crate::model::DayResult);
//! 3. `batches`: the output tables as Arrow batches, built from the model (and, when
//!    asked for, the HTML report of [`crate::report`]);
//! 4. `publish`: replace each table's `analytics/<table>/date=D/` output atomically,
//!    and the report (lake I/O).
//!
//! Storage is touched only by `scan` and `publish`.

mod batches;
mod compute;
mod publish;
mod scan;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use gpustream_lake::SAMPLES_TABLE;

use crate::error::Result;
use crate::model::{AnalysisOptions, DayResult};
use crate::tables::LakeSession;

pub use batches::{
    ANOMALY_SUMMARY_TABLE, CORRELATIONS_TABLE, DAILY_FLEET_TABLE, DAILY_GPU_TABLE, DAILY_STATS,
    GPU_COMPARISON_TABLE, HOURLY_TABLE, NIGHTLY_TABLES, SPIKES_TABLE, build_tables,
};
pub use publish::{PART_FILE, report_path, table_path};
pub use scan::scan_sql;

/// Options of a nightly run.
#[derive(Debug, Clone, Default)]
pub struct NightlyOptions {
    /// Thresholds, spike and gap rules, timezone.
    pub analysis: AnalysisOptions,
    /// Also write `part-0.csv` (with a `date` column) beside each Parquet file.
    pub csv: bool,
    /// Render the HTML report and write it into the lake
    /// (`analytics/_reports/date=D/report.html`).
    pub report: bool,
    /// Render the HTML report into [`NightlyOutput::report_html`] even when it is not
    /// written into the lake (the command line's `--report FILE`).
    pub render_report: bool,
}

impl NightlyOptions {
    /// Whether the run renders the HTML report at all.
    pub fn renders_report(&self) -> bool {
        self.report || self.render_report
    }
}

/// One output table of a run.
#[derive(Debug, Clone)]
pub struct TableOutput {
    /// Table name.
    pub name: &'static str,
    /// Rows, `date` column first.
    pub batch: RecordBatch,
    /// URL of the Parquet file written.
    pub location: String,
    /// Other `.parquet` files removed from the day's partition (normally none).
    pub removed: Vec<String>,
}

impl TableOutput {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }
}

/// Everything a nightly run of one day produced.
#[derive(Debug, Clone)]
pub struct NightlyOutput {
    /// The UTC day.
    pub date: NaiveDate,
    /// The tables, in [`NIGHTLY_TABLES`] order.
    pub tables: Vec<TableOutput>,
    /// The HTML report, when the options asked for it
    /// ([`NightlyOptions::renders_report`]).
    pub report_html: Option<String>,
    /// URL of the report in the lake, when written there.
    pub report_location: Option<String>,
    /// Samples read.
    pub samples: u64,
}

impl NightlyOutput {
    /// The output table of that name.
    pub fn table(&self, name: &str) -> Option<&TableOutput> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Runs the nightly job for every day from `from` to `to` (inclusive).
pub async fn run_range(
    session: &LakeSession,
    from: NaiveDate,
    to: NaiveDate,
    options: &NightlyOptions,
) -> Result<Vec<NightlyOutput>> {
    let mut out = Vec::new();
    for date in from.iter_days().take_while(|d| *d <= to) {
        out.push(run_nightly(session, date, options).await?);
    }
    Ok(out)
}

/// Computes and writes every nightly table for UTC day `date` (and the report, when
/// the options ask for it).
///
/// Fails with [`Error::MissingTable`](crate::Error::MissingTable) when the lake has no
/// `samples` table. A day without samples writes empty tables (so stale figures of an
/// earlier run disappear).
pub async fn run_nightly(
    session: &LakeSession,
    date: NaiveDate,
    options: &NightlyOptions,
) -> Result<NightlyOutput> {
    session.require_table(SAMPLES_TABLE)?;
    let day = analyze_day(session, date, &options.analysis).await?;
    let samples = day.fleet.samples;
    if samples == 0 {
        tracing::warn!(%date, "no samples in partition date={date}: writing empty tables");
    }
    let tables = build_tables(&day)?;
    let report_html = options
        .renders_report()
        .then(|| crate::report::render(&day));
    let lake = &session.lake;
    let tables = publish::publish_tables(lake, date, tables, options.csv).await?;
    let report_location = match &report_html {
        Some(html) if options.report => Some(publish::publish_report(lake, date, html).await?),
        _ => None,
    };
    tracing::info!(%date, samples, gpus = day.gpus.len(), "nightly tables written");
    Ok(NightlyOutput {
        date,
        tables,
        report_html,
        report_location,
        samples,
    })
}

/// Reads and analyses one UTC day (nothing is written).
pub async fn analyze_day(
    session: &LakeSession,
    date: NaiveDate,
    options: &AnalysisOptions,
) -> Result<DayResult> {
    let mut day = compute::DayAccumulator::new(date, options);
    let mut samples = scan::DaySamples::open(&session.lake, date).await?;
    while let Some(batch) = samples.next().await? {
        day.feed(&batch);
    }
    let anomalies = scan::anomaly_events(session, date).await?;
    Ok(day.finish(&anomalies))
}
