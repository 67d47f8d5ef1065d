//! The nightly job: per-GPU daily statistics, written to `analytics/daily_gpu`.
//!
//! # Which samples a day covers
//!
//! The job aggregates the samples of the lake partition `date = D`. Partitions are
//! **UTC dates** (the stream processor partitions by the UTC event time), so "day D"
//! means `D 00:00:00Z .. D 23:59:59.999999Z`, whatever `--timezone` says. The timezone
//! only decides which D is "yesterday" when no `--date` is given. Local-day
//! statistics (reading the two UTC partitions a local day overlaps and filtering on
//! `event_time`) are a planned refinement.
//!
//! # Output: the `daily_gpu` table
//!
//! One row per `(host, gpu)` that has at least one sample on D, ordered by host, gpu:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `date` | Utf8 | the UTC day, `YYYY-MM-DD` (the partition; see below) |
//! | `host` | Utf8 | host name |
//! | `gpu` | Utf8 | GPU id within the host |
//! | `samples` | Int64 | number of samples of that GPU on D |
//! | `first_seen` | Timestamp(µs, UTC) | earliest `event_time` |
//! | `last_seen` | Timestamp(µs, UTC) | latest `event_time` |
//! | `<m>_count` | Int64 | samples with a usable value of metric `<m>` |
//! | `<m>_min` | Float64 | minimum |
//! | `<m>_mean` | Float64 | arithmetic mean |
//! | `<m>_max` | Float64 | maximum |
//! | `<m>_stddev` | Float64 | sample standard deviation (NULL with fewer than 2 values) |
//! | `<m>_p95` | Float64 | approximate 95th percentile (t-digest) |
//!
//! for `<m>` in `gpu_temp_c` (°C), `gpu_load_pct` (%) and `power_w` (W): in that
//! order, [`DAILY_METRICS`]. The statistics of a metric are NULL when the GPU had no
//! usable value of it that day (`<m>_count` is then 0).
//!
//! A value is usable when it is present and the metric is not listed in the sample's
//! `unsupported` column: sources mark sensors that read a constant 0 on a GPU as
//! unsupported, and those zeros must not become minimums or drag means down.
//! `power_w` is the board power where usable, else the chip power: GPUs that report
//! only one of the two still get a power figure.
//!
//! The file is written to `LAKE/analytics/daily_gpu/date=D/part-0.parquet` (zstd),
//! replacing the previous output for D in a single put. Following the Hive
//! convention, `date` is not stored in the file: it is the partition directory, and
//! reading the file through the lake's `daily_gpu` table yields it as a column.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, SchemaRef};
use futures::TryStreamExt;
use gpustream::Metric;
use gpustream::lake::{ANALYTICS_PREFIX, SAMPLES_TABLE};
use object_store::ObjectStoreExt;

use crate::error::{Error, Result};
use crate::sql::render;
use crate::tables::{DATE_COLUMN, LakeSession, PARQUET_EXTENSION};

/// Name of the output table (directory `analytics/daily_gpu`).
pub const DAILY_GPU_TABLE: &str = "daily_gpu";

/// File name of a day's output. Fixed, so a re-run overwrites instead of adding a file.
pub const DAILY_GPU_FILE: &str = "part-0.parquet";

/// Metrics summarised by `daily_gpu`, in column order: each is the prefix of its
/// statistic columns (see the module docs for how each value is derived).
pub const DAILY_METRICS: &[&str] = &["gpu_temp_c", "gpu_load_pct", "power_w"];

/// Statistic suffixes, in column order, for every metric of [`DAILY_METRICS`].
pub const DAILY_STATS: &[&str] = &["count", "min", "mean", "max", "stddev", "p95"];

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
    /// URL of the file written.
    pub location: String,
    /// Files of earlier runs removed from the day's partition (other than the one
    /// overwritten): normally empty.
    pub removed: Vec<String>,
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
}

