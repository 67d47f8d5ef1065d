//! Appending to a table in commits that carry the Kafka progress they include.

use std::collections::HashMap;

use arrow::array::{Array, RecordBatch, StringArray};
use deltalake_core::DeltaTable;
use deltalake_core::datafile::writer::{DeltaWriter, WriterConfig};
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, StructType, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTableError, DeltaTablePartition, TableProperty};
use indexmap::IndexMap;

use super::tables::TableSpec;
use crate::error::{Error, Result};
use crate::store::Lake;

/// The `txn` application id of one Kafka topic partition: the same in every table, so a
/// table's log says how far each partition of the topic is in it, whichever consumer
/// group or instance wrote it.
///
/// ```
/// assert_eq!(gpustream_lake::delta::app_id("gpu-samples", 3), "gpustream:gpu-samples:3");
/// ```
pub fn app_id(topic: &str, partition: i32) -> String {
    format!("gpustream:{topic}:{partition}")
}

/// What one commit added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommitReport {
    /// The table version it created (`None` when there was nothing to commit).
    pub version: Option<u64>,
    /// Data files added.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Rows in them.
    pub rows: u64,
}

/// Appends to one table of the lake.
///
/// Each [`TableWriter::append`] is one Delta commit holding the new files and one `txn`
/// action per Kafka partition covered (version = last offset). Versions read with
/// [`TableWriter::committed`] are cached and advanced by this writer's own commits;
/// delta-rs checks every commit against those that won the race since the version the
/// writer read, and a winner with the same `txn` application id fails the commit with
/// [`Error::ConcurrentProgress`]: then the cache is dropped, and the caller reads the
/// versions again and drops what is already in.
pub struct TableWriter {
    spec: TableSpec,
    table: DeltaTable,
    /// The table's partition columns as its metadata says (a table converted from the
    /// previous layout may be partitioned differently from a new one).
    partition_columns: Vec<String>,
    versions: HashMap<String, Option<i64>>,
}

/// Table properties of every table the lake creates.
fn properties() -> [(TableProperty, &'static str); 4] {
    [
        // A checkpoint every 10 commits keeps log replay short on a stream that commits
        // every few seconds. Replay decodes every JSON commit since the checkpoint at
        // once: at 50, a processor's heap peaked at 105 MB of JSON decoders alone
        // (heaptrack, 14-minute soak; BENCHMARKS.md "Soak").
        (TableProperty::CheckpointInterval, "10"),
        (TableProperty::LogRetentionDuration, "interval 7 days"),
        (
            TableProperty::DeletedFileRetentionDuration,
            "interval 1 days",
        ),
        (TableProperty::EnableChangeDataFeed, "false"),
    ]
}

impl TableWriter {
    /// Opens the table, creating it (empty, with its schema, partitioning and
    /// properties) when it does not exist yet.
    pub async fn open(lake: &Lake, spec: TableSpec) -> Result<TableWriter> {
        let table = open_or_create(lake, &spec).await?;
        let partition_columns = table
            .snapshot()
            .map_err(|e| Error::delta(spec.name, e))?
            .metadata()
            .partition_columns()
            .to_vec();
        Ok(TableWriter {
            spec,
            table,
            partition_columns,
            versions: HashMap::new(),
        })
    }

    /// The table's partition columns.
    pub fn partition_columns(&self) -> &[String] {
        &self.partition_columns
    }

    /// The partition values of a UTC event time in this table (`date` as
    /// `YYYY-MM-DD`, `hour` as `HH`).
    pub fn partition_values(&self, t: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        self.partition_columns
            .iter()
            .map(|c| match c.as_str() {
                "hour" => t.format("%H").to_string(),
                _ => t.format("%Y-%m-%d").to_string(),
            })
            .collect()
    }

    /// `batch` (data columns) with this table's partition columns appended, every row in
    /// the partition of `t`.
    pub fn with_partition(
        &self,
        batch: &RecordBatch,
        t: chrono::DateTime<chrono::Utc>,
    ) -> Result<RecordBatch> {
        let values = self.partition_values(t);
        let rows = batch.num_rows();
        let mut columns: Vec<arrow::array::ArrayRef> = batch.columns().to_vec();
        let mut fields: Vec<arrow::datatypes::Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for (name, v) in self.partition_columns.iter().zip(&values) {
            columns.push(std::sync::Arc::new(arrow::array::StringArray::from(vec![
                v.as_str();
                rows
            ])));
            fields.push(arrow::datatypes::Field::new(
                name,
                arrow::datatypes::DataType::Utf8,
                false,
            ));
        }
        Ok(RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
            columns,
        )?)
    }

    /// The table.
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// The last offset committed under `app_id` (see [`app_id`]), read from the
    /// table's latest version; `None` when nothing was committed under it.
    pub async fn committed(&mut self, app_id: &str) -> Result<Option<i64>> {
        let name = self.spec.name;
        self.table
            .update_state()
            .await
            .map_err(|e| Error::delta(name, e))?;
        self.versions.clear();
        self.version_of(app_id).await
    }

    /// Like [`TableWriter::committed`], from the cache when this writer already knows it.
    pub async fn version_of(&mut self, app_id: &str) -> Result<Option<i64>> {
        if let Some(v) = self.versions.get(app_id) {
            return Ok(*v);
        }
        let name = self.spec.name;
        let state = self.table.snapshot().map_err(|e| Error::delta(name, e))?;
        let v = state
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(|e| Error::delta(name, e))?;
        self.versions.insert(app_id.to_string(), v);
        Ok(v)
    }

    /// Writes `batches` (table schema: data then partition columns) as new zstd Parquet
    /// files and commits them with `progress` (`(app id, last offset)` pairs) in one
    /// commit. Nothing is committed when there are neither rows nor progress.
    ///
    /// A file written before a failed commit is never part of the table; vacuum removes
    /// it.
    pub async fn append(
        &mut self,
        batches: &[RecordBatch],
        progress: &[(String, i64)],
    ) -> Result<CommitReport> {
        let name = self.spec.name;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows == 0 && progress.is_empty() {
            return Ok(CommitReport::default());
        }
        let mut adds = Vec::new();
        if rows > 0 {
            let state = self.table.snapshot().map_err(|e| Error::delta(name, e))?;
            let (indexed, stats_columns) =
                deltalake_core::operations::get_num_idx_cols_and_stats_columns(
                    Some(state.table_config()),
                    Default::default(),
                );
            let Some(first) = batches.iter().find(|b| b.num_rows() > 0) else {
                return Err(Error::Invalid("no rows to write".into()));
            };
            let config = WriterConfig::new(
                first.schema(),
                self.partition_columns.clone(),
                Some(crate::parquet::stream_writer_properties()),
                None,
                None,
                indexed,
                stats_columns,
            );
            let mut writer = DeltaWriter::new(self.table.log_store().object_store(None), config);
            for b in batches.iter().filter(|b| b.num_rows() > 0) {
                // A batch in one partition (as `with_partition` makes them) goes straight
                // to its file: `DeltaWriter::write` would group the rows by partition and
                // copy every column into the group, a full copy of the flush.
                let written = match single_partition(b, &self.partition_columns) {
                    Some(values) => {
                        // The kernel's `Scalar`, which delta-rs does not re-export by name.
                        let values: IndexMap<String, _> =
                            values.into_iter().map(|p| (p.key, p.value)).collect();
                        writer.write_partition(b.clone(), &values).await
                    }
                    None => writer.write(b).await,
                };
                written.map_err(|e| Error::delta(name, e))?;
            }
            adds = writer.close().await.map_err(|e| Error::delta(name, e))?;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let txns: Vec<Transaction> = progress
            .iter()
            .map(|(id, v)| Transaction::new_with_last_update(id, *v, Some(now)))
            .collect();
        let report = CommitReport {
            version: None,
            files: adds.len() as u64,
            bytes: adds.iter().map(|a| a.size.max(0) as u64).sum(),
            rows: rows as u64,
        };
        let actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(self.partition_columns.clone()),
            predicate: None,
        };
        let props = CommitProperties::default().with_application_transactions(txns);
        let state = self.table.snapshot().map_err(|e| Error::delta(name, e))?;
        let committed = CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(state), self.table.log_store(), operation)
            .await;
        match committed {
            Ok(done) => {
                let version = done.version();
                self.table.state = Some(done.snapshot());
                for (id, v) in progress {
                    self.versions.insert(id.clone(), Some(*v));
                }
                Ok(CommitReport {
                    version: Some(version),
                    ..report
                })
            }
            Err(e) if is_concurrent_transaction(&e) => {
                self.versions.clear();
                self.table
                    .update_state()
                    .await
                    .map_err(|e| Error::delta(name, e))?;
                Err(Error::ConcurrentProgress {
                    table: name.to_string(),
                })
            }
            Err(e) => Err(Error::delta(name, e)),
        }
    }
}

