//! Writing a day's outputs into the lake. With [`super::scan`], the only nightly code
//! that touches storage.
//!
//! Every output is a Delta table `analytics/<table>` partitioned by `date`. A run
//! replaces its day with one commit per table: a predicate overwrite
//! (`replaceWhere date = 'D'`) that removes the day's files and adds the new ones in
//! the same commit. A reader of a table therefore sees the old day or the new day,
//! never half of one, never both; other days are not touched. A table is created
//! (empty, with the lake's table properties) the first time it is written.
//!
//! Plain files stay outside the tables, under `_` directories that readers and vacuum
//! skip: the CSV copies go to `analytics/_csv/<table>/date=D/part-0.csv`, the report
//! to `analytics/_reports/date=D/report.html`.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use gpustream_lake::delta::deltalake_core::DeltaTable;
use gpustream_lake::delta::deltalake_core::operations::write::SchemaMode;
use gpustream_lake::delta::deltalake_core::protocol::SaveMode;
use gpustream_lake::delta::{TableSpec, TableWriter};
use gpustream_lake::{ANALYTICS_PREFIX, Lake};

use super::TableOutput;
use super::batches::{
    ANOMALY_SUMMARY_TABLE, COHORTS_TABLE, CORRELATIONS_TABLE, DAILY_FLEET_TABLE, DAILY_GPU_TABLE,
    ENERGY_BY_OWNER_TABLE, GPU_COMPARISON_TABLE, HEALTH_TABLE, HOURLY_TABLE, SPIKES_TABLE,
    THROTTLING_TABLE, WASTE_TABLE,
};
use crate::error::{Error, Result};
use crate::tables::DATE_COLUMN;

/// File name of a day's CSV copy. Fixed, so a re-run replaces instead of adding a file.
pub const CSV_FILE: &str = "part-0.csv";

/// Where the HTML report of a day goes inside the lake (a `_` directory, so it is
/// never taken for a table).
pub fn report_path(date: NaiveDate) -> String {
    format!("{ANALYTICS_PREFIX}/_reports/date={date}/report.html")
}

/// Where the CSV copy of a table's day goes inside the lake (`--csv`): outside the
/// Delta table, whose vacuum deletes every file its log does not know.
pub fn csv_path(table: &str, date: NaiveDate) -> String {
    format!("{ANALYTICS_PREFIX}/_csv/{table}/{DATE_COLUMN}={date}/{CSV_FILE}")
}

/// Location of an output table relative to the lake root (`analytics/<table>`).
pub fn table_location(table: &str) -> String {
    format!("{ANALYTICS_PREFIX}/{table}")
}

/// `(table, location)` of every output, in [`super::NIGHTLY_TABLES`] order: the locations as
/// `'static` names, which [`TableSpec`] needs.
const LOCATIONS: [(&str, &str); 12] = [
    (DAILY_GPU_TABLE, "analytics/daily_gpu"),
    (DAILY_FLEET_TABLE, "analytics/daily_fleet"),
    (HOURLY_TABLE, "analytics/hourly"),
    (SPIKES_TABLE, "analytics/spikes"),
    (CORRELATIONS_TABLE, "analytics/correlations"),
    (ANOMALY_SUMMARY_TABLE, "analytics/anomaly_summary"),
    (GPU_COMPARISON_TABLE, "analytics/gpu_comparison"),
    (WASTE_TABLE, "analytics/waste"),
    (ENERGY_BY_OWNER_TABLE, "analytics/energy_by_owner"),
    (THROTTLING_TABLE, "analytics/throttling"),
    (HEALTH_TABLE, "analytics/health"),
    (COHORTS_TABLE, "analytics/cohorts"),
];

/// The columns of output table `I` (of [`super::NIGHTLY_TABLES`]) without `date`: what the
/// table is created with. Taken from the tables of an empty day, which have every
/// column.
fn data_schema<const I: usize>() -> SchemaRef {
    let day = super::empty_day();
    let schema = super::build_tables(&day)
        .ok()
        .and_then(|tables| tables.into_iter().nth(I))
        .map(|(_, batch)| batch.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != DATE_COLUMN)
        .map(|f| f.as_ref().clone())
        .collect();
    Arc::new(Schema::new(fields))
}

