//! Converting a lake written by the previous version (bare Hive-layout Parquet plus
//! `_progress/` records) into Delta tables in place, without copying a file.

use deltalake_core::kernel::{DataType, StructField};
use deltalake_core::operations::convert_to_delta::{ConvertToDeltaBuilder, PartitionStrategy};
use object_store::ObjectStoreExt as _;

use super::tables::{ANOMALIES, ROLLUPS, SAMPLES};
use super::writer::{TableWriter, app_id};
use crate::error::{Error, Result};
use crate::store::Lake;

/// What converting a lake did, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConversionReport {
    /// `(table, files adopted)`; tables already in Delta format or absent are not listed.
    pub converted: Vec<(String, u64)>,
    /// Kafka progress carried over from `_progress/` records, as `(app id, last offset)`.
    pub progress: Vec<(String, i64)>,
}

/// Turns a table of the previous layout (bare Parquet under `<name>/date=D/[hour=H/]`)
/// into a Delta table in place: one commit that adds every existing file, so nothing
/// is copied. Returns the number of files adopted; a table that already is a Delta table
/// is left alone (`Ok(None)`).
pub async fn convert_table(
    lake: &Lake,
    name: &str,
    partition_columns: &[&str],
) -> Result<Option<u64>> {
    if super::open_table(lake, name).await?.is_some() {
        return Ok(None);
    }
    let table = super::unloaded(lake, name)?;
    let partitions: Vec<StructField> = partition_columns
        .iter()
        .map(|c| StructField::new(*c, DataType::STRING, true))
        .collect();
    let converted = ConvertToDeltaBuilder::new()
        .with_log_store(table.log_store())
        .with_partition_schema(partitions)
        .with_partition_strategy(PartitionStrategy::Hive)
        .await
        .map_err(|e| Error::delta(name, e))?;
    let files = converted
        .snapshot()
        .map_err(|e| Error::delta(name, e))?
        .log_data()
        .into_iter()
        .count();
    Ok(Some(files as u64))
}

/// Converts the stream tables (`samples`, `anomalies`, `rollups_1m`) and every
/// `analytics/<table>` of the previous layout, and carries the previous version's
/// `_progress/<topic>/<partition>.json` records over as Delta `txn` progress, so a
/// processor started on the converted lake resumes exactly where the old one stopped.
/// Running it again changes nothing.
pub async fn convert_lake(lake: &Lake) -> Result<ConversionReport> {
    let mut report = ConversionReport::default();
    let stream = [SAMPLES, ANOMALIES, ROLLUPS];
    for spec in &stream {
        if has_files(lake, spec.name).await? {
            // The previous layout partitioned every stream table by date and hour.
            if let Some(files) = convert_table(lake, spec.name, &["date", "hour"]).await? {
                report.converted.push((spec.name.to_string(), files));
            }
        }
    }
    for name in analytics_tables(lake).await? {
        let table = format!("{}/{name}", crate::layout::ANALYTICS_PREFIX);
        if let Some(files) = convert_table(lake, &table, &["date"]).await? {
            report.converted.push((table, files));
        }
    }
    report.progress = old_progress(lake).await?;
    if !report.progress.is_empty() {
        for spec in stream {
            if !has_files(lake, spec.name).await?
                && !report.converted.iter().any(|(t, _)| t == spec.name)
            {
                continue;
            }
            let mut w = TableWriter::open(lake, spec).await?;
            let mut missing = Vec::new();
            for (id, v) in &report.progress {
                if w.version_of(id).await?.is_none_or(|have| have < *v) {
                    missing.push((id.clone(), *v));
                }
            }
            if !missing.is_empty() {
                w.append(&[], &missing).await?;
            }
        }
    }
    Ok(report)
}

/// Whether `table/` holds any Parquet file.
async fn has_files(lake: &Lake, table: &str) -> Result<bool> {
    use futures::TryStreamExt as _;
    let mut listing = lake.store().list(Some(&lake.path(table)));
    while let Some(meta) = listing.try_next().await? {
        if meta.location.as_ref().ends_with(".parquet") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Names of the tables under `analytics/`.
async fn analytics_tables(lake: &Lake) -> Result<Vec<String>> {
    let listing = lake
        .store()
        .list_with_delimiter(Some(&lake.path(crate::layout::ANALYTICS_PREFIX)))
        .await;
    let listing = match listing {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .filter(|n| !n.starts_with('_'))
        .collect())
}

/// The previous version's progress records: `_progress/<topic>/<partition>.json`
/// holding `{"published_through": N, ...}`.
async fn old_progress(lake: &Lake) -> Result<Vec<(String, i64)>> {
    use futures::TryStreamExt as _;
    let mut out = Vec::new();
    let objects: Vec<_> = lake
        .store()
        .list(Some(&lake.path("_progress")))
        .try_collect()
        .await?;
    for o in objects {
        let parts: Vec<String> = o.location.parts().map(|p| p.as_ref().to_string()).collect();
        let n = parts.len();
        if n < 2 {
            continue;
        }
        let (topic, file) = (parts[n - 2].clone(), parts[n - 1].clone());
        let Some(partition) = file
            .strip_suffix(".json")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let bytes = lake.store().get(&o.location).await?.bytes().await?;
        let record: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("progress record {}: {e}", o.location)))?;
        if let Some(through) = record["published_through"].as_i64() {
            out.push((app_id(&topic, partition), through));
        }
    }
    out.sort();
    Ok(out)
}