/// The partition values of `batch` when every row has the same ones (none null);
/// `None` otherwise.
fn single_partition(
    batch: &RecordBatch,
    partition_columns: &[String],
) -> Option<Vec<DeltaTablePartition>> {
    let mut values = Vec::with_capacity(partition_columns.len());
    for name in partition_columns {
        let column = batch.column_by_name(name)?;
        let strings = column.as_any().downcast_ref::<StringArray>()?;
        if strings.is_empty() || strings.null_count() > 0 {
            return None;
        }
        let first = strings.value(0);
        if strings.iter().any(|v| v != Some(first)) {
            return None;
        }
        values.push(DeltaTablePartition::try_from(format!("{name}={first}").as_str()).ok()?);
    }
    Some(values)
}

fn is_concurrent_transaction(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(
                deltalake_core::kernel::transaction::CommitConflictError::ConcurrentTransaction
            )
        }
    )
}

/// Opens a table, or creates it when absent (a creator that loses the race to another
/// one opens the winner's table).
async fn open_or_create(lake: &Lake, spec: &TableSpec) -> Result<DeltaTable> {
    let name = spec.name;
    if let Some(t) = super::open_table(lake, name).await? {
        return Ok(t);
    }
    if let Some(root) = lake.local_root() {
        // delta-rs creates a local table in an existing directory only.
        std::fs::create_dir_all(root.join(name))?;
    }
    let schema: StructType = spec
        .table_schema()
        .as_ref()
        .try_into_kernel()
        .map_err(|e| Error::Invalid(format!("schema of table `{name}`: {e}")))?;
    let mut create = super::unloaded(lake, name)?
        .create()
        .with_table_name(name)
        .with_columns(schema.fields().cloned())
        .with_partition_columns(spec.partition_columns.iter().map(|c| c.to_string()))
        .with_save_mode(SaveMode::Ignore);
    for (p, v) in properties() {
        create = create.with_configuration_property(p, Some(v));
    }
    match create.await {
        Ok(t) => Ok(t),
        Err(first) => match super::open_table(lake, name).await? {
            Some(t) => Ok(t),
            None => Err(Error::delta(name, first)),
        },
    }
}
