//! Upkeep of a table: compaction of closed partitions (Delta OPTIMIZE), checkpoints and
//! log cleanup, vacuum of files no version references any more.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use deltalake_core::operations::vacuum::VacuumMode;
use deltalake_core::{DeltaTable, FilterOp, FilterValue};

use crate::error::{Error, Result};

/// How a table is kept in shape.
#[derive(Debug, Clone)]
pub struct MaintainOptions {
    /// Files are compacted up to this size.
    pub target_file_size: NonZeroU64,
    /// Files that no version younger than this references are deleted.
    pub retention: Duration,
}

impl Default for MaintainOptions {
    /// 128 MiB files, 24 h retention (readers older than a day may lose files).
    fn default() -> Self {
        MaintainOptions {
            target_file_size: NonZeroU64::new(128 << 20).unwrap_or(NonZeroU64::MIN),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Active files of the compacted partitions before.
    pub files_before: u64,
    /// ... and after.
    pub files_after: u64,
    /// Files written.
    pub files_added: u64,
    /// Files replaced.
    pub files_removed: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Compacts partition `date` (a closed UTC day) of `table` with Delta OPTIMIZE: small
/// files are rewritten into files of about the target size and the swap is one commit
/// with `dataChange=false`, so a reader sees either the old files or the new ones,
/// every row exactly once, and concurrent appends (to the live partitions) do not
/// conflict with it.
pub async fn compact(
    table: DeltaTable,
    date: &str,
    options: &MaintainOptions,
) -> Result<(DeltaTable, CompactionReport)> {
    let name = table_name(&table);
    let started = Instant::now();
    let before = files_in_date(&table, date)?;
    let filters = [("date", FilterOp::Eq, FilterValue::Scalar(date))];
    let (table, metrics) = table
        .optimize()
        .with_filters(&filters)
        .with_target_size(options.target_file_size)
        .with_writer_properties(crate::parquet::writer_properties())
        .with_max_concurrent_tasks(2)
        .await
        .map_err(|e| Error::delta(&name, e))?;
    let after = files_in_date(&table, date)?;
    Ok((
        table,
        CompactionReport {
            files_before: before,
            files_after: after,
            files_added: metrics.num_files_added,
            files_removed: metrics.num_files_removed,
            elapsed: started.elapsed(),
        },
    ))
}

/// Writes a checkpoint of the latest version and removes log entries older than the
/// table's log retention that the checkpoint makes unnecessary.
pub async fn checkpoint(table: &DeltaTable) -> Result<usize> {
    let name = table_name(table);
    deltalake_core::checkpoints::create_checkpoint(table, None)
        .await
        .map_err(|e| Error::delta(&name, e))?;
    deltalake_core::checkpoints::cleanup_metadata(table, None)
        .await
        .map_err(|e| Error::delta(&name, e))
}

/// What a vacuum deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VacuumReport {
    /// Files deleted.
    pub files_deleted: u64,
}

/// Deletes data files that no version within `retention` references: files compaction
/// replaced, and files a crashed writer left without committing them (a full vacuum
/// lists the table's directory for those).
pub async fn vacuum(table: DeltaTable, retention: Duration) -> Result<(DeltaTable, VacuumReport)> {
    let name = table_name(&table);
    let retention = chrono::Duration::from_std(retention)
        .map_err(|e| Error::Invalid(format!("retention {retention:?}: {e}")))?;
    let (table, metrics) = table
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .with_dry_run(false)
        .await
        .map_err(|e| Error::delta(&name, e))?;
    Ok((
        table,
        VacuumReport {
            files_deleted: metrics.files_deleted.len() as u64,
        },
    ))
}

/// How many active files one `date` partition has.
pub fn files_in_date(table: &DeltaTable, date: &str) -> Result<u64> {
    Ok(active_files_in_date(table, date)?.len() as u64)
}

/// The active files of one `date` partition (paths relative to the table), in the
/// order of the table's log.
pub fn active_files_in_date(table: &DeltaTable, date: &str) -> Result<Vec<String>> {
    let name = table_name(table);
    let state = table.snapshot().map_err(|e| Error::delta(&name, e))?;
    Ok(state
        .log_data()
        .into_iter()
        .filter(|f| {
            f.partition_values_map()
                .get("date")
                .is_some_and(|v| v.as_deref() == Some(date))
        })
        .map(|f| f.path().into_owned())
        .collect())
}

fn table_name(table: &DeltaTable) -> String {
    table
        .table_url()
        .path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(str::to_string))
        .unwrap_or_else(|| table.table_url().to_string())
}
