//! The nightly job: reads one UTC day of samples (and anomalies), computes every
//! analytics table and replaces that day's outputs.
//!
//! Reading: only `samples/date=D/` is listed. When every file of the day sits in an
//! `hour=HH/` directory (the stream processor's layout) the day is read hour by hour,
//! each hour sorted by GPU, session and event time with DataFusion, so memory stays
//! at one hour's rows plus the per-GPU accumulators of [`crate::analyze`]; files
//! directly under `date=D/` make the day one group. Partitions are by event time, so
//! hour groups come in event-time order and the order-dependent analyses (gaps,
//! energy, spikes) see each session in order.
//!
//! Writing: every table is encoded first, then each `analytics/<table>/date=D/part-0.parquet`
//! is replaced by one atomic operation (local: written under `_tmp/`, fsynced and
//! renamed over; S3: a single PUT), then other `.parquet` files of that partition
//! (older layouts, manual copies) are deleted. A reader therefore sees, per table, the
//! old day or the new day, never half of one and never both.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use futures::{StreamExt, TryStreamExt};
use gpustream::Metric;
use gpustream_lake::{ANALYTICS_PREFIX, ANOMALIES_TABLE, Lake, SAMPLES_TABLE};
use object_store::ObjectStoreExt;

use crate::analyze::{
    AnalysisOptions, Correlation, GpuDay, LOAD_STATES, LocalHours, MAIN_METRICS, N_METRICS,
    Reading, THROTTLE_REASONS, metric_pairs,
};
use crate::error::{Error, Result};
use crate::tables::{DATE_COLUMN, LakeSession, PARQUET_EXTENSION, new_context};

/// Per GPU and day: statistics, energy, time shares.
pub const DAILY_GPU_TABLE: &str = "daily_gpu";
/// The same columns for the whole fleet (`host` = `gpu` = `*`).
pub const DAILY_FLEET_TABLE: &str = "daily_fleet";
/// Per GPU and local hour of day.
pub const HOURLY_TABLE: &str = "hourly";
/// Temperature spikes.
pub const SPIKES_TABLE: &str = "spikes";
/// Pearson correlations of the main metrics.
pub const CORRELATIONS_TABLE: &str = "correlations";
/// Anomaly counts and durations by rule and severity.
pub const ANOMALY_SUMMARY_TABLE: &str = "anomaly_summary";
/// GPUs side by side.
pub const GPU_COMPARISON_TABLE: &str = "gpu_comparison";

/// Every table the nightly job writes, in writing order.
pub const NIGHTLY_TABLES: [&str; 7] = [
    DAILY_GPU_TABLE,
    DAILY_FLEET_TABLE,
    HOURLY_TABLE,
    SPIKES_TABLE,
    CORRELATIONS_TABLE,
    ANOMALY_SUMMARY_TABLE,
    GPU_COMPARISON_TABLE,
];

/// Statistic suffixes of every main metric in `daily_gpu`, in column order.
pub const DAILY_STATS: &[&str] = &["count", "min", "mean", "max", "stddev", "p50", "p95", "p99"];

/// File name of a day's output. Fixed, so a re-run replaces instead of adding a file.
pub const PART_FILE: &str = "part-0.parquet";

/// Where the HTML report of a day goes inside the lake (a `_` directory, so it is
/// never taken for a table).
pub fn report_path(date: NaiveDate) -> String {
    format!("{ANALYTICS_PREFIX}/_reports/date={date}/report.html")
}

/// Path of a table's day partition file, relative to the lake root.
pub fn table_path(table: &str, date: NaiveDate) -> String {
    format!(
        "{ANALYTICS_PREFIX}/{table}/{DATE_COLUMN}={}/{PART_FILE}",
        date.format("%Y-%m-%d")
    )
}

