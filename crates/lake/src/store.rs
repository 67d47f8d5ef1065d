//! Where a lake lives (local directory, `file://`, `s3://`, and `hdfs://` with the `hdfs`
//! feature) and how files are published atomically.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use url::Url;

use crate::error::{Error, Result};

/// A lake root: an object store plus the path of the root inside it.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// URL of the root as query engines address it (`file:///abs/dir/`, `s3://bucket/prefix/`).
    root_url: Url,
    /// The directory, for a local lake: publishing there bypasses object_store, whose
    /// staging files would sit beside the target where readers list.
    local_root: Option<std::path::PathBuf>,
    /// The store at the root of the bucket or file system (what Delta Lake addresses
    /// tables in, by their full URL).
    root_store: Arc<dyn ObjectStore>,
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
    /// `hdfs://namenode:port/path` (or `viewfs://`) needs the `hdfs` feature; the client
    /// reads `HADOOP_CONF_DIR` for name-service and Kerberos settings. Publishing there
    /// is create-only: the file is written under a hidden `.<name>.tmp.N` beside the
    /// target (readers skip hidden files) and renamed without overwrite.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let lake = gpustream_lake::Lake::open(dir.path().to_str().unwrap()).unwrap();
    /// assert!(lake.table_url("samples").starts_with("file:///"));
    /// ```
    pub fn open(location: &str) -> Result<Lake> {
        Lake::open_with_options(location, &[])
    }

    /// Like [`Lake::open`], with S3 settings that take precedence over the `AWS_*`
    /// environment, named as object_store names them (`aws_endpoint`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_region`, `aws_allow_http`, ...):
    /// one process can then reach lakes of different endpoints or accounts. Ignored for
    /// other schemes.
    ///
    /// ```
    /// let lake = gpustream_lake::Lake::open_with_options(
    ///     "s3://bucket/lake",
    ///     &[("aws_endpoint", "http://127.0.0.1:9000"), ("aws_allow_http", "true")],
    /// )
    /// .unwrap();
    /// assert_eq!(lake.root_url().as_str(), "s3://bucket/lake/");
    /// assert!(gpustream_lake::Lake::open_with_options("s3://b/l", &[("no_such", "x")]).is_err());
    /// ```
    pub fn open_with_options(location: &str, s3_options: &[(&str, &str)]) -> Result<Lake> {
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
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (key, value) in s3_options {
                let key = key
                    .parse()
                    .map_err(|_| bad(&format!("unknown S3 option `{key}`")))?;
                builder = builder.with_config(key, *value);
            }
            let store = builder.build()?;
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
            let store: Arc<dyn ObjectStore> = Arc::new(store);
            return Ok(Lake {
                root_store: store.clone(),
                store,
                root: Path::from(prefix),
                root_url,
                local_root: None,
            });
        }
        if location.starts_with("hdfs://") || location.starts_with("viewfs://") {
            #[cfg(feature = "hdfs")]
            return hdfs::open(location).map_err(|reason| bad(&reason));
            #[cfg(not(feature = "hdfs"))]
            return Err(bad(
                "hdfs:// lakes need a build with the `hdfs` feature (cargo build --features stream-processor/hdfs)",
            ));
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(bad(
                "unsupported scheme (use a local path, file://, s3:// or hdfs://)",
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
            local_root: Some(abs),
            root_store: Arc::new(object_store::local::LocalFileSystem::new()),
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

    /// URL of a table as Delta Lake addresses it (no trailing `/`).
    pub fn delta_url(&self, table: &str) -> Result<Url> {
        let text = format!("{}{}", self.root_url, table.trim_matches('/'));
        Url::parse(&text).map_err(|e| Error::LakeUrl {
            url: text,
            reason: e.to_string(),
        })
    }

    /// The store at the root of the bucket or file system.
    pub fn root_store(&self) -> &Arc<dyn ObjectStore> {
        &self.root_store
    }

    /// The directory of a local lake.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
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
    /// Readers see either nothing or the complete, durable file. On a local directory the
    /// bytes are written and fsynced under `_tmp/` (outside every table, so a crash never
    /// leaves a partial file where readers look) and hard-linked into place, which fails
    /// if the name exists; on S3 it is one conditional PUT. Publishing a name that exists
    /// leaves the existing file: names are deterministic, so it is the same content
    /// written before a crash.
    pub async fn publish(&self, relative: &str, bytes: Bytes) -> Result<Published> {
        if let Some(root) = self.local_root.clone() {
            let relative = relative.to_string();
            return tokio::task::spawn_blocking(move || {
                local::publish(&root, &relative, &bytes, false)
            })
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        }
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

    /// Replaces a file atomically (outputs that are recomputed, e.g. analytics).
    pub async fn overwrite(&self, relative: &str, bytes: Bytes) -> Result<()> {
        if let Some(root) = self.local_root.clone() {
            let relative = relative.to_string();
            return tokio::task::spawn_blocking(move || {
                local::publish(&root, &relative, &bytes, true).map(|_| ())
            })
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        }
        self.store
            .put_opts(
                &self.path(relative),
                PutPayload::from(bytes),
                PutOptions::default(),
            )
            .await?;
        Ok(())
    }

    /// Removes temporary files a crashed writer left under `_tmp/` more than `min_age` ago.
    pub fn remove_stale_temp_files(&self, min_age: std::time::Duration) -> Result<usize> {
        match &self.local_root {
            Some(root) => local::remove_stale(root, min_age),
            None => Ok(0),
        }
    }
}

/// HDFS lakes through `hdfs-native-object-store` (object_store 0.13).
#[cfg(feature = "hdfs")]
mod hdfs {
    use std::sync::Arc;

    use object_store::path::Path;
    use url::Url;

    use super::Lake;

    /// Opens `hdfs://authority/prefix`: the store addresses the whole file system, the
    /// prefix becomes the lake root inside it.
    pub fn open(location: &str) -> Result<Lake, String> {
        let url = Url::parse(location).map_err(|e| e.to_string())?;
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err("missing name node (hdfs://HOST:PORT/path)".into()),
        };
        let base = format!("{}://{authority}", url.scheme());
        let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new()
            .with_url(&base)
            .build()
            .map_err(|e| format!("cannot reach {base}: {e}"))?;
        let prefix = url.path().trim_matches('/').to_string();
        let root_url = Url::parse(&format!(
            "{base}/{}",
            if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            }
        ))
        .map_err(|e| e.to_string())?;
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(store);
        Ok(Lake {
            root_store: store.clone(),
            store,
            root: Path::from(prefix.as_str()),
            root_url,
            local_root: None,
        })
    }
}

/// Local-directory publishing: write to `_tmp/`, fsync, hard-link (create-only) or
/// rename (replace) into place, fsync the directory.
mod local {
    use std::io::Write;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::Published;
    use crate::error::Result;

    /// Folder of in-flight files, under the lake root and outside every table.
    pub const TEMP_DIR: &str = "_tmp";

    static COUNTER: AtomicU64 = AtomicU64::new(0);

    pub fn publish(root: &Path, relative: &str, bytes: &[u8], replace: bool) -> Result<Published> {
        let target = root.join(relative);
        let dir = target.parent().unwrap_or(root);
        std::fs::create_dir_all(dir)?;
        let temp_dir = root.join(TEMP_DIR);
        std::fs::create_dir_all(&temp_dir)?;
        let temp = temp_dir.join(format!(
            "{}-{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            let outcome = if replace {
                std::fs::rename(&temp, &target)?;
                Published::Created
            } else {
                match std::fs::hard_link(&temp, &target) {
                    Ok(()) => Published::Created,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Published::AlreadyPresent
                    }
                    Err(e) => return Err(e),
                }
            };
            // The new directory entry must survive a power loss before offsets are committed.
            std::fs::File::open(dir)?.sync_all()?;
            Ok(outcome)
        })();
        let _ = std::fs::remove_file(&temp);
        Ok(result?)
    }

    pub fn remove_stale(root: &Path, min_age: std::time::Duration) -> Result<usize> {
        let Ok(entries) = std::fs::read_dir(root.join(TEMP_DIR)) else {
            return Ok(0);
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if old && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
