//! Reading tables: a DataFusion provider of a table's latest version with partition
//! pruning.

use std::sync::Arc;

use deltalake_core::datafusion::catalog::TableProvider;

use crate::error::{Error, Result};
use crate::store::Lake;

/// A DataFusion table of the latest version of `name`, or `None` when the lake has no
/// such table. Filters on partition columns (`date`, `hour`) prune files before any is
/// opened; other filters use the per-file statistics.
pub async fn table_provider(lake: &Lake, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
    let Some(table) = super::open_table(lake, name).await? else {
        return Ok(None);
    };
    let provider = table
        .table_provider()
        .await
        .map_err(|e| Error::delta(name, e.into()))?;
    Ok(Some(provider))
}
