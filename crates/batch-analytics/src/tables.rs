//! Registers the lake's tables with DataFusion as Hive-partitioned listing tables.
//!
//! Every table is a directory `LAKE/<location>/date=YYYY-MM-DD/[...]/<file>.parquet`.
//! It is registered as a [`ListingTable`] with the partition column `date` (`Utf8`,
//! taken from the path, not from the files), so `WHERE date = '2024-01-02'` lists and
//! reads only that partition's directory.
//!
//! Which tables are registered:
//!
//! | table        | location                 | schema                                     |
//! |--------------|--------------------------|--------------------------------------------|
//! | `samples`    | `samples/`               | [`gpustream_lake::columnar::sample_schema`]     |
//! | `anomalies`  | `anomalies/`             | [`gpustream_lake::columnar::anomaly_schema`]    |
//! | `rollups_1m` | `rollups_1m/`            | inferred from the files                    |
//! | `<name>`     | `analytics/<name>/`      | inferred from the files                    |
//!
//! A table is registered only when its directory holds at least one partitioned
//! `.parquet` file: a fresh lake, or one the stream processor has not yet written a
//! given table to, registers fewer tables instead of failing.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;
use gpustream_lake::{ANALYTICS_PREFIX, ANOMALIES_TABLE, Lake, ROLLUPS_TABLE, SAMPLES_TABLE};
use object_store::path::Path;

use crate::error::{Error, Result};

/// Name of the partition column every lake table has.
pub const DATE_COLUMN: &str = "date";

/// Extension of lake data files. Anything else in a table directory (for example the
/// `file#N` staging files a local put leaves while it is in flight) is ignored.
pub const PARQUET_EXTENSION: &str = ".parquet";

/// How partition columns below `date` are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PartitionDiscovery {
    /// Register only `date`. Registration lists each table only until its first data
    /// file, so it costs the same on any lake size. Files in deeper sub-partitions
    /// (`date=D/hour=HH/f.parquet`) are still read: their extra keys are just not
    /// exposed as columns.
    #[default]
    DateOnly,
    /// List every file and also register the sub-partition keys that *every* file
    /// has, in path order (e.g. `hour`), as `Utf8` columns. A key that only some files
    /// have (a layout change midway through the lake's life) is not registered,
    /// because DataFusion skips files whose path lacks a registered key, which would
    /// silently drop the older data. Costs one full listing per table.
    Infer,
}

/// Options of [`register_lake`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegisterOptions {
    /// How partition columns are found.
    pub partitions: PartitionDiscovery,
}

