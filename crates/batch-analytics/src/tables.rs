//! Registers the lake's Delta tables with DataFusion.
//!
//! Every table is a Delta table (`LAKE/<location>/_delta_log/` beside its Parquet
//! files). It is registered with the provider delta-rs builds from the table's latest
//! version, so a query reads exactly the files of one committed version, and filters on
//! the partition columns (`date`, and `hour` for `samples`) skip files before any is
//! opened. The partition columns are whatever the table's metadata says (a lake
//! converted from the previous layout keeps `date`/`hour` on every stream table).
//!
//! Which tables are registered:
//!
//! | table        | location            |
//! |--------------|---------------------|
//! | `samples`    | `samples/`          |
//! | `anomalies`  | `anomalies/`        |
//! | `rollups_1m` | `rollups_1m/`       |
//! | `<name>`     | `analytics/<name>/` |
//!
//! A table is registered only when it is a Delta table: a fresh lake, or one the stream
//! processor has not yet written a given table to, registers fewer tables instead of
//! failing. A lake of the previous (bare Parquet) layout has no Delta tables until
//! `batch-analytics convert` has run.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use gpustream_lake::delta::deltalake_core::DeltaTable;
use gpustream_lake::{ANALYTICS_PREFIX, ANOMALIES_TABLE, Lake, ROLLUPS_TABLE, SAMPLES_TABLE};

use crate::error::{Error, Result};

/// Name of the partition column every lake table has.
pub const DATE_COLUMN: &str = "date";

/// Name of the hour partition column of `samples` (`HH`, UTC).
pub const HOUR_COLUMN: &str = "hour";

/// A lake table registered with DataFusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredTable {
    /// SQL name of the table, e.g. `samples` or `daily_gpu`.
    pub name: String,
    /// Directory relative to the lake root, e.g. `analytics/daily_gpu`.
    pub location: String,
    /// URL of the table directory.
    pub url: String,
    /// Partition columns, from the table's metadata (e.g. `["date", "hour"]`).
    pub partition_columns: Vec<String>,
    /// The table version the session reads.
    pub version: u64,
}

/// A DataFusion session over one lake, with its tables registered.
pub struct LakeSession {
    /// The DataFusion context: run SQL with [`SessionContext::sql`].
    pub ctx: SessionContext,
    /// The lake the tables come from.
    pub lake: Lake,
    /// The tables that were found and registered, in registration order.
    pub tables: Vec<RegisteredTable>,
}

impl LakeSession {
    /// Opens a session: a new context over `lake` with every existing table registered,
    /// each at its latest version.
    pub async fn open(lake: Lake) -> Result<LakeSession> {
        let ctx = new_context(&lake);
        let tables = register_lake(&ctx, &lake).await?;
        Ok(LakeSession { ctx, lake, tables })
    }

    /// The registered table of that name, if the lake has it.
    pub fn table(&self, name: &str) -> Option<&RegisteredTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The registered table of that name, or [`Error::MissingTable`].
    pub fn require_table(&self, name: &str) -> Result<&RegisteredTable> {
        self.table(name).ok_or_else(|| Error::MissingTable {
            table: name.to_string(),
            lake: self.lake.root_url().to_string(),
        })
    }

