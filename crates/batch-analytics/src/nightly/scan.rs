//! Reading the lake: a day's samples, one hour at a time, and its anomaly events.
//! With [`super::publish`], the only nightly code that touches storage.
//!
//! The day is read from the Delta `samples` table at its latest version. The hours of
//! the day are the `hour` partition values of that version's files dated `D` (no
//! file is opened to find them); each hour is then read with
//! `WHERE date = 'D' AND hour = 'HH'`, which delta-rs turns into a file list of that
//! partition only, and sorted by GPU, session and event time with DataFusion, so memory
//! stays at one hour's rows and no other date's file is opened. A table without an
//! `hour` partition column (or a file of the day without an hour value) makes the day
//! one group. Partitions are by event time, so hour groups come in event-time order and
//! the order-dependent analyses (gaps, energy, spikes) see each session in order.

use std::collections::{BTreeSet, VecDeque};

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
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use gpustream::Metric;
use gpustream_lake::delta::deltalake_core::DeltaTable;
use gpustream_lake::{ANOMALIES_TABLE, Lake, SAMPLES_TABLE};

use crate::error::{Error, Result};
use crate::model::{AnalysisMetric, HealthCounter, HealthHistory};
use crate::tables::{
    DATE_COLUMN, HOUR_COLUMN, LakeSession, new_context, partition_columns, provider,
};

/// Name the samples table is registered under in the scan's own context.
const PART: &str = "nightly_samples";

/// The day's samples, read one group (an hour) at a time.
pub struct DaySamples {
    ctx: SessionContext,
    /// URL of the samples table, for errors.
    url: String,
    /// Groups not read yet, as SQL filters on the partition columns.
    groups: VecDeque<String>,
    /// The group being read: its filter (for errors) and its sorted rows.
    current: Option<(String, SendableRecordBatchStream)>,
}

impl DaySamples {
    /// Loads the latest version of `samples` and works out the day's hours from its
    /// partition values; reads no data file yet. A lake without a `samples` table has
    /// an empty day.
    pub async fn open(lake: &Lake, date: NaiveDate) -> Result<DaySamples> {
        let ctx = new_context(lake);
        let url = lake.table_url(SAMPLES_TABLE);
        let groups = match gpustream_lake::delta::open_table(lake, SAMPLES_TABLE).await? {
            Some(table) => {
                let groups = day_groups(&table, date)?;
                let provider = provider(&ctx, &table)
                    .await
                    .map_err(|source| Error::Register {
                        table: SAMPLES_TABLE.into(),
                        url: url.clone(),
                        source,
                    })?;
                ctx.register_table(TableReference::bare(PART), provider)
                    .map_err(Error::datafusion("registering the samples table"))?;
                groups
            }
            None => Vec::new(),
        };
        tracing::debug!(%date, groups = groups.len(), "reading the day's samples");
        Ok(DaySamples {
            ctx,
            url,
            groups: groups.into(),
            current: None,
        })
    }

    /// The next batch of samples, or `None` at the end of the day. Within a group,
    /// rows come sorted by host, GPU, session and event time; groups come in hour
    /// order.
    pub async fn next(&mut self) -> Result<Option<SampleBatch>> {
        loop {
            if let Some((filter, stream)) = &mut self.current {
                match stream.next().await {
                    Some(batch) => {
                        let batch = batch.map_err(Error::datafusion(format!(
                            "scanning {} where {filter}",
                            self.url
                        )))?;
                        return SampleBatch::decode(&batch).map(Some);
                    }
                    None => self.current = None,
                }
            }
            let Some(filter) = self.groups.pop_front() else {
                return Ok(None);
            };
            let stream = self
                .ctx
                .sql(&scan_sql(PART, &filter))
                .await
                .map_err(Error::datafusion(format!(
                    "planning the scan of {} where {filter}",
                    self.url
                )))?
                .execute_stream()
                .await
                .map_err(Error::datafusion(format!(
                    "scanning {} where {filter}",
                    self.url
                )))?;
            self.current = Some((filter, stream));
        }
    }
}

