//! Writing a day's outputs into the lake. With [`super::scan`], the only nightly code
//! that touches storage.
//!
//! Every table is encoded first, then each `analytics/<table>/date=D/part-0.parquet`
//! is replaced by one atomic operation (local: written under `_tmp/`, fsynced and
//! renamed over; S3: a single PUT), then other `.parquet` files of that partition
//! (older layouts, manual copies) are deleted. A reader therefore sees, per table, the
//! old day or the new day, never half of one and never both. The report goes to
//! `analytics/_reports/date=D/report.html` (a `_` directory, never taken for a table).

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use futures::TryStreamExt;
use gpustream_lake::{ANALYTICS_PREFIX, Lake};
use object_store::ObjectStoreExt;

use super::TableOutput;
use crate::error::{Error, Result};
use crate::tables::{DATE_COLUMN, PARQUET_EXTENSION};

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

/// Replaces each table's `date` partition with `batch` (whose `date` column is the
/// partition, not stored in the file), plus `part-0.csv` with every column when `csv`
/// is set. Encodes everything before replacing anything: a failure to encode leaves
/// the old day whole.
pub async fn publish_tables(
    lake: &Lake,
    date: NaiveDate,
    tables: Vec<(&'static str, RecordBatch)>,
    csv: bool,
) -> Result<Vec<TableOutput>> {
    let mut encoded = Vec::new();
    for (name, batch) in &tables {
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| batch.schema().field(i).name() != DATE_COLUMN)
            .collect();
        let parquet = gpustream_lake::encode_parquet(&[batch.project(&keep)?])?;
        let csv = if csv { Some(csv_bytes(batch)?) } else { None };
        encoded.push((*name, parquet, csv));
    }
    let mut out = Vec::new();
    for ((name, parquet, csv), (_, batch)) in encoded.into_iter().zip(tables) {
        let relative = table_path(name, date);
        lake.overwrite(&relative, parquet).await?;
        if let Some(csv) = csv {
            lake.overwrite(&relative.replace(PARQUET_EXTENSION, ".csv"), csv.into())
                .await?;
        }
        let removed = remove_strays(lake, name, date).await?;
        out.push(TableOutput {
            name,
            batch,
            location: format!("{}{relative}", lake.root_url()),
            removed,
        });
    }
    Ok(out)
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
