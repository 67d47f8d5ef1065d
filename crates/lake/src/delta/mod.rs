//! The lake's tables as Delta Lake tables.
//!
//! Every table (`samples`, `anomalies`, `rollups_1m`, and the nightly outputs under
//! `analytics/`) is a Delta table: a `_delta_log/` of JSON commits (and Parquet
//! checkpoints) beside the Parquet data files. A reader sees exactly the files of one
//! committed version, so files appear all at once, compaction can replace many small
//! files with a few large ones under a reader's feet, and a whole date of a nightly
//! output is replaced in one commit.
//!
//! Exactly-once from Kafka: every commit of the stream processor carries, per Kafka
//! partition it covers, a `txn` action (`appId` = [`app_id`], `version` = the last
//! offset included). The table log itself is the record of what is in the table: a
//! restart reads the version and resumes after it, and a commit retried after a lost
//! acknowledgement, or racing another instance, is detected by that version (see
//! [`TableWriter`]).
//!
//! Commits are created with a create-if-absent put of `_delta_log/<version>.json`: the
//! local file system and HDFS provide it, and S3 does with conditional writes
//! (`If-None-Match`, on AWS since 2024 and on moto/MinIO), so no lock service is needed.

mod convert;
mod maintain;
mod read;
mod tables;
mod writer;

use std::sync::{Arc, Once};

use deltalake_core::DeltaTable;
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use url::Url;

pub use convert::{ConversionReport, convert_lake, convert_table};
pub use maintain::{
    CompactionReport, MaintainOptions, VacuumReport, active_files_in_date, checkpoint, compact,
    files_in_date, vacuum,
};
pub use read::table_provider;
pub use tables::{ANOMALIES, ROLLUPS, SAMPLES, TableSpec, partition_values};
pub use writer::{CommitReport, TableWriter, app_id};

pub use deltalake_core;

use crate::error::{Error, Result};
use crate::store::Lake;

/// Lets delta-rs reach `s3://` and `hdfs://` tables through the object stores this crate
/// builds (delta-rs' own S3 support would bring the whole AWS SDK); `file://` is built in.
struct PlainLogStores;

impl LogStoreFactory for PlainLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3", "s3a", "hdfs", "viewfs"] {
            if let Ok(url) = Url::parse(&format!("{scheme}://")) {
                logstore_factories().insert(url, Arc::new(PlainLogStores));
            }
        }
    });
}

/// The table `name` of `lake` as delta-rs sees it (not loaded).
pub(crate) fn unloaded(lake: &Lake, name: &str) -> Result<DeltaTable> {
    register_log_stores();
    let url = lake.delta_url(name)?;
    deltalake_core::DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| Error::delta(name, e))?
        .with_storage_backend(lake.root_store().clone(), url)
        .build()
        .map_err(|e| Error::delta(name, e))
}

/// Opens table `name` of `lake` at its latest version; `Ok(None)` when it does not exist.
pub async fn open_table(lake: &Lake, name: &str) -> Result<Option<DeltaTable>> {
    if let Some(root) = lake.local_root()
        && !root.join(name).is_dir()
    {
        return Ok(None);
    }
    let mut table = unloaded(lake, name)?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(deltalake_core::DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(Error::delta(name, e)),
    }
}
