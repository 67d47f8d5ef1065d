//! `daily_gpu` and the entry point the `daily` command and other crates use.
//!
//! [`run_daily`] runs the whole nightly job of [`crate::nightly`] for one UTC day with
//! the default options and returns the `daily_gpu` rows. `daily_gpu` has one row per
//! date, host and GPU:
//!
//! `date`, `host`, `gpu`, `samples`, `first_seen`, `last_seen`, then for each metric
//! `<m>` of [`DAILY_METRICS`] the columns `<m>_<stat>` for each stat of [`DAILY_STATS`]
//! (count, min, mean, max, stddev, p50, p95, p99; exact, percentiles interpolated
//! between ranks), then `energy_kwh`, `integrated_hours`, `gaps`, `energy_counter_kwh`,
//! `energy_counter_diff_pct`, `idle_share`, `busy_share`, `throttled_share` and
//! `throttled_<reason>_share` for power, thermal, voltage, hw_slowdown and other.
//! The statistics of a metric are NULL when the GPU had no usable value of it that day
//! (`<m>_count` is then 0).
//!
//! A value is usable when it is present and the metric is not listed in the sample's
//! `unsupported` column: sources mark sensors that read a constant 0 on a GPU as
//! unsupported, and those zeros must not become minimums or drag means down.
//! `power_w` is the board power where usable, else the chip power: GPUs that report
//! only one of the two still get a power figure.
//!
//! The table is the Delta table `LAKE/analytics/daily_gpu`, partitioned by `date`; a
//! re-run replaces the day's rows in one commit. As in every partitioned Delta table,
//! `date` is not stored in the data files: it comes from the log, and reading the
//! table yields it as a column.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, SchemaRef};

use crate::error::{Error, Result};
use crate::model::AnalysisMetric;
use crate::nightly::{NightlyOptions, NightlyOutput, run_nightly};
use crate::sql::render;
use crate::tables::LakeSession;

pub use crate::nightly::{DAILY_GPU_TABLE, DAILY_STATS};

/// Metrics summarised by `daily_gpu`, in column order: each is the prefix of its
/// statistic columns (their `Display` is the column name).
pub const DAILY_METRICS: &[AnalysisMetric] = &AnalysisMetric::ALL;

/// The `daily_gpu` columns the `daily` command prints.
pub const SUMMARY_COLUMNS: &[&str] = &[
    "host",
    "gpu",
    "samples",
    "gpu_temp_c_mean",
    "gpu_temp_c_p95",
    "gpu_load_pct_mean",
    "power_w_mean",
    "energy_kwh",
    "idle_share",
    "busy_share",
    "throttled_share",
];

/// What a `daily` run produced.
#[derive(Debug, Clone)]
pub struct DailyOutput {
    /// The UTC day that was aggregated.
    pub date: NaiveDate,
    /// Schema of [`batches`](Self::batches) (the columns in the module docs).
    pub schema: SchemaRef,
    /// The rows of `daily_gpu` for the day, `date` column included.
    pub batches: Vec<RecordBatch>,
    /// Number of rows (GPUs).
    pub rows: usize,
    /// URL of the `daily_gpu` table.
    pub location: String,
    /// The version of `daily_gpu` that replaced the day.
    pub version: u64,
    /// Every table of the run, and the report when one was asked for.
    pub nightly: NightlyOutput,
}

impl DailyOutput {
    /// The rows as an ASCII table for people: floats rounded to 2 decimals (the file
    /// keeps full precision).
    pub fn pretty(&self) -> Result<String> {
        let batches = self
            .batches
            .iter()
            .map(|b| round_floats(b, 2))
            .collect::<Result<Vec<_>>>()?;
        render(self.schema.clone(), &batches)
    }