/// Options of a nightly run.
#[derive(Debug, Clone, Default)]
pub struct NightlyOptions {
    /// Thresholds, spike and gap rules, timezone.
    pub analysis: AnalysisOptions,
    /// Also write `part-0.csv` (with a `date` column) beside each Parquet file.
    pub csv: bool,
    /// Write the HTML report into the lake (`analytics/_reports/date=D/report.html`).
    pub report: bool,
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
    /// The HTML report.
    pub report_html: String,
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

/// The analysed day before it is written: accumulators per GPU, plus anomalies.
pub struct DayResult {
    /// The UTC day.
    pub date: NaiveDate,
    /// Per GPU, sorted by host and GPU.
    pub gpus: Vec<GpuDay>,
    /// The fleet (every GPU merged).
    pub fleet: GpuDay,
    /// Anomaly summary rows.
    pub anomalies: Vec<AnomalyRow>,
    /// The options used.
    pub options: AnalysisOptions,
}

/// One row of `anomaly_summary`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnomalyRow {
    /// Host.
    pub host: String,
    /// GPU.
    pub gpu: String,
    /// Rule name.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// Distinct episodes with an event that day.
    pub episodes: u64,
    /// Firing transitions.
    pub fired: u64,
    /// Resolved transitions.
    pub resolved: u64,
    /// Episodes that fired that day and did not resolve that day.
    pub open_at_end: u64,
    /// Sum, mean and max of resolved episodes' durations, seconds.
    pub total_duration_s: Option<f64>,
    /// Mean duration of the resolved episodes.
    pub mean_duration_s: Option<f64>,
    /// Longest resolved episode.
    pub max_duration_s: Option<f64>,
    /// Most extreme value reported.
    pub max_value: Option<f64>,
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

/// Computes and writes every nightly table for UTC day `date`.
///
/// Fails with [`Error::MissingTable`] when the lake has no `samples` table. A day
/// without samples writes empty tables (so stale figures of an earlier run disappear).
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
    let batches = build_tables(&day)?;
    let report_html = crate::report::render(&day, &batches);

    // Encode everything before replacing anything: a failure leaves the old day whole.
    let mut encoded = Vec::new();
    for (name, batch) in &batches {
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| batch.schema().field(i).name() != DATE_COLUMN)
            .collect();
        let parquet = gpustream_lake::encode_parquet(&[batch.project(&keep)?])?;
        let csv = if options.csv {
            Some(csv_bytes(batch)?)
        } else {
            None
        };
        encoded.push((*name, parquet, csv));
    }
    let lake = &session.lake;
    let mut tables = Vec::new();
    for ((name, parquet, csv), (_, batch)) in encoded.into_iter().zip(batches) {
        let relative = table_path(name, date);
        lake.overwrite(&relative, parquet).await?;
        if let Some(csv) = csv {
            lake.overwrite(&relative.replace(PARQUET_EXTENSION, ".csv"), csv.into())
                .await?;
        }
        let removed = remove_strays(lake, name, date).await?;
        tables.push(TableOutput {
            name,
            batch,
            location: format!("{}{relative}", lake.root_url()),
            removed,
        });
    }
    let report_location = if options.report {
        let relative = report_path(date);
        lake.overwrite(&relative, report_html.clone().into_bytes().into())
            .await?;
        Some(format!("{}{relative}", lake.root_url()))
    } else {
        None
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

fn csv_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut buf);
        w.write(batch)?;
    }
    Ok(buf)
}

