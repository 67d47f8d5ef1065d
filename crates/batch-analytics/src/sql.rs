//! Ad-hoc, read-only SQL over the lake's tables.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;
use datafusion::execution::context::SQLOptions;

use crate::error::{Error, Result};
use crate::tables::LakeSession;

/// The result of a query.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Result schema (also known when there are no rows).
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    /// Number of result rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The result as an ASCII table with a header, even when it has no rows.
    pub fn pretty(&self) -> Result<String> {
        render(self.schema.clone(), &self.batches)
    }

    /// Writes the result as CSV with a header line (for scripts: no table borders,
    /// no row-count line). A result without rows writes just the header.
    pub fn write_csv(&self, out: &mut dyn Write) -> Result<()> {
        let mut writer = WriterBuilder::new().with_header(true).build(out);
        if self.batches.is_empty() {
            writer.write(&RecordBatch::new_empty(self.schema.clone()))?;
        }
        for batch in &self.batches {
            writer.write(batch)?;
        }
        Ok(())
    }
}

/// Formats batches as an ASCII table with a header.
pub fn render(schema: SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    Ok(pretty_format_batches_with_schema(schema, batches)?.to_string())
}

/// Runs one SQL statement over the session's tables and collects the result.
///
/// Only queries are allowed (`SELECT`, `WITH`, `EXPLAIN`, `SHOW ...`): DDL and DML
/// such as `INSERT INTO samples` or `COPY ... TO` are rejected, because the lake is
/// written by the stream processor and by `daily` only. Errors name the tables the
/// lake has, so an unknown or not-yet-written table is obvious.
pub async fn run_sql(session: &LakeSession, sql: &str) -> Result<QueryOutput> {
    let query_err = |source| Error::Query {
        source,
        tables: session.table_list(),
    };
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = session
        .ctx
        .sql_with_options(sql, options)
        .await
        .map_err(query_err)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(query_err)?;
    Ok(QueryOutput { schema, batches })
}
