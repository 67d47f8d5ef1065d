//! The stream tables: name, Arrow schema of the data and partition columns.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::columnar::{anomaly_schema, rollup_schema, sample_schema};
use crate::error::Result;

/// What a table holds and how it is partitioned.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Table name: its directory under the lake root.
    pub name: &'static str,
    /// Schema of the rows, without the partition columns.
    pub data_schema: fn() -> SchemaRef,
    /// Partition columns (strings, in path order).
    pub partition_columns: &'static [&'static str],
}

/// Raw samples, partitioned by UTC `date` and `hour`.
pub const SAMPLES: TableSpec = TableSpec {
    name: crate::layout::SAMPLES_TABLE,
    data_schema: sample_schema,
    partition_columns: &["date", "hour"],
};

/// Anomaly events, partitioned by UTC `date`.
pub const ANOMALIES: TableSpec = TableSpec {
    name: crate::layout::ANOMALIES_TABLE,
    data_schema: anomaly_schema,
    partition_columns: &["date"],
};

/// One-minute rollups, partitioned by UTC `date` of the window start.
pub const ROLLUPS: TableSpec = TableSpec {
    name: crate::layout::ROLLUPS_TABLE,
    data_schema: rollup_schema,
    partition_columns: &["date"],
};

impl TableSpec {
    /// The table schema: the data columns, then the partition columns (strings).
    pub fn table_schema(&self) -> SchemaRef {
        let data = (self.data_schema)();
        let mut fields: Vec<Field> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
        for p in self.partition_columns {
            fields.push(Field::new(*p, DataType::Utf8, false));
        }
        Arc::new(Schema::new(fields))
    }

    /// `batch` (data columns only) with the partition columns appended, every row in the
    /// partition `values` (one value per partition column, e.g. `["2025-03-14", "08"]`).
    pub fn with_partition(&self, batch: &RecordBatch, values: &[&str]) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for v in values {
            columns.push(Arc::new(StringArray::from(vec![*v; rows])));
        }
        Ok(RecordBatch::try_new(self.table_schema(), columns)?)
    }
}

/// The partition values of a UTC event time for a table: `["YYYY-MM-DD", "HH"]` for
/// samples, `["YYYY-MM-DD"]` for the others.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use gpustream_lake::delta::{SAMPLES, ANOMALIES};
/// let t = Utc.with_ymd_and_hms(2025, 3, 14, 8, 5, 0).unwrap();
/// assert_eq!(gpustream_lake::delta::partition_values(&SAMPLES, t), vec!["2025-03-14", "08"]);
/// assert_eq!(gpustream_lake::delta::partition_values(&ANOMALIES, t), vec!["2025-03-14"]);
/// ```
pub fn partition_values(spec: &TableSpec, t: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    spec.partition_columns
        .iter()
        .map(|c| match *c {
            "hour" => t.format("%H").to_string(),
            _ => t.format("%Y-%m-%d").to_string(),
        })
        .collect()
}
