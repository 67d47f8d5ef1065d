//! Per-partition publish progress, kept in the lake beside the data it describes.
//!
//! Deterministic file names alone do not make a restart exactly-once: flushes are cut
//! by row count *and* by age, so after a crash the same offsets could be cut into a
//! different range, and a second file would overlap the first. Before publishing a
//! range, the processor records it here as *pending*; after the files are published it
//! records the range as done. On restart:
//!
//! - offsets up to `published_through` are already in the lake: they are replayed into
//!   the detector and window state (so both are rebuilt) but not written again;
//! - a pending range is re-cut at exactly its recorded end, so it is rewritten under the
//!   same names, and files published before the crash are found already present.
//!
//! Kafka offsets are committed after the progress record, so the committed offset is at
//! most `published_through + 1`: it is where replay starts, not the source of truth.

use gpustream_lake::Lake;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the lake holds of one topic partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionProgress {
    /// Last offset whose outputs are all published.
    pub published_through: Option<i64>,
    /// Range being published when the record was written (`[first, last]`).
    pub pending: Option<(i64, i64)>,
}

impl PartitionProgress {
    /// Whether the message at `offset` is already in the lake.
    pub fn is_published(&self, offset: i64) -> bool {
        self.published_through.is_some_and(|p| offset <= p)
    }

    /// The offset a flush must end at, while a pending range is being redone.
    pub fn pinned_end(&self) -> Option<i64> {
        self.pending.map(|(_, last)| last)
    }
}

/// Reads and writes progress records under `_progress/<topic>/<partition>.json`.
#[derive(Clone)]
pub struct ProgressStore {
    lake: Lake,
    topic: String,
}

impl ProgressStore {
    /// Progress of `topic` in `lake`.
    pub fn new(lake: Lake, topic: &str) -> Self {
        ProgressStore {
            lake,
            topic: topic.to_string(),
        }
    }

    fn path(&self, partition: i32) -> String {
        format!("_progress/{}/{partition}.json", self.topic)
    }

    /// The record of a partition (empty when the lake has never seen it).
    pub async fn load(&self, partition: i32) -> Result<PartitionProgress> {
        match self
            .lake
            .store()
            .get(&self.lake.path(&self.path(partition)))
            .await
        {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(gpustream_lake::Error::from)?;
                serde_json::from_slice(&bytes).map_err(|source| Error::Progress {
                    path: self.path(partition),
                    source,
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(PartitionProgress::default()),
            Err(e) => Err(gpustream_lake::Error::from(e).into()),
        }
    }

    /// Replaces a partition's record (one atomic put).
    pub async fn store(&self, partition: i32, progress: &PartitionProgress) -> Result<()> {
        let body = serde_json::to_vec(progress)?;
        self.lake
            .store()
            .put(
                &self.lake.path(&self.path(partition)),
                PutPayload::from(body),
            )
            .await
            .map_err(gpustream_lake::Error::from)?;
        Ok(())
    }
}
