//! The Parquet lake: where it lives (local directory, `file://`, `s3://`), how tables
//! and partitions are laid out, and how files are published atomically.
//!
//! Layout: `LAKE/<table>/date=YYYY-MM-DD/[hour=HH/]<file>.parquet`, dates in UTC.

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use url::Url;

use crate::error::{Error, Result};

/// Table of raw samples.
pub const SAMPLES_TABLE: &str = "samples";
/// Table of anomaly events.
pub const ANOMALIES_TABLE: &str = "anomalies";
/// Table of 1-minute rollups.
pub const ROLLUPS_TABLE: &str = "rollups_1m";
/// Prefix of batch-analytics output tables (`analytics/<name>`).
pub const ANALYTICS_PREFIX: &str = "analytics";

/// A lake root: an object store plus the path of the root inside it.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// URL of the root as query engines address it (`file:///abs/dir/`, `s3://bucket/prefix/`).
    root_url: Url,
}

/// Outcome of publishing a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The file is new.
    Created,
    /// A file of that name was already there (a replay after a crash): left as it was.
    AlreadyPresent,
}

impl Lake {
    /// Opens a lake from a local path, a `file://` URL or an `s3://bucket/prefix` URL.
    ///
    /// For `s3://` the endpoint and credentials come from the standard `AWS_*`
    /// environment variables (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let lake = gpustream::lake::Lake::open(dir.path().to_str().unwrap()).unwrap();
    /// assert!(lake.table_url("samples").starts_with("file:///"));
    /// ```
    pub fn open(location: &str) -> Result<Lake> {
        let bad = |reason: &str| Error::LakeUrl {
            url: location.to_string(),
            reason: reason.to_string(),
        };
        if location.trim().is_empty() {
            return Err(bad("empty location"));
        }
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("missing bucket name"));
            }
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            let prefix = prefix.trim_matches('/');
            let root_url = Url::parse(&format!(
                "s3://{bucket}/{}",
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                }
            ))
            .map_err(|e| bad(&e.to_string()))?;
            return Ok(Lake {
                store: Arc::new(store),
                root: Path::from(prefix),
                root_url,
            });
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(bad(
                "unsupported scheme (use a local path, file:// or s3://)",
            ));
        }
        let path = match location.strip_prefix("file://") {
            Some(p) => std::path::PathBuf::from(p),
            None => std::path::PathBuf::from(location),
        };
        std::fs::create_dir_all(&path)?;
        let abs = std::fs::canonicalize(&path)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&abs)?;
        let root_url =
            Url::from_directory_path(&abs).map_err(|_| bad("not an absolute directory"))?;
        Ok(Lake {
            store: Arc::new(store),
            root: Path::default(),
            root_url,
        })
    }

    /// The underlying object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// URL of the lake root (always ends with `/`).
    pub fn root_url(&self) -> &Url {
        &self.root_url
    }

    /// `scheme://authority` of the store, for registering it with a query engine.
    pub fn store_url(&self) -> Url {
        let mut u = self.root_url.clone();
        u.set_path("/");
        u
    }

    /// URL of a table's directory, e.g. `file:///lake/samples/`.
    pub fn table_url(&self, table: &str) -> String {
        format!("{}{}/", self.root_url, table.trim_matches('/'))
    }

    /// Path (inside the store) of a file relative to the lake root.
    pub fn path(&self, relative: &str) -> Path {
        let mut p = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// Publishes a whole file atomically and only once.
    ///
    /// Readers see either nothing or the complete file (a local put is staged and renamed,
    /// an S3 put is one request). Publishing a name that exists leaves the existing file:
    /// names are deterministic, so it is the same content written before a crash.
    pub async fn publish(&self, relative: &str, bytes: Bytes) -> Result<Published> {
        let path = self.path(relative);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(Published::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Published::AlreadyPresent),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a file atomically (used for outputs that are recomputed, e.g. analytics).
    pub async fn overwrite(&self, relative: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put_opts(
                &self.path(relative),
                PutPayload::from(bytes),
                PutOptions::default(),
            )
            .await?;
        Ok(())
    }
}

/// `date=YYYY-MM-DD` partition directory for an event time (UTC).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2023, 6, 16, 8, 17, 8).unwrap();
/// assert_eq!(gpustream::lake::date_partition(t), "date=2023-06-16");
/// ```
pub fn date_partition(t: DateTime<Utc>) -> String {
    format!("date={}", t.format("%Y-%m-%d"))
}

/// Writer settings for every lake file: zstd, row groups sized for scans.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .build()
}

/// Encodes record batches as one Parquet file in memory.
pub fn encode_parquet(batches: &[RecordBatch]) -> Result<Bytes> {
    let Some(first) = batches.first() else {
        return Err(Error::Columnar("no batches to encode".into()));
    };
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, first.schema(), Some(writer_properties()))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(Bytes::from(buf))
}