/// Deletes `.parquet` files other than [`PART_FILE`] from a table's day partition:
/// they would be read along with the new file and double every figure. Runs after
/// the replacement, so the day's data is never missing.
async fn remove_strays(lake: &Lake, table: &str, date: NaiveDate) -> Result<Vec<String>> {
    let relative_dir = format!("{ANALYTICS_PREFIX}/{table}/{DATE_COLUMN}={date}");
    let keep = lake.path(&table_path(table, date));
    let strays: Vec<_> = lake
        .store()
        .list(Some(&lake.path(&relative_dir)))
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
        tracing::warn!(file = %meta.location, "removing a stray file from the {table} partition");
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

/// The day's sample files grouped for reading: one group per `hour=HH/` directory in
/// hour order, or the whole `date=D/` directory as one group when any file lies
/// outside an hour directory. Returns table-directory URLs relative to the lake.
async fn day_groups(lake: &Lake, date: NaiveDate) -> Result<Vec<String>> {
    let day_dir = format!("{SAMPLES_TABLE}/{DATE_COLUMN}={date}");
    let prefix = lake.path(&day_dir);
    let files: Vec<_> = match lake
        .store()
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
    {
        Ok(f) => f,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => {
            return Err(Error::store(format!(
                "listing {}{day_dir}/",
                lake.root_url()
            ))(e));
        }
    };
    let mut hours = std::collections::BTreeSet::new();
    let mut flat = false;
    for meta in &files {
        if !meta.location.as_ref().ends_with(PARQUET_EXTENSION) {
            continue;
        }
        let parts: Vec<String> = meta
            .location
            .prefix_match(&prefix)
            .map(|p| p.map(|x| x.as_ref().to_string()).collect())
            .unwrap_or_default();
        match parts.as_slice() {
            [dir, _file] if dir.starts_with("hour=") => {
                hours.insert(dir.clone());
            }
            _ => flat = true,
        }
    }
    if flat {
        return Ok(vec![day_dir]);
    }
    Ok(hours
        .into_iter()
        .map(|h| format!("{day_dir}/{h}"))
        .collect())
}

/// The usable value of a metric: NULL when the sample lists it as unsupported.
fn usable(metric: Metric) -> String {
    let c = metric.column();
    format!("CASE WHEN array_has(unsupported, '{c}') THEN NULL ELSE {c} END")
}

fn metric_expr(name: &str) -> String {
    if name == "power_w" {
        return format!(
            "COALESCE({}, {})",
            usable(Metric::BoardPower),
            usable(Metric::ChipPower)
        );
    }
    match Metric::from_column(name) {
        Some(m) => usable(m),
        None => "CAST(NULL AS DOUBLE)".into(),
    }
}

/// The query one group of files is read with: the analysed columns, ordered so each
/// GPU's sessions arrive in event-time order.
pub fn scan_sql(table: &str) -> String {
    let mut cols = vec![
        "host".to_string(),
        "gpu".into(),
        "gpu_name".into(),
        "session".into(),
        "event_time".into(),
    ];
    for m in MAIN_METRICS {
        cols.push(format!("CAST({} AS DOUBLE) AS {m}", metric_expr(m)));
    }
    cols.push(format!(
        "CAST({} AS DOUBLE) AS energy_mj",
        usable(Metric::Energy)
    ));
    cols.push(format!(
        "CAST({} AS BIGINT) AS perf_cap",
        usable(Metric::PerfCap)
    ));
    cols.push(format!(
        "CAST({} AS BIGINT) AS throttle_reasons",
        usable(Metric::ThrottleReasons)
    ));
    format!(
        "SELECT {} FROM {table} ORDER BY host, gpu, session, event_time",
        cols.join(", ")
    )
}

/// Reads and analyses one UTC day (nothing is written).
pub async fn analyze_day(
    session: &LakeSession,
    date: NaiveDate,
    options: &AnalysisOptions,
) -> Result<DayResult> {
    let lake = &session.lake;
    let day_start_us = date.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
    let mut gpus = GpuSet::default();
    let mut hours = LocalHours::new(options.timezone);
    let ctx = new_context(lake);
    let groups = day_groups(lake, date).await?;
    tracing::debug!(%date, groups = groups.len(), "reading the day's samples");
    const PART: &str = "nightly_part";
    for group in groups {
        let url_text = lake.table_url(&group);
        let err = |source| Error::Register {
            table: SAMPLES_TABLE.into(),
            url: url_text.clone(),
            source,
        };
        let url = ListingTableUrl::parse(&url_text).map_err(err)?;
        let state = ctx.state();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let listing = ListingOptions::new(Arc::new(format)).with_file_extension(PARQUET_EXTENSION);
        let config = ListingTableConfig::new(url)
            .with_listing_options(listing)
            .with_schema(gpustream_lake::columnar::sample_schema());
        let table = ListingTable::try_new(config).map_err(err)?;
        ctx.deregister_table(TableReference::bare(PART))
            .map_err(Error::datafusion("resetting the scan table"))?;
        ctx.register_table(TableReference::bare(PART), Arc::new(table))
            .map_err(err)?;
        let mut stream = ctx
            .sql(&scan_sql(PART))
            .await
            .map_err(Error::datafusion(format!(
                "planning the scan of {url_text}"
            )))?
            .execute_stream()
            .await
            .map_err(Error::datafusion(format!("scanning {url_text}")))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(Error::datafusion(format!("scanning {url_text}")))?;
            feed_batch(&batch, &mut gpus, &mut hours, day_start_us, options)?;
        }
    }
    let mut gpus: Vec<GpuDay> = gpus.days;
    gpus.sort_by(|a, b| (&a.host, &a.gpu).cmp(&(&b.host, &b.gpu)));
    let mut fleet = GpuDay::new("*", "*", day_start_us);
    for g in &mut gpus {
        g.finish();
        fleet.merge_fleet(g);
    }
    let anomalies = anomaly_rows(session, date).await?;
    Ok(DayResult {
        date,
        gpus,
        fleet,
        anomalies,
        options: options.clone(),
    })
}