    /// The headline columns ([`SUMMARY_COLUMNS`]) as an ASCII table, floats rounded to 2
    /// decimals: what fits a terminal. The full table is in the lake.
    pub fn summary(&self) -> Result<String> {
        let keep: Vec<usize> = SUMMARY_COLUMNS
            .iter()
            .filter_map(|c| self.schema.index_of(c).ok())
            .collect();
        let schema = Arc::new(self.schema.project(&keep)?);
        let batches = self
            .batches
            .iter()
            .map(|b| round_floats(&b.project(&keep)?, 2))
            .collect::<Result<Vec<_>>>()?;
        render(schema, &batches)
    }

    /// From a nightly run's output.
    pub fn from_nightly(nightly: NightlyOutput) -> Result<DailyOutput> {
        let table = nightly
            .table(DAILY_GPU_TABLE)
            .ok_or_else(|| Error::Options("the nightly run produced no daily_gpu table".into()))?
            .clone();
        Ok(DailyOutput {
            date: nightly.date,
            schema: table.batch.schema(),
            rows: table.batch.num_rows(),
            batches: vec![table.batch],
            location: table.location,
            version: table.version,
            nightly,
        })
    }
}

/// Rounds every Float64 column to `decimals` places.
pub fn round_floats(batch: &RecordBatch, decimals: i32) -> Result<RecordBatch> {
    let scale = 10f64.powi(decimals);
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.as_primitive_opt::<Float64Type>() {
            Some(a) => {
                Arc::new(a.unary::<_, Float64Type>(|v| (v * scale).round() / scale)) as ArrayRef
            }
            None => c.clone(),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Runs the nightly job for UTC day `date` with the default options (UTC hours, no
/// CSV, no report: none is rendered) and returns `daily_gpu`; every other table is
/// written too.
///
/// Fails with [`Error::MissingTable`] when the lake has no `samples` table at all. A
/// day without samples is not an error: it replaces the day with no rows (so a re-run
/// after data was removed does not leave stale figures behind) and logs a warning.
pub async fn run_daily(session: &LakeSession, date: NaiveDate) -> Result<DailyOutput> {
    let nightly = run_nightly(session, date, &NightlyOptions::default()).await?;
    DailyOutput::from_nightly(nightly)
}

/// Resolves `--timezone`: an IANA name, else the machine's zone, else UTC.
pub fn resolve_timezone(name: Option<&str>) -> Result<Tz> {
    if let Some(name) = name {
        return name
            .trim()
            .parse::<Tz>()
            .map_err(|_| Error::Timezone(name.to_string()));
    }
    match iana_time_zone::get_timezone() {
        Ok(local) => match local.parse::<Tz>() {
            Ok(tz) => Ok(tz),
            Err(_) => {
                tracing::warn!(zone = %local, "machine timezone is not an IANA name: using UTC");
                Ok(Tz::UTC)
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot determine the machine timezone: using UTC");
            Ok(Tz::UTC)
        }
    }
}

/// The default day of a nightly run: yesterday, as a calendar date in `tz`, at `now`.
pub fn default_date(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    let today = now.with_timezone(&tz).date_naive();
    // Only fails at NaiveDate::MIN, which no clock reports; stay on today if it did.
    today.checked_sub_days(Days::new(1)).unwrap_or(today)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn yesterday_depends_on_the_timezone() {
        // 2024-03-10 02:30 UTC is still 2024-03-09 in New York.
        let now = Utc.with_ymd_and_hms(2024, 3, 10, 2, 30, 0).unwrap();
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(default_date(Tz::UTC, now), d(2024, 3, 9));
        assert_eq!(
            default_date(chrono_tz::America::New_York, now),
            d(2024, 3, 8)
        );
        assert_eq!(default_date(chrono_tz::Asia::Tokyo, now), d(2024, 3, 9));
    }

    #[test]
    fn timezone_names_are_checked() {
        assert_eq!(
            resolve_timezone(Some("Europe/Berlin")).unwrap(),
            chrono_tz::Europe::Berlin
        );
        let err = resolve_timezone(Some("Mars/Olympus"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        // Whatever the machine says, there is a zone.
        assert!(resolve_timezone(None).is_ok());
    }
}
