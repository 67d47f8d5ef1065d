//! The nightly job: reads one UTC day of samples (and anomalies), computes every
//! analytics table and replaces that day's outputs.
//!
//! One run is a pipeline of four steps, one module each:
//!
//! 1. `scan`: read the day from the Delta `samples` table hour by hour, each hour with
//!    a filter on the partition columns (lake I/O);
//! 2. `compute`: feed the per-GPU accumulators of [`crate::analyze`] and produce the
//!    day's [`DayResult`](crate::model::DayResult);
//! 3. `batches`: the output tables as Arrow batches, built from the model (and, when
//!    asked for, the HTML report of [`crate::report`]); the fleet tables' rows are
//!    defined in [`crate::model::fleet`] and [`crate::model::health`];
//! 4. `publish`: replace the day in each Delta table `analytics/<table>` with one
//!    commit per table, and write the report (lake I/O).
//!
//! Storage is touched only by `scan` (which also reads the previous days of `health`
//! for its trends) and `publish`.

mod batches;
mod compute;
mod publish;
mod scan;

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use gpustream_lake::SAMPLES_TABLE;

use crate::error::Result;
use crate::model::{Allocations, AnalysisOptions, DayResult};
use crate::tables::LakeSession;

pub use batches::{
    ANOMALY_SUMMARY_TABLE, COHORTS_TABLE, CORRELATIONS_TABLE, DAILY_FLEET_TABLE, DAILY_GPU_TABLE,
    DAILY_STATS, ENERGY_BY_OWNER_TABLE, GPU_COMPARISON_TABLE, HEALTH_TABLE, HOURLY_TABLE,
    NIGHTLY_TABLES, SPIKES_TABLE, THROTTLING_TABLE, WASTE_TABLE, build_tables,
};
pub use publish::{CSV_FILE, csv_path, report_path, table_location};
pub use scan::scan_sql;

/// Options of a nightly run.
#[derive(Debug, Clone, Default)]
pub struct NightlyOptions {
    /// Thresholds, spike and gap rules, timezone.
    pub analysis: AnalysisOptions,
    /// Also write each table's day as CSV (with a `date` column) to
    /// `analytics/_csv/<table>/date=D/part-0.csv`.
    pub csv: bool,
    /// Render the HTML report and write it into the lake
    /// (`analytics/_reports/date=D/report.html`).
    pub report: bool,
    /// Render the HTML report into [`NightlyOutput::report_html`] even when it is not
    /// written into the lake (the command line's `--report FILE`).
    pub render_report: bool,
    /// Who held which GPU when (`--allocations`); `None`: no labels, allocation
    /// unknown.
    pub allocations: Option<Arc<Allocations>>,
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
    /// URL of the Delta table (`.../analytics/<table>/`).
    pub location: String,
    /// The table version that replaced the day.
    pub version: u64,
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
/// `samples` table. A day without samples replaces the day with no rows (so stale
/// figures of an earlier run disappear).
pub async fn run_nightly(
    session: &LakeSession,
    date: NaiveDate,
    options: &NightlyOptions,
) -> Result<NightlyOutput> {
    session.require_table(SAMPLES_TABLE)?;
    let day = analyze_day(session, date, options).await?;
    let samples = day.fleet.samples;
    if samples == 0 {
        tracing::warn!(%date, "no samples dated {date}: the day's outputs will be empty");
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

/// Reads and analyses one UTC day (nothing is written), with the previous days'
/// `health` rows for its trends.
pub async fn analyze_day(
    session: &LakeSession,
    date: NaiveDate,
    options: &NightlyOptions,
) -> Result<DayResult> {
    let mut day =
        compute::DayAccumulator::new(date, &options.analysis, options.allocations.clone());
    let mut samples = scan::DaySamples::open(&session.lake, date).await?;
    while let Some(batch) = samples.next().await? {
        day.feed(&batch);
    }
    let anomalies = scan::anomaly_events(session, date).await?;
    let history = scan::health_history(&session.lake, date).await?;
    Ok(day.finish(&anomalies, history))
}

/// The result of a day without data: every table of it has every column and no row.
pub(crate) fn empty_day() -> DayResult {
    compute::DayAccumulator::new(NaiveDate::default(), &AnalysisOptions::default(), None)
        .finish(&[], Vec::new())
}