fn utf8(batch: &RecordBatch, i: usize) -> Result<StringArray> {
    Ok(cast(batch.column(i), &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

/// The day's GPUs, with a lookup by (host, GPU).
#[derive(Default)]
struct GpuSet {
    days: Vec<GpuDay>,
    index: HashMap<(String, String), usize>,
}

fn feed_batch(
    batch: &RecordBatch,
    gpus: &mut GpuSet,
    hours: &mut LocalHours,
    day_start_us: i64,
    options: &AnalysisOptions,
) -> Result<()> {
    let host = utf8(batch, 0)?;
    let gpu = utf8(batch, 1)?;
    let name = utf8(batch, 2)?;
    let session = utf8(batch, 3)?;
    let time = cast(
        batch.column(4),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let time = time.as_primitive::<TimestampMicrosecondType>();
    // Casting to exactly the type read below makes the downcasts infallible, whatever
    // physical types the scan produced.
    let metrics: Vec<ArrayRef> = (0..N_METRICS + 1)
        .map(|k| cast(batch.column(5 + k), &DataType::Float64))
        .collect::<Result<_, _>>()?;
    let metrics: Vec<&Float64Array> = metrics
        .iter()
        .map(|a| a.as_primitive::<Float64Type>())
        .collect();
    let perf = cast(batch.column(6 + N_METRICS), &DataType::Int64)?;
    let perf = perf.as_primitive::<Int64Type>();
    let throttle = cast(batch.column(7 + N_METRICS), &DataType::Int64)?;
    let throttle = throttle.as_primitive::<Int64Type>();
    let opt_f = |a: &Float64Array, r: usize| (!a.is_null(r)).then(|| a.value(r));
    let opt_i = |a: &Int64Array, r: usize| (!a.is_null(r)).then(|| a.value(r));

    // Rows come grouped by GPU: look the GPU up only when it changes.
    let mut current: Option<usize> = None;
    let mut reading = Reading::default();
    for r in 0..batch.num_rows() {
        if time.is_null(r) || host.is_null(r) || gpu.is_null(r) {
            continue;
        }
        let (h, g) = (host.value(r), gpu.value(r));
        let same = current.is_some_and(|i| gpus.days[i].host == h && gpus.days[i].gpu == g);
        if !same {
            let key = (h.to_string(), g.to_string());
            current = Some(match gpus.index.get(&key) {
                Some(i) => *i,
                None => {
                    gpus.days.push(GpuDay::new(h, g, day_start_us));
                    gpus.index.insert(key, gpus.days.len() - 1);
                    gpus.days.len() - 1
                }
            });
        }
        let Some(i) = current else { continue };
        let acc = &mut gpus.days[i];
        if acc.gpu_name.is_none() && !name.is_null(r) {
            acc.gpu_name = Some(name.value(r).to_string());
        }
        reading.t_us = time.value(r);
        for (k, v) in reading.values.iter_mut().enumerate() {
            *v = opt_f(metrics[k], r).filter(|v| v.is_finite());
        }
        reading.energy_mj = opt_f(metrics[N_METRICS], r).filter(|v| v.is_finite());
        reading.perf_cap = opt_i(perf, r);
        reading.throttle_reasons = opt_i(throttle, r);
        let s = if session.is_null(r) {
            ""
        } else {
            session.value(r)
        };
        let hour = hours.hour(reading.t_us);
        acc.add(s, &reading, hour, options);
    }
    Ok(())
}

/// Reads the day's anomaly events and summarises them per GPU, rule and severity.
async fn anomaly_rows(session: &LakeSession, date: NaiveDate) -> Result<Vec<AnomalyRow>> {
    if session.table(ANOMALIES_TABLE).is_none() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT host, gpu, rule, severity, anomaly_id, state, event_time, started_at, value \
         FROM {ANOMALIES_TABLE} WHERE {DATE_COLUMN} = '{date}'"
    );
    let batches = session
        .ctx
        .sql(&sql)
        .await
        .map_err(Error::datafusion("planning the anomaly query"))?
        .collect()
        .await
        .map_err(Error::datafusion("reading the day's anomalies"))?;
    #[derive(Default)]
    struct Episode {
        fired: bool,
        resolved_s: Option<f64>,
    }
    type Groups =
        BTreeMap<(String, String, String, String), (AnomalyRow, HashMap<String, Episode>)>;
    let mut groups: Groups = BTreeMap::new();
    for b in &batches {
        let s: Vec<StringArray> = (0..6).map(|i| utf8(b, i)).collect::<Result<_>>()?;
        let ts = |i: usize| -> Result<TimestampMicrosecondArray> {
            Ok(cast(
                b.column(i),
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )?
            .as_primitive::<TimestampMicrosecondType>()
            .clone())
        };
        let (event, started) = (ts(6)?, ts(7)?);
        let value = cast(b.column(8), &DataType::Float64)?;
        let value = value.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let key = (
                s[0].value(r).to_string(),
                s[1].value(r).to_string(),
                s[2].value(r).to_string(),
                s[3].value(r).to_string(),
            );
            let (row, episodes) = groups.entry(key.clone()).or_insert_with(|| {
                (
                    AnomalyRow {
                        host: key.0.clone(),
                        gpu: key.1.clone(),
                        rule: key.2.clone(),
                        severity: key.3.clone(),
                        ..Default::default()
                    },
                    HashMap::new(),
                )
            });
            let ep = episodes.entry(s[4].value(r).to_string()).or_default();
            if !value.is_null(r) {
                let v = value.value(r);
                row.max_value = Some(row.max_value.map_or(v, |m: f64| m.max(v)));
            }
            if s[5].value(r) == "resolved" {
                row.resolved += 1;
                let d = (event.value(r) - started.value(r)) as f64 / 1e6;
                ep.resolved_s = Some(d.max(0.0));
            } else {
                row.fired += 1;
                ep.fired = true;
            }
        }
    }
    Ok(groups
        .into_values()
        .map(|(mut row, episodes)| {
            row.episodes = episodes.len() as u64;
            row.open_at_end = episodes
                .values()
                .filter(|e| e.fired && e.resolved_s.is_none())
                .count() as u64;
            let durations: Vec<f64> = episodes.values().filter_map(|e| e.resolved_s).collect();
            if !durations.is_empty() {
                let total: f64 = durations.iter().sum();
                row.total_duration_s = Some(total);
                row.mean_duration_s = Some(total / durations.len() as f64);
                row.max_duration_s = durations.iter().copied().reduce(f64::max);
            }
            row
        })
        .collect())
}

/// Builds record batches column by column.
#[derive(Default)]
struct Cols {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Cols {
    fn push(&mut self, name: &str, array: ArrayRef) {
        self.fields
            .push(Field::new(name, array.data_type().clone(), true));
        self.arrays.push(array);
    }
    fn str<I: IntoIterator<Item = Option<String>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<StringArray>()));
    }
    fn f64<I: IntoIterator<Item = Option<f64>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<Float64Array>()));
    }
    fn i64<I: IntoIterator<Item = Option<i64>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<Int64Array>()));
    }
    fn i32<I: IntoIterator<Item = Option<i32>>>(&mut self, name: &str, v: I) {
        self.push(name, Arc::new(v.into_iter().collect::<Int32Array>()));
    }
    fn ts<I: IntoIterator<Item = Option<i64>>>(&mut self, name: &str, v: I) {
        let a = v
            .into_iter()
            .collect::<TimestampMicrosecondArray>()
            .with_timezone(gpustream_lake::columnar::UTC);
        self.push(name, Arc::new(a));
    }
    fn finish(self) -> Result<RecordBatch> {
        let schema: SchemaRef = Arc::new(Schema::new(self.fields));
        Ok(RecordBatch::try_new(schema, self.arrays)?)
    }
}