/// How output `table` is created: its location, columns and `date` partitioning.
fn spec(table: &str) -> Result<TableSpec> {
    let schemas: [fn() -> SchemaRef; 12] = [
        data_schema::<0>,
        data_schema::<1>,
        data_schema::<2>,
        data_schema::<3>,
        data_schema::<4>,
        data_schema::<5>,
        data_schema::<6>,
        data_schema::<7>,
        data_schema::<8>,
        data_schema::<9>,
        data_schema::<10>,
        data_schema::<11>,
    ];
    LOCATIONS
        .iter()
        .zip(schemas)
        .find(|((name, _), _)| *name == table)
        .map(|((_, location), data_schema)| TableSpec {
            name: location,
            data_schema,
            partition_columns: &[DATE_COLUMN],
        })
        .ok_or_else(|| Error::Options(format!("`{table}` is not a nightly table")))
}

/// Replaces each table's `date` partition with `batch` (whose `date` column is the
/// partition), one commit per table, plus a CSV copy with every column when `csv` is
/// set.
pub async fn publish_tables(
    lake: &Lake,
    date: NaiveDate,
    tables: Vec<(&'static str, RecordBatch)>,
    csv: bool,
) -> Result<Vec<TableOutput>> {
    let mut out = Vec::new();
    for (name, batch) in tables {
        let (location, version) = replace_day(lake, name, date, &batch).await?;
        if csv {
            lake.overwrite(&csv_path(name, date), csv_bytes(&batch)?.into())
                .await?;
        }
        out.push(TableOutput {
            name,
            batch,
            location,
            version,
        });
    }
    Ok(out)
}

/// Replaces the day's rows of one output table in one commit; returns the table's URL
/// and the version committed.
async fn replace_day(
    lake: &Lake,
    name: &'static str,
    date: NaiveDate,
    batch: &RecordBatch,
) -> Result<(String, u64)> {
    let location = table_location(name);
    let table: DeltaTable = TableWriter::open(lake, spec(name)?).await?.table().clone();
    let predicate = format!("{DATE_COLUMN} = '{date}'");
    let written = table
        .write(vec![partition_not_null(batch)?])
        .with_save_mode(SaveMode::Overwrite)
        .with_replace_where(predicate)
        // A column added to an output by a newer version joins the table's schema
        // (older days read it as NULL) instead of failing the run.
        .with_schema_mode(SchemaMode::Merge)
        .with_writer_properties(gpustream_lake::writer_properties())
        .await
        .map_err(|e| gpustream_lake::Error::delta(&location, e))?;
    let version = written.version().unwrap_or_default();
    tracing::debug!(table = %location, %date, version, rows = batch.num_rows(), "day replaced");
    Ok((lake.table_url(&location), version))
}

/// `batch` with its `date` column declared non-null, as the table declares its
/// partition column (it never holds a null).
fn partition_not_null(batch: &RecordBatch) -> Result<RecordBatch> {
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if f.name() == DATE_COLUMN {
                f.with_nullable(false)
            } else {
                f
            }
        })
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        batch.columns().to_vec(),
    )?)
}

/// Replaces the day's HTML report; returns its URL.
pub async fn publish_report(lake: &Lake, date: NaiveDate, html: &str) -> Result<String> {
    let relative = report_path(date);
    lake.overwrite(&relative, html.to_owned().into_bytes().into())
        .await?;
    Ok(format!("{}{relative}", lake.root_url()))
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

#[cfg(test)]
mod tests {
    use super::super::NIGHTLY_TABLES;
    use super::*;

    #[test]
    fn every_table_has_its_location_and_columns() {
        for (i, name) in NIGHTLY_TABLES.iter().enumerate() {
            assert_eq!(LOCATIONS[i].0, *name);
            assert_eq!(LOCATIONS[i].1, table_location(name));
            let spec = spec(name).expect("spec");
            let schema = (spec.data_schema)();
            assert!(schema.fields().len() > 3, "{name}: {schema:?}");
            assert!(schema.field_with_name(DATE_COLUMN).is_err(), "{name}");
            assert_eq!(
                spec.table_schema()
                    .fields()
                    .last()
                    .map(|f| f.name().as_str()),
                Some(DATE_COLUMN)
            );
        }
        assert!(spec("samples").is_err());
    }

    #[test]
    fn plain_files_stay_outside_the_tables() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
        assert_eq!(
            csv_path("hourly", d),
            "analytics/_csv/hourly/date=2024-01-02/part-0.csv"
        );
        assert_eq!(
            report_path(d),
            "analytics/_reports/date=2024-01-02/report.html"
        );
    }
}