/// Rounds every Float64 column to `decimals` places.
fn round_floats(batch: &RecordBatch, decimals: i32) -> Result<RecordBatch> {
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

/// The usable value of a metric column: NULL when the sample lists it as unsupported.
///
/// `array_has` on a NULL `unsupported` list (the common "nothing unsupported" case)
/// is NULL, and `CASE WHEN NULL` takes the `ELSE` branch, so the value is kept.
fn usable(metric: Metric) -> String {
    let c = metric.column();
    format!("CASE WHEN array_has(unsupported, '{c}') THEN NULL ELSE {c} END")
}

/// The SQL of `daily_gpu` for one UTC day (the query [`run_daily`] runs).
///
/// The date is a [`NaiveDate`], so its `YYYY-MM-DD` rendering is safe to inline; the
/// `date = '...'` predicate on the partition column makes DataFusion list and read only
/// that day's directory.
pub fn daily_gpu_sql(date: NaiveDate) -> String {
    let exprs = [
        usable(Metric::GpuTemp),
        usable(Metric::GpuLoad),
        format!(
            "COALESCE({}, {})",
            usable(Metric::BoardPower),
            usable(Metric::ChipPower)
        ),
    ];
    let inputs: Vec<String> = DAILY_METRICS
        .iter()
        .zip(&exprs)
        .map(|(name, expr)| format!(",\n        {expr} AS {name}"))
        .collect();
    let stats: Vec<String> = DAILY_METRICS
        .iter()
        .map(|m| {
            format!(
                ",\n    count({m}) AS {m}_count, min({m}) AS {m}_min, avg({m}) AS {m}_mean, \
                 max({m}) AS {m}_max, stddev({m}) AS {m}_stddev, \
                 approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY {m}) AS {m}_p95"
            )
        })
        .collect();
    format!(
        "WITH s AS (\n    SELECT {DATE_COLUMN}, host, gpu, event_time{inputs}\n    \
         FROM {SAMPLES_TABLE}\n    WHERE {DATE_COLUMN} = '{date}'\n)\n\
         SELECT {DATE_COLUMN}, host, gpu, count(*) AS samples,\n    \
         min(event_time) AS first_seen, max(event_time) AS last_seen{stats}\n\
         FROM s\nGROUP BY {DATE_COLUMN}, host, gpu\nORDER BY host, gpu",
        date = date.format("%Y-%m-%d"),
        inputs = inputs.concat(),
        stats = stats.concat(),
    )
}

/// Path of a day's output file relative to the lake root.
pub fn daily_gpu_path(date: NaiveDate) -> String {
    format!(
        "{}/{DATE_COLUMN}={}/{DAILY_GPU_FILE}",
        daily_gpu_dir(),
        date.format("%Y-%m-%d")
    )
}

fn daily_gpu_dir() -> String {
    format!("{ANALYTICS_PREFIX}/{DAILY_GPU_TABLE}")
}

/// Computes `daily_gpu` for UTC day `date` and writes it to the lake.
///
/// Fails with [`Error::MissingTable`] when the lake has no `samples` table at all. A
/// day without samples is not an error: it writes an empty file (so a re-run after
/// data was removed does not leave stale figures behind) and logs a warning.
pub async fn run_daily(session: &LakeSession, date: NaiveDate) -> Result<DailyOutput> {
    session.require_table(SAMPLES_TABLE)?;
    let sql = daily_gpu_sql(date);
    tracing::debug!(%sql, "daily_gpu query");
    let df = session
        .ctx
        .sql(&sql)
        .await
        .map_err(Error::datafusion("planning the daily_gpu query"))?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .map_err(Error::datafusion("running the daily_gpu query"))?;
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 {
        tracing::warn!(%date, "no samples in partition date={date}: writing an empty daily_gpu");
    }

    // The file holds everything but `date`, which the partition directory carries.
    let keep: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| schema.field(i).name() != DATE_COLUMN)
        .collect();
    let file_schema = Arc::new(schema.project(&keep)?);
    let mut file_batches = batches
        .iter()
        .map(|b| b.project(&keep))
        .collect::<Result<Vec<_>, _>>()?;
    if file_batches.is_empty() {
        // Parquet needs a batch to take the schema from.
        file_batches.push(RecordBatch::new_empty(file_schema));
    }
    let bytes = gpustream::lake::encode_parquet(&file_batches)?;

    let relative = daily_gpu_path(date);
    session.lake.overwrite(&relative, bytes).await?;
    let removed = remove_strays(session, date).await?;
    let location = format!("{}{relative}", session.lake.root_url());
    tracing::info!(%date, rows, %location, "wrote daily_gpu");
    Ok(DailyOutput {
        date,
        schema,
        batches,
        rows,
        location,
        removed,
    })
}

/// Deletes any other `.parquet` file in the day's output partition.
///
/// The job always writes the one fixed file name, so anything else there is left by
/// an older layout or a manual copy; it would be read along with the new file and
/// double every count. Runs after the overwrite: the day's data is never missing.
async fn remove_strays(session: &LakeSession, date: NaiveDate) -> Result<Vec<String>> {
    let lake = &session.lake;
    let relative_dir = format!(
        "{}/{DATE_COLUMN}={}",
        daily_gpu_dir(),
        date.format("%Y-%m-%d")
    );
    let dir = lake.path(&relative_dir);
    let keep = lake.path(&daily_gpu_path(date));
    let strays: Vec<_> = lake
        .store()
        .list(Some(&dir))
        .try_filter(|m| {
            let stray = m.location != keep && m.location.as_ref().ends_with(PARQUET_EXTENSION);
            futures::future::ready(stray)
        })
        .try_collect()
        .await
        .map_err(Error::store(format!(
            "listing {}{relative_dir}/",
            lake.root_url()
        )))?;
    let mut removed = Vec::new();
    for meta in strays {
        tracing::warn!(file = %meta.location, "removing a stray file from the daily_gpu partition");
        match lake.store().delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(Error::store(format!(
                    "deleting {} in {}",
                    meta.location,
                    lake.root_url()
                ))(e));
            }
        }
        removed.push(meta.location.to_string());
    }
    Ok(removed)
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

    #[test]
    fn output_path_is_the_date_partition() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        assert_eq!(
            daily_gpu_path(d),
            "analytics/daily_gpu/date=2024-01-02/part-0.parquet"
        );
        assert!(daily_gpu_sql(d).contains("WHERE date = '2024-01-02'"));
    }
}
