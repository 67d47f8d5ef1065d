//! Reading the lake: a day's samples, one group of files at a time, and its anomaly
//! events. With [`super::publish`], the only nightly code that touches storage.
//!
//! Only `samples/date=D/` is listed. When every file of the day sits in an `hour=HH/`
//! directory (the stream processor's layout) the day is read hour by hour, each hour
//! sorted by GPU, session and event time with DataFusion, so memory stays at one hour's
//! rows; files directly under `date=D/` make the day one group. Partitions are by
//! event time, so hour groups come in event-time order and the order-dependent
//! analyses (gaps, energy, spikes) see each session in order.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use gpustream::Metric;
use gpustream_lake::{ANOMALIES_TABLE, Lake, SAMPLES_TABLE};

use crate::error::{Error, Result};
use crate::model::AnalysisMetric;
use crate::tables::{DATE_COLUMN, LakeSession, PARQUET_EXTENSION, new_context};

/// Name the group being read is registered under in the scan's own context.
const PART: &str = "nightly_part";

/// The day's samples, read one group of files (an hour) at a time.
pub struct DaySamples {
    lake: Lake,
    ctx: SessionContext,
    /// Groups not opened yet, as table-directory paths relative to the lake.
    groups: VecDeque<String>,
    /// The group being read: its URL (for errors) and its sorted rows.
    current: Option<(String, SendableRecordBatchStream)>,
}

impl DaySamples {
    /// Lists the day's sample files; reads nothing yet.
    pub async fn open(lake: &Lake, date: NaiveDate) -> Result<DaySamples> {
        let groups = day_groups(lake, date).await?;
        tracing::debug!(%date, groups = groups.len(), "reading the day's samples");
        Ok(DaySamples {
            lake: lake.clone(),
            ctx: new_context(lake),
            groups: groups.into(),
            current: None,
        })
    }

    /// The next batch of samples, or `None` at the end of the day. Within a group,
    /// rows come sorted by host, GPU, session and event time; groups come in hour
    /// order.
    pub async fn next(&mut self) -> Result<Option<SampleBatch>> {
        loop {
            if let Some((url, stream)) = &mut self.current {
                match stream.next().await {
                    Some(batch) => {
                        let batch = batch.map_err(Error::datafusion(format!("scanning {url}")))?;
                        return SampleBatch::decode(&batch).map(Some);
                    }
                    None => self.current = None,
                }
            }
            let Some(group) = self.groups.pop_front() else {
                return Ok(None);
            };
            self.current = Some(self.open_group(&group).await?);
        }
    }

    async fn open_group(&self, group: &str) -> Result<(String, SendableRecordBatchStream)> {
        let url_text = self.lake.table_url(group);
        let err = |source| Error::Register {
            table: SAMPLES_TABLE.into(),
            url: url_text.clone(),
            source,
        };
        let url = ListingTableUrl::parse(&url_text).map_err(err)?;
        let state = self.ctx.state();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let listing = ListingOptions::new(Arc::new(format)).with_file_extension(PARQUET_EXTENSION);
        let config = ListingTableConfig::new(url)
            .with_listing_options(listing)
            .with_schema(gpustream_lake::columnar::sample_schema());
        let table = ListingTable::try_new(config).map_err(err)?;
        self.ctx
            .deregister_table(TableReference::bare(PART))
            .map_err(Error::datafusion("resetting the scan table"))?;
        self.ctx
            .register_table(TableReference::bare(PART), Arc::new(table))
            .map_err(err)?;
        let stream = self
            .ctx
            .sql(&scan_sql(PART))
            .await
            .map_err(Error::datafusion(format!(
                "planning the scan of {url_text}"
            )))?
            .execute_stream()
            .await
            .map_err(Error::datafusion(format!("scanning {url_text}")))?;
        Ok((url_text, stream))
    }
}

/// The day's sample files grouped for reading: one group per `hour=HH/` directory in
/// hour order, or the whole `date=D/` directory as one group when any file lies
/// outside an hour directory. Returns table-directory paths relative to the lake.
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
    let mut hours = BTreeSet::new();
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

/// The usable value of a catalogue metric: NULL when the sample lists it as
/// unsupported.
fn usable(metric: Metric) -> String {
    let c = metric.column();
    format!("CASE WHEN array_has(unsupported, '{c}') THEN NULL ELSE {c} END")
}