/// A lake table registered with DataFusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredTable {
    /// SQL name of the table, e.g. `samples` or `daily_gpu`.
    pub name: String,
    /// Directory relative to the lake root, e.g. `analytics/daily_gpu`.
    pub location: String,
    /// URL of the directory as DataFusion reads it.
    pub url: String,
    /// Partition columns (always starting with `date`), in path order.
    pub partition_columns: Vec<String>,
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
    /// Opens a session: a new context over `lake` with every existing table registered.
    pub async fn open(lake: Lake, options: RegisterOptions) -> Result<LakeSession> {
        let ctx = new_context(&lake);
        let tables = register_lake(&ctx, &lake, options).await?;
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
            format!(
                "none yet (no .parquet files under {})",
                self.lake.root_url()
            )
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
/// the `sql` command. For an `s3://` lake the lake's store is registered for its
/// bucket; a local lake is read through DataFusion's built-in `file://` store, because
/// the lake's own store is rooted at the lake directory while DataFusion addresses
/// files by absolute path.
pub fn new_context(lake: &Lake) -> SessionContext {
    let config = SessionConfig::new().with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    if lake.root_url().scheme() != "file" {
        ctx.register_object_store(&lake.store_url(), lake.store().clone());
    }
    ctx
}

/// Registers every lake table that exists; returns what was registered.
///
/// Tables whose directory is missing or holds no partitioned `.parquet` file are
/// skipped (logged at debug level), so this never fails on a fresh lake.
pub async fn register_lake(
    ctx: &SessionContext,
    lake: &Lake,
    options: RegisterOptions,
) -> Result<Vec<RegisteredTable>> {
    // (name, location, known schema). The two tables with a schema in the shared crate
    // use it instead of inferring one: files written before a metric was added lack its
    // column and read as NULL, and no footer has to be fetched to register the table.
    let mut candidates: Vec<(String, String, Option<SchemaRef>)> = vec![
        (
            SAMPLES_TABLE.into(),
            SAMPLES_TABLE.into(),
            Some(gpustream_lake::columnar::sample_schema()),
        ),
        (
            ANOMALIES_TABLE.into(),
            ANOMALIES_TABLE.into(),
            Some(gpustream_lake::columnar::anomaly_schema()),
        ),
        (ROLLUPS_TABLE.into(), ROLLUPS_TABLE.into(), None),
    ];
    for name in analytics_table_names(lake).await? {
        if candidates.iter().any(|(n, _, _)| *n == name) {
            tracing::warn!(
                table = %name,
                "skipping {ANALYTICS_PREFIX}/{name}: its name clashes with a lake table"
            );
            continue;
        }
        let location = format!("{ANALYTICS_PREFIX}/{name}");
        candidates.push((name, location, None));
    }

    let mut registered = Vec::new();
    for (name, location, schema) in candidates {
        let Some(partition_columns) = probe_table(lake, &location, options.partitions).await?
        else {
            tracing::debug!(table = %name, "no data files: table not registered");
            continue;
        };
        let table = register_table(ctx, lake, &name, &location, schema, partition_columns).await?;
        tracing::debug!(table = %table.name, url = %table.url, partitions = ?table.partition_columns, "registered");
        registered.push(table);
    }
    Ok(registered)
}

/// Names of the `analytics/<name>/` directories.
///
/// Names that cannot be tables are skipped: partition directories put directly under
/// `analytics/` (`date=...`) and hidden or scratch directories (`.x`, `_x`).
async fn analytics_table_names(lake: &Lake) -> Result<Vec<String>> {
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

/// Checks a table directory for data files and works out its partition columns.
///
/// Returns `None` when no `.parquet` file sits under a `date=` directory: DataFusion
/// would read nothing, and inferring a schema from nothing fails.
async fn probe_table(
    lake: &Lake,
    location: &str,
    discovery: PartitionDiscovery,
) -> Result<Option<Vec<String>>> {
    let prefix = lake.path(location);
    let mut files = lake.store().list(Some(&prefix));
    // Longest run of partition keys shared by every file seen so far.
    let mut common: Option<Vec<String>> = None;
    let mut outside = 0usize;
    loop {
        let meta = match files.try_next().await {
            Ok(Some(meta)) => meta,
            Ok(None) => break,
            Err(object_store::Error::NotFound { .. }) => break,
            Err(e) => {
                return Err(Error::store(format!(
                    "listing {}",
                    lake.table_url(location)
                ))(e));
            }
        };
        if !meta.location.as_ref().ends_with(PARQUET_EXTENSION) {
            continue;
        }
        let keys = partition_keys(&meta.location, &prefix);
        if keys.first().map(String::as_str) != Some(DATE_COLUMN) {
            // DataFusion ignores files outside the partition layout; say so, since
            // they are usually a writer bug.
            outside += 1;
            continue;
        }
        common = Some(match common {
            None => keys,
            Some(mut c) => {
                let shared = c.iter().zip(&keys).take_while(|(a, b)| a == b).count();
                c.truncate(shared);
                c
            }
        });
        if discovery == PartitionDiscovery::DateOnly {
            break;
        }
    }
    if outside > 0 {
        tracing::warn!(
            table = %location,
            files = outside,
            "ignoring .parquet files that are not under a date=YYYY-MM-DD directory"
        );
    }
    Ok(common.map(|mut keys| {
        if discovery == PartitionDiscovery::DateOnly {
            keys.truncate(1);
        }
        keys
    }))
}

/// The `key` of each leading `key=value` directory of `file` below `table`.
///
/// Stops at the first directory that is not `key=value`, like DataFusion's own
/// partition parsing does.
fn partition_keys(file: &Path, table: &Path) -> Vec<String> {
    let Some(parts) = file.prefix_match(table) else {
        return Vec::new();
    };
    let parts: Vec<_> = parts.collect();
    // The last part is the file name.
    let dirs = parts.len().saturating_sub(1);
    parts
        .iter()
        .take(dirs)
        .map_while(|p| p.as_ref().split_once('=').map(|(k, _)| k.to_string()))
        .collect()
}

async fn register_table(
    ctx: &SessionContext,
    lake: &Lake,
    name: &str,
    location: &str,
    known_schema: Option<SchemaRef>,
    mut partition_columns: Vec<String>,
) -> Result<RegisteredTable> {
    let url_text = lake.table_url(location);
    let err = |source: DataFusionError| Error::Register {
        table: name.to_string(),
        url: url_text.clone(),
        source,
    };
    let url = ListingTableUrl::parse(&url_text).map_err(err)?;
    let state = ctx.state();
    // The session's Parquet options (view types, pushdown, ...) apply to lake tables too.
    let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
    let base = ListingOptions::new(Arc::new(format)).with_file_extension(PARQUET_EXTENSION);
    let schema = match known_schema {
        Some(s) => s,
        None => base.infer_schema(&state, &url).await.map_err(err)?,
    };
    // A writer that also stored a partition key inside the files would give the table
    // two columns of one name, and every query would fail to plan. Keep the file's
    // column, drop the partition column (and any deeper one, as keys must stay a
    // prefix of the path).
    if let Some(clash) = partition_columns
        .iter()
        .position(|c| schema.field_with_name(c).is_ok())
    {
        tracing::warn!(
            table = %name,
            column = %partition_columns[clash],
            "files contain a column named like a partition key: not registering it as a partition column"
        );
        partition_columns.truncate(clash);
    }
    let options = base.with_table_partition_cols(
        partition_columns
            .iter()
            .map(|c| (c.clone(), DataType::Utf8))
            .collect(),
    );
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(err)?;
    // `bare`: a name like `a.b` must not be parsed as schema `a`, table `b`.
    ctx.register_table(TableReference::bare(name), Arc::new(table))
        .map_err(err)?;
    Ok(RegisteredTable {
        name: name.to_string(),
        location: location.to_string(),
        url: url_text,
        partition_columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_follow_the_path() {
        let table = Path::from("lake/samples");
        let keys = |f: &str| partition_keys(&Path::from(f), &table);
        assert_eq!(keys("lake/samples/date=2024-01-02/a.parquet"), vec!["date"]);
        assert_eq!(
            keys("lake/samples/date=2024-01-02/hour=05/a.parquet"),
            vec!["date", "hour"]
        );
        // A non key=value directory ends the partition keys, as in DataFusion.
        assert_eq!(
            keys("lake/samples/date=2024-01-02/tmp/hour=05/a.parquet"),
            vec!["date"]
        );
        assert!(keys("lake/samples/a.parquet").is_empty());
        assert!(keys("other/samples/date=x/a.parquet").is_empty());
    }
}