    /// Human-readable list of the registered tables, for error messages.
    pub fn table_list(&self) -> String {
        if self.tables.is_empty() {
            format!("none yet (no Delta tables under {})", self.lake.root_url())
        } else {
            self.tables
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// A DataFusion context that can read `lake`.
///
/// `information_schema` is on so `SHOW TABLES` and `SHOW COLUMNS FROM samples` work in
/// the `sql` command. Strings are read as the tables declare them (`Utf8`), not as
/// DataFusion's `Utf8View`, so results have the lake's column types. For an `s3://`
/// (or `hdfs://`) lake the lake's store is registered for its bucket, so every table is
/// read through the one client the lake built from the `AWS_*` settings; delta-rs reads
/// a local lake through its own `file://` store.
pub fn new_context(lake: &Lake) -> SessionContext {
    let config = SessionConfig::new().with_information_schema(true).set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    );
    let ctx = SessionContext::new_with_config(config);
    if lake.root_url().scheme() != "file" {
        ctx.register_object_store(&lake.store_url(), lake.root_store().clone());
    }
    ctx
}

/// The stream tables, in registration order.
pub const STREAM_TABLES: [&str; 3] = [SAMPLES_TABLE, ANOMALIES_TABLE, ROLLUPS_TABLE];

/// Registers every lake table that exists; returns what was registered.
///
/// Directories that are not Delta tables are skipped (logged at debug level), so this
/// never fails on a fresh lake.
pub async fn register_lake(ctx: &SessionContext, lake: &Lake) -> Result<Vec<RegisteredTable>> {
    let mut candidates: Vec<(String, String)> = STREAM_TABLES
        .iter()
        .map(|t| (t.to_string(), t.to_string()))
        .collect();
    for name in analytics_table_names(lake).await? {
        if STREAM_TABLES.contains(&name.as_str()) {
            tracing::warn!(
                table = %name,
                "skipping {ANALYTICS_PREFIX}/{name}: its name clashes with a lake table"
            );
            continue;
        }
        candidates.push((name.clone(), format!("{ANALYTICS_PREFIX}/{name}")));
    }

    let mut registered = Vec::new();
    for (name, location) in candidates {
        let Some(table) = gpustream_lake::delta::open_table(lake, &location).await? else {
            tracing::debug!(table = %name, "not a Delta table: not registered");
            continue;
        };
        let table = register_table(ctx, lake, &name, &location, &table).await?;
        tracing::debug!(
            table = %table.name,
            url = %table.url,
            version = table.version,
            partitions = ?table.partition_columns,
            "registered"
        );
        registered.push(table);
    }
    Ok(registered)
}

/// Names of the `analytics/<name>/` directories that may be tables.
///
/// Names that cannot be tables are skipped: partition directories put directly under
/// `analytics/` (`date=...`) and hidden or scratch directories (`.x`, `_x`, such as the
/// `_reports/` and `_csv/` of the nightly job).
pub async fn analytics_table_names(lake: &Lake) -> Result<Vec<String>> {
    let prefix = lake.path(ANALYTICS_PREFIX);
    let listing = match lake.store().list_with_delimiter(Some(&prefix)).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => {
            let action = format!("listing {}", lake.table_url(ANALYTICS_PREFIX));
            return Err(Error::store(action)(e));
        }
    };
    let mut names = BTreeSet::new();
    for dir in listing.common_prefixes {
        let Some(name) = dir.filename() else { continue };
        if name.contains('=') || name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        names.insert(name.to_string());
    }
    Ok(names.into_iter().collect())
}

/// The partition columns of a loaded table, from its metadata.
pub fn partition_columns(table: &DeltaTable, location: &str) -> Result<Vec<String>> {
    let snapshot = table
        .snapshot()
        .map_err(|e| gpustream_lake::Error::delta(location, e))?;
    Ok(snapshot.metadata().partition_columns().to_vec())
}

/// A DataFusion provider of the version `table` has loaded (no second log replay), read
/// with `ctx`'s settings.
pub async fn provider(
    ctx: &SessionContext,
    table: &DeltaTable,
) -> std::result::Result<Arc<dyn TableProvider>, DataFusionError> {
    table
        .table_provider()
        .with_session(Arc::new(ctx.state()))
        .await
}

async fn register_table(
    ctx: &SessionContext,
    lake: &Lake,
    name: &str,
    location: &str,
    table: &DeltaTable,
) -> Result<RegisteredTable> {
    let url = lake.table_url(location);
    let partition_columns = partition_columns(table, location)?;
    let version = table.version().unwrap_or_default();
    let err = |source| Error::Register {
        table: name.to_string(),
        url: url.clone(),
        source,
    };
    let provider = provider(ctx, table).await.map_err(err)?;
    // `bare`: a name like `a.b` must not be parsed as schema `a`, table `b`.
    ctx.register_table(TableReference::bare(name), provider)
        .map_err(err)?;
    Ok(RegisteredTable {
        name: name.to_string(),
        location: location.to_string(),
        url,
        partition_columns,
        version,
    })
}