/// The value of an analysed metric: the first usable of its sources.
fn metric_expr(metric: AnalysisMetric) -> String {
    match metric.sources() {
        [one] => usable(*one),
        several => format!(
            "COALESCE({})",
            several
                .iter()
                .map(|m| usable(*m))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

const ENERGY_COLUMN: &str = "energy_mj";
const PERF_CAP_COLUMN: &str = "perf_cap";
const THROTTLE_COLUMN: &str = "throttle_reasons";

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
    for m in AnalysisMetric::ALL {
        cols.push(format!("CAST({} AS DOUBLE) AS {m}", metric_expr(m)));
    }
    cols.push(format!(
        "CAST({} AS DOUBLE) AS {ENERGY_COLUMN}",
        usable(Metric::Energy)
    ));
    cols.push(format!(
        "CAST({} AS BIGINT) AS {PERF_CAP_COLUMN}",
        usable(Metric::PerfCap)
    ));
    cols.push(format!(
        "CAST({} AS BIGINT) AS {THROTTLE_COLUMN}",
        usable(Metric::ThrottleReasons)
    ));
    format!(
        "SELECT {} FROM {table} ORDER BY host, gpu, session, event_time",
        cols.join(", ")
    )
}

/// One batch of samples as [`scan_sql`] selects them, each column cast to the type it
/// is read as (whatever physical types the files had).
pub struct SampleBatch {
    /// Host.
    pub host: StringArray,
    /// GPU within the host.
    pub gpu: StringArray,
    /// Marketing name.
    pub gpu_name: StringArray,
    /// Session.
    pub session: StringArray,
    /// Event time, µs.
    pub time: TimestampMicrosecondArray,
    /// Usable values per analysed metric, in [`AnalysisMetric::ALL`] order.
    metrics: Vec<Float64Array>,
    /// Energy counter, mJ.
    pub energy_mj: Float64Array,
    /// GPU-Z PerfCap bitmask.
    pub perf_cap: Int64Array,
    /// NVML throttle-reason bitmask.
    pub throttle_reasons: Int64Array,
}

impl SampleBatch {
    fn decode(b: &RecordBatch) -> Result<SampleBatch> {
        Ok(SampleBatch {
            host: utf8(b, "host")?,
            gpu: utf8(b, "gpu")?,
            gpu_name: utf8(b, "gpu_name")?,
            session: utf8(b, "session")?,
            time: micros(b, "event_time")?,
            metrics: AnalysisMetric::ALL
                .iter()
                .map(|m| float(b, m.column()))
                .collect::<Result<_>>()?,
            energy_mj: float(b, ENERGY_COLUMN)?,
            perf_cap: int(b, PERF_CAP_COLUMN)?,
            throttle_reasons: int(b, THROTTLE_COLUMN)?,
        })
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.time.len()
    }

    /// The usable values of `metric`.
    pub fn metric(&self, metric: AnalysisMetric) -> &Float64Array {
        &self.metrics[metric.index()]
    }
}

/// One anomaly transition of the day, as the `anomalies` table holds it.
pub struct AnomalyEvent {
    /// Host.
    pub host: String,
    /// GPU.
    pub gpu: String,
    /// Rule name.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// Episode id: every transition of one episode shares it.
    pub anomaly_id: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// Time of the transition, µs.
    pub event_us: i64,
    /// Start of the episode, µs.
    pub started_us: i64,
    /// Value reported.
    pub value: Option<f64>,
}

/// The day's anomaly events (none when the lake has no `anomalies` table).
pub async fn anomaly_events(session: &LakeSession, date: NaiveDate) -> Result<Vec<AnomalyEvent>> {
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
    let mut events = Vec::new();
    for b in &batches {
        let [host, gpu, rule, severity, anomaly_id, state] =
            ["host", "gpu", "rule", "severity", "anomaly_id", "state"].map(|c| utf8(b, c));
        let (host, gpu, rule, severity) = (host?, gpu?, rule?, severity?);
        let (anomaly_id, state) = (anomaly_id?, state?);
        let (event, started) = (micros(b, "event_time")?, micros(b, "started_at")?);
        let value = float(b, "value")?;
        for r in 0..b.num_rows() {
            events.push(AnomalyEvent {
                host: host.value(r).to_string(),
                gpu: gpu.value(r).to_string(),
                rule: rule.value(r).to_string(),
                severity: severity.value(r).to_string(),
                anomaly_id: anomaly_id.value(r).to_string(),
                state: state.value(r).to_string(),
                event_us: event.value(r),
                started_us: started.value(r),
                value: (!value.is_null(r)).then(|| value.value(r)),
            });
        }
    }
    Ok(events)
}

/// A column of `batch` by name, cast to `to`: casting to exactly the type read next
/// makes the downcasts infallible, whatever physical types the scan produced.
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    Ok(cast(batch.column(batch.schema().index_of(name)?), to)?)
}

fn utf8(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    Ok(column(batch, name, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

fn float(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    Ok(column(batch, name, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

fn int(batch: &RecordBatch, name: &str) -> Result<Int64Array> {
    Ok(column(batch, name, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

fn micros(batch: &RecordBatch, name: &str) -> Result<TimestampMicrosecondArray> {
    let to = DataType::Timestamp(TimeUnit::Microsecond, None);
    Ok(column(batch, name, &to)?
        .as_primitive::<TimestampMicrosecondType>()
        .clone())
}