/// A string literal for SQL.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The day's groups, as filters: one per `hour` partition value of the files dated
/// `date`, in hour order, or the whole date as one group when the table has no `hour`
/// partition or a file of the day has no hour value.
fn day_groups(table: &DeltaTable, date: NaiveDate) -> Result<Vec<String>> {
    let columns = partition_columns(table, SAMPLES_TABLE)?;
    let day = date.to_string();
    let date_filter = format!("{DATE_COLUMN} = {}", quoted(&day));
    let snapshot = table
        .snapshot()
        .map_err(|e| gpustream_lake::Error::delta(SAMPLES_TABLE, e))?;
    let mut hours = BTreeSet::new();
    let mut whole_day = !columns.iter().any(|c| c == HOUR_COLUMN);
    let mut files = 0usize;
    for file in snapshot.log_data() {
        let values = file.partition_values_map();
        if values.get(DATE_COLUMN).and_then(Option::as_deref) != Some(day.as_str()) {
            continue;
        }
        files += 1;
        match values.get(HOUR_COLUMN).and_then(Option::as_deref) {
            Some(hour) => {
                hours.insert(hour.to_string());
            }
            None => whole_day = true,
        }
    }
    if files == 0 {
        return Ok(Vec::new());
    }
    if whole_day {
        return Ok(vec![date_filter]);
    }
    Ok(hours
        .into_iter()
        .map(|h| format!("{date_filter} AND {HOUR_COLUMN} = {}", quoted(&h)))
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
const XID_COLUMN: &str = "xid";

/// The query one group is read with: the analysed columns of the rows matching `filter`
/// (a condition on partition columns), ordered so each GPU's sessions arrive in
/// event-time order.
pub fn scan_sql(table: &str, filter: &str) -> String {
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
    for c in HealthCounter::ALL {
        cols.push(format!(
            "CAST({} AS DOUBLE) AS {}",
            usable(c.source()),
            c.column()
        ));
    }
    cols.push(format!(
        "CAST({} AS BIGINT) AS {XID_COLUMN}",
        usable(Metric::Xid)
    ));
    format!(
        "SELECT {} FROM {table} WHERE {filter} ORDER BY host, gpu, session, event_time",
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
    /// Health counters, in [`HealthCounter::ALL`] order.
    counters: Vec<Float64Array>,
    /// XID code.
    pub xid: Int64Array,
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
            counters: HealthCounter::ALL
                .iter()
                .map(|c| float(b, c.column()))
                .collect::<Result<_>>()?,
            xid: int(b, XID_COLUMN)?,
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

    /// The usable values of a health counter.
    pub fn counter(&self, counter: HealthCounter) -> &Float64Array {
        &self.counters[counter.index()]
    }
}

/// Each GPU's `health` rows of the [`HISTORY_DAYS`](crate::model::health::HISTORY_DAYS)
/// days before `date`, summed; none when the lake has no `health` table yet. The table
/// is read at its latest version (a range run sees the days it just wrote).
pub async fn health_history(lake: &Lake, date: NaiveDate) -> Result<Vec<HealthHistory>> {
    let location = super::table_location(super::HEALTH_TABLE);
    let Some(table) = gpustream_lake::delta::open_table(lake, &location).await? else {
        return Ok(Vec::new());
    };
    let ctx = new_context(lake);
    let provider = provider(&ctx, &table)
        .await
        .map_err(|source| Error::Register {
            table: location.clone(),
            url: lake.table_url(&location),
            source,
        })?;
    ctx.register_table(TableReference::bare("previous_health"), provider)
        .map_err(Error::datafusion("registering the health table"))?;
    let days = crate::model::health::HISTORY_DAYS;
    let from = date - chrono::Days::new(days);
    let sql = format!(
        "SELECT host, gpu, CAST(count(*) AS BIGINT) AS days, \
         CAST(sum(ecc_corrected_new) AS DOUBLE) AS corrected, \
         CAST(sum(ecc_uncorrected_new) AS DOUBLE) AS uncorrected \
         FROM previous_health WHERE {DATE_COLUMN} >= {} AND {DATE_COLUMN} < {} \
         GROUP BY host, gpu ORDER BY host, gpu",
        quoted(&from.to_string()),
        quoted(&date.to_string())
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(Error::datafusion("planning the health history query"))?
        .collect()
        .await
        .map_err(Error::datafusion("reading the previous days' health"))?;
    let mut out = Vec::new();
    for b in &batches {
        let (host, gpu, n) = (utf8(b, "host")?, utf8(b, "gpu")?, int(b, "days")?);
        let (corrected, uncorrected) = (float(b, "corrected")?, float(b, "uncorrected")?);
        let value = |a: &Float64Array, r: usize| if a.is_null(r) { 0.0 } else { a.value(r) };
        for r in 0..b.num_rows() {
            if host.is_null(r) || gpu.is_null(r) {
                continue;
            }
            out.push(HealthHistory {
                host: host.value(r).to_string(),
                gpu: gpu.value(r).to_string(),
                days: n.value(r).max(0) as u64,
                ecc_corrected: value(&corrected, r),
                ecc_uncorrected: value(&uncorrected, r),
            });
        }
    }
    Ok(out)
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
         FROM {ANOMALIES_TABLE} WHERE {DATE_COLUMN} = {}",
        quoted(&date.to_string())
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

#[cfg(test)]
mod tests {
    use gpustream_lake::delta::{SAMPLES, TableSpec, TableWriter};
    use gpustream_test_kit::SampleBuilder;

    use super::*;

    /// Writes one sample per time into the samples table of `spec`'s partitioning.
    async fn lake_with(spec: TableSpec, times: &[&str]) -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(dir.path().to_str().expect("path")).expect("lake");
        let mut w = TableWriter::open(&lake, spec).await.expect("open");
        let mut batches = Vec::new();
        for (i, t) in times.iter().enumerate() {
            let t: chrono::DateTime<chrono::Utc> = t.parse().expect("time");
            let s = SampleBuilder::new("h", "g").seq(i as u64).at(t).build();
            let b = gpustream_lake::columnar::samples_to_batch([&s]).expect("batch");
            batches.push(w.with_partition(&b, t).expect("partition"));
        }
        w.append(&batches, &[]).await.expect("commit");
        (dir, lake)
    }

    async fn groups(lake: &Lake, date: &str) -> Vec<String> {
        let table = gpustream_lake::delta::open_table(lake, SAMPLES_TABLE)
            .await
            .expect("open")
            .expect("table");
        day_groups(&table, date.parse().expect("date")).expect("groups")
    }

    #[tokio::test]
    async fn a_day_is_read_hour_by_hour_from_the_partition_values() {
        let (_dir, lake) = lake_with(
            SAMPLES,
            &[
                "2024-01-02T23:10:00Z",
                "2024-01-02T00:00:00Z",
                "2024-01-02T12:30:00Z",
                "2024-01-02T12:40:00Z",
                "2024-01-03T05:00:00Z",
            ],
        )
        .await;
        assert_eq!(
            groups(&lake, "2024-01-02").await,
            [
                "date = '2024-01-02' AND hour = '00'",
                "date = '2024-01-02' AND hour = '12'",
                "date = '2024-01-02' AND hour = '23'",
            ]
        );
        assert_eq!(
            groups(&lake, "2024-01-03").await,
            ["date = '2024-01-03' AND hour = '05'"]
        );
        assert!(groups(&lake, "2024-01-04").await.is_empty());

        // The scan reads each hour in order, sorted within it.
        let mut day = DaySamples::open(&lake, "2024-01-02".parse().expect("date"))
            .await
            .expect("open");
        let mut times = Vec::new();
        while let Some(b) = day.next().await.expect("next") {
            times.extend((0..b.num_rows()).map(|r| b.time.value(r)));
        }
        assert_eq!(times.len(), 4);
        assert!(times.is_sorted(), "{times:?}");
    }

    #[tokio::test]
    async fn a_table_without_hours_is_read_as_one_group() {
        let by_date = TableSpec {
            partition_columns: &[DATE_COLUMN],
            ..SAMPLES
        };
        let (_dir, lake) =
            lake_with(by_date, &["2024-01-02T23:10:00Z", "2024-01-02T00:00:00Z"]).await;
        assert_eq!(groups(&lake, "2024-01-02").await, ["date = '2024-01-02'"]);
    }
}