const KWH: f64 = 3.6e6;

fn some<T: Clone>(v: &T) -> Option<T> {
    Some(v.clone())
}

fn daily_batch(date: NaiveDate, rows: &[&GpuDay]) -> Result<RecordBatch> {
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| Some(date.to_string())));
    c.str("host", rows.iter().map(|g| some(&g.host)));
    c.str("gpu", rows.iter().map(|g| some(&g.gpu)));
    c.i64("samples", rows.iter().map(|g| Some(g.samples as i64)));
    c.ts(
        "first_seen",
        rows.iter().map(|g| (g.samples > 0).then_some(g.first_us)),
    );
    c.ts(
        "last_seen",
        rows.iter().map(|g| (g.samples > 0).then_some(g.last_us)),
    );
    let summaries: Vec<Vec<_>> = rows
        .iter()
        .map(|g| g.stats.iter().map(|s| s.summary()).collect())
        .collect();
    for (k, m) in MAIN_METRICS.iter().enumerate() {
        let s = |f: &dyn Fn(&crate::analyze::Summary) -> Option<f64>| -> Vec<Option<f64>> {
            summaries
                .iter()
                .map(|row| row[k].as_ref().and_then(f))
                .collect()
        };
        c.i64(
            &format!("{m}_count"),
            rows.iter().map(|g| Some(g.stats[k].count() as i64)),
        );
        c.f64(&format!("{m}_min"), s(&|x| Some(x.min)));
        c.f64(&format!("{m}_mean"), s(&|x| Some(x.mean)));
        c.f64(&format!("{m}_max"), s(&|x| Some(x.max)));
        c.f64(&format!("{m}_stddev"), s(&|x| x.stddev));
        c.f64(&format!("{m}_p50"), s(&|x| Some(x.p50)));
        c.f64(&format!("{m}_p95"), s(&|x| Some(x.p95)));
        c.f64(&format!("{m}_p99"), s(&|x| Some(x.p99)));
    }
    c.f64(
        "energy_kwh",
        rows.iter()
            .map(|g| (g.stats[crate::analyze::POWER].count() > 0).then(|| g.energy_j / KWH)),
    );
    c.f64(
        "integrated_hours",
        rows.iter().map(|g| Some(g.integrated_s / 3600.0)),
    );
    c.i64("gaps", rows.iter().map(|g| Some(g.gaps as i64)));
    c.f64(
        "energy_counter_kwh",
        rows.iter().map(|g| g.counter_energy_j.map(|j| j / KWH)),
    );
    c.f64(
        "energy_counter_diff_pct",
        rows.iter().map(|g| match g.counter_energy_j {
            Some(cj) if cj > 0.0 => Some((g.trapezoid_on_counter_j - cj) / cj * 100.0),
            _ => None,
        }),
    );
    c.f64("idle_share", rows.iter().map(|g| g.load_share(g.idle)));
    c.f64("busy_share", rows.iter().map(|g| g.load_share(g.busy)));
    c.f64(
        "throttled_share",
        rows.iter().map(|g| g.throttle_share(g.throttled_any)),
    );
    for (k, reason) in THROTTLE_REASONS.iter().enumerate() {
        c.f64(
            &format!("throttled_{reason}_share"),
            rows.iter().map(|g| g.throttle_share(g.throttled[k])),
        );
    }
    c.finish()
}

fn mean(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

/// Builds every table of the day, in [`NIGHTLY_TABLES`] order, `date` column first.
pub fn build_tables(day: &DayResult) -> Result<Vec<(&'static str, RecordBatch)>> {
    let date = day.date;
    let d = || Some(date.to_string());
    let gpus: Vec<&GpuDay> = day.gpus.iter().collect();
    let mut out = vec![(DAILY_GPU_TABLE, daily_batch(date, &gpus)?)];
    let fleet: Vec<&GpuDay> = if day.gpus.is_empty() {
        vec![]
    } else {
        vec![&day.fleet]
    };
    out.push((DAILY_FLEET_TABLE, daily_batch(date, &fleet)?));

    // hourly
    let tz = day.options.timezone.name().to_string();
    let hours: Vec<(&GpuDay, usize)> = gpus
        .iter()
        .flat_map(|g| {
            (0..24)
                .filter(|h| g.hours[*h].samples > 0)
                .map(move |h| (*g, h))
        })
        .collect();
    let mut c = Cols::default();
    c.str(DATE_COLUMN, hours.iter().map(|_| d()));
    c.str("host", hours.iter().map(|(g, _)| some(&g.host)));
    c.str("gpu", hours.iter().map(|(g, _)| some(&g.gpu)));
    c.i32("hour", hours.iter().map(|(_, h)| Some(*h as i32)));
    c.str("timezone", hours.iter().map(|_| Some(tz.clone())));
    let hs = |f: &dyn Fn(&crate::analyze::HourStats) -> Option<f64>| -> Vec<Option<f64>> {
        hours.iter().map(|(g, h)| f(&g.hours[*h])).collect()
    };
    c.i64(
        "samples",
        hours.iter().map(|(g, h)| Some(g.hours[*h].samples as i64)),
    );
    c.f64("gpu_load_pct_mean", hs(&|h| mean(h.load_sum, h.load_n)));
    c.f64(
        "idle_share",
        hs(&|h| (h.load_n > 0).then(|| h.idle as f64 / h.load_n as f64)),
    );
    c.f64(
        "busy_share",
        hs(&|h| (h.load_n > 0).then(|| h.busy as f64 / h.load_n as f64)),
    );
    c.f64("gpu_temp_c_mean", hs(&|h| mean(h.temp_sum, h.temp_n)));
    c.f64("gpu_temp_c_max", hs(&|h| h.temp_max));
    c.f64("power_w_mean", hs(&|h| mean(h.power_sum, h.power_n)));
    c.f64(
        "energy_kwh",
        hs(&|h| (h.power_n > 0).then(|| h.energy_j / KWH)),
    );
    out.push((HOURLY_TABLE, c.finish()?));

    // spikes
    let spikes: Vec<(&GpuDay, &crate::analyze::Spike)> = gpus
        .iter()
        .flat_map(|g| g.spikes.iter().map(move |s| (*g, s)))
        .collect();
    let mut c = Cols::default();
    c.str(DATE_COLUMN, spikes.iter().map(|_| d()));
    c.str("host", spikes.iter().map(|(g, _)| some(&g.host)));
    c.str("gpu", spikes.iter().map(|(g, _)| some(&g.gpu)));
    c.str("session", spikes.iter().map(|(_, s)| some(&s.session)));
    c.str(
        "metric",
        spikes.iter().map(|_| Some(MAIN_METRICS[0].to_string())),
    );
    c.ts("start_time", spikes.iter().map(|(_, s)| Some(s.start_us)));
    c.f64("start_c", spikes.iter().map(|(_, s)| Some(s.start_c)));
    c.ts("peak_time", spikes.iter().map(|(_, s)| Some(s.peak_us)));
    c.f64("peak_c", spikes.iter().map(|(_, s)| Some(s.peak_c)));
    c.ts("end_time", spikes.iter().map(|(_, s)| Some(s.end_us)));
    c.f64(
        "rise_c",
        spikes.iter().map(|(_, s)| Some(s.peak_c - s.start_c)),
    );
    c.f64(
        "rise_s",
        spikes
            .iter()
            .map(|(_, s)| Some((s.peak_us - s.start_us) as f64 / 1e6)),
    );
    c.f64(
        "duration_s",
        spikes
            .iter()
            .map(|(_, s)| Some((s.end_us - s.start_us) as f64 / 1e6)),
    );
    c.i64(
        "samples",
        spikes.iter().map(|(_, s)| Some(s.samples as i64)),
    );
    out.push((SPIKES_TABLE, c.finish()?));

    // correlations
    let pairs = metric_pairs();
    let mut rows: Vec<(&GpuDay, &str, usize, usize, u64, Correlation)> = Vec::new();
    for g in &gpus {
        for (state, m) in LOAD_STATES.iter().zip(&g.correlations) {
            for (k, (i, j)) in pairs.iter().enumerate() {
                let p = &m.pairs[k];
                let corr = p.correlation(MAIN_METRICS[*i], MAIN_METRICS[*j]);
                rows.push((*g, state, *i, *j, p.count(), corr));
            }
        }
    }
    let mut c = Cols::default();
    c.str(DATE_COLUMN, rows.iter().map(|_| d()));
    c.str("host", rows.iter().map(|r| some(&r.0.host)));
    c.str("gpu", rows.iter().map(|r| some(&r.0.gpu)));
    c.str("load_state", rows.iter().map(|r| Some(r.1.to_string())));
    c.str(
        "metric_a",
        rows.iter().map(|r| Some(MAIN_METRICS[r.2].to_string())),
    );
    c.str(
        "metric_b",
        rows.iter().map(|r| Some(MAIN_METRICS[r.3].to_string())),
    );
    c.i64("n", rows.iter().map(|r| Some(r.4 as i64)));
    c.f64(
        "r",
        rows.iter().map(|r| match &r.5 {
            Correlation::R(v) => Some(*v),
            Correlation::Skipped(_) => None,
        }),
    );
    c.str(
        "skipped_reason",
        rows.iter().map(|r| match &r.5 {
            Correlation::R(_) => None,
            Correlation::Skipped(why) => Some(why.clone()),
        }),
    );
    out.push((CORRELATIONS_TABLE, c.finish()?));

    // anomaly_summary
    let a = &day.anomalies;
    let mut c = Cols::default();
    c.str(DATE_COLUMN, a.iter().map(|_| d()));
    c.str("host", a.iter().map(|r| some(&r.host)));
    c.str("gpu", a.iter().map(|r| some(&r.gpu)));
    c.str("rule", a.iter().map(|r| some(&r.rule)));
    c.str("severity", a.iter().map(|r| some(&r.severity)));
    c.i64("episodes", a.iter().map(|r| Some(r.episodes as i64)));
    c.i64("fired", a.iter().map(|r| Some(r.fired as i64)));
    c.i64("resolved", a.iter().map(|r| Some(r.resolved as i64)));
    c.i64("open_at_end", a.iter().map(|r| Some(r.open_at_end as i64)));
    c.f64("total_duration_s", a.iter().map(|r| r.total_duration_s));
    c.f64("mean_duration_s", a.iter().map(|r| r.mean_duration_s));
    c.f64("max_duration_s", a.iter().map(|r| r.max_duration_s));
    c.f64("max_value", a.iter().map(|r| r.max_value));
    out.push((ANOMALY_SUMMARY_TABLE, c.finish()?));

    out.push((GPU_COMPARISON_TABLE, comparison_batch(date, &gpus)?));
    Ok(out)
}

/// Performance-per-watt proxy: Σ(core clock × load / 100) / Σ power, i.e. effectively
/// used MHz per watt, over samples with all three readings.
pub fn perf_per_watt(sums: (f64, f64)) -> Option<f64> {
    (sums.1 > 0.0).then(|| sums.0 / sums.1)
}

fn comparison_batch(date: NaiveDate, gpus: &[&GpuDay]) -> Result<RecordBatch> {
    use crate::analyze::{CORE_CLOCK, LOAD, POWER, TEMP};
    let summary = |g: &GpuDay, k: usize| g.stats[k].summary();
    let ppw: Vec<Option<f64>> = gpus.iter().map(|g| perf_per_watt(g.perf_sums)).collect();
    let best = ppw.iter().flatten().copied().reduce(f64::max);
    let mut c = Cols::default();
    c.str(DATE_COLUMN, gpus.iter().map(|_| Some(date.to_string())));
    c.str("host", gpus.iter().map(|g| some(&g.host)));
    c.str("gpu", gpus.iter().map(|g| some(&g.gpu)));
    c.str("gpu_name", gpus.iter().map(|g| g.gpu_name.clone()));
    c.i64("samples", gpus.iter().map(|g| Some(g.samples as i64)));
    c.f64(
        "gpu_load_pct_mean",
        gpus.iter().map(|g| summary(g, LOAD).map(|s| s.mean)),
    );
    c.f64("busy_share", gpus.iter().map(|g| g.load_share(g.busy)));
    c.f64(
        "gpu_temp_c_mean",
        gpus.iter().map(|g| summary(g, TEMP).map(|s| s.mean)),
    );
    c.f64(
        "gpu_temp_c_p95",
        gpus.iter().map(|g| summary(g, TEMP).map(|s| s.p95)),
    );
    c.f64(
        "hot_spot_c_p95",
        gpus.iter().map(|g| summary(g, 1).map(|s| s.p95)),
    );
    c.f64(
        "power_w_mean",
        gpus.iter().map(|g| summary(g, POWER).map(|s| s.mean)),
    );
    c.f64(
        "power_w_p95",
        gpus.iter().map(|g| summary(g, POWER).map(|s| s.p95)),
    );
    c.f64(
        "energy_kwh",
        gpus.iter()
            .map(|g| (g.stats[POWER].count() > 0).then(|| g.energy_j / KWH)),
    );
    c.f64(
        "core_clock_mhz_mean",
        gpus.iter().map(|g| summary(g, CORE_CLOCK).map(|s| s.mean)),
    );
    c.f64(
        "busy_gpu_temp_c_mean",
        gpus.iter()
            .map(|g| mean(g.busy_sums[0].0, g.busy_sums[0].1)),
    );
    c.f64(
        "busy_power_w_mean",
        gpus.iter()
            .map(|g| mean(g.busy_sums[1].0, g.busy_sums[1].1)),
    );
    c.f64(
        "busy_core_clock_mhz_mean",
        gpus.iter()
            .map(|g| mean(g.busy_sums[2].0, g.busy_sums[2].1)),
    );
    c.f64("perf_per_watt", ppw.iter().copied());
    c.f64(
        "busy_perf_per_watt",
        gpus.iter().map(|g| perf_per_watt(g.busy_perf_sums)),
    );
    c.f64(
        "perf_per_watt_rel",
        ppw.iter().map(|p| match (p, best) {
            (Some(p), Some(b)) if b > 0.0 => Some(p / b),
            _ => None,
        }),
    );
    c.finish()
}
