//! Writes one flush of one Kafka partition to the lake.
//!
//! File names are deterministic: `<topic>-<partition>-<first offset>-<last offset>.parquet`
//! inside each table's `date=YYYY-MM-DD/hour=HH/` partition (UTC event time). Files are published whole and only once
//! (see [`Lake::publish`]), and the Kafka offsets are committed only afterwards, so a
//! restart re-reads the same offsets and rewrites the same names.

use std::collections::BTreeMap;

use gpustream::rollup::Rollup;
use gpustream::{AnomalyEvent, Sample};
use gpustream_lake::columnar::{SampleBatchBuilder, anomalies_to_batch, rollups_to_batch};
use gpustream_lake::{
    ANOMALIES_TABLE, Lake, Published, ROLLUPS_TABLE, SAMPLES_TABLE, encode_parquet, event_partition,
};

use crate::error::Result;

/// What one flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Files newly created.
    pub files: u64,
    /// Files that were already there (replay after a crash).
    pub already_present: u64,
    /// Bytes of newly created files.
    pub bytes: u64,
    /// Sample rows in newly created files.
    pub rows: u64,
}

/// Base file name for an offset range of a topic partition.
///
/// ```
/// assert_eq!(
///     stream_processor::lake_writer::file_name("gpu-samples", 3, 100, 199),
///     "gpu-samples-3-00000000000000000100-00000000000000000199.parquet"
/// );
/// ```
pub fn file_name(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!("{topic}-{partition}-{first:020}-{last:020}.parquet")
}

async fn put(
    lake: &Lake,
    path: &str,
    bytes: bytes::Bytes,
    rows: u64,
    stats: &mut WriteStats,
) -> Result<()> {
    let len = bytes.len() as u64;
    match lake.publish(path, bytes).await? {
        Published::Created => {
            stats.files += 1;
            stats.bytes += len;
            stats.rows += rows;
        }
        Published::AlreadyPresent => stats.already_present += 1,
    }
    Ok(())
}

/// The Kafka offset range a flush covers.
#[derive(Debug, Clone, Copy)]
pub struct Range<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// Rollups closed without a new message (idle GPU, shutdown).
    pub closing: bool,
}

/// Sample rows of one offset range, buffered as Arrow columns per UTC hour partition.
///
/// Columns hold a sample in a fraction of the memory of a [`Sample`] (whose metric
/// slots alone are ~1 KB), which is what keeps the processor's memory bounded.
#[derive(Default)]
pub struct SampleRows {
    // Keyed by the hour number: formatting a partition name per sample cost more than
    // building its row.
    by_hour: BTreeMap<i64, (String, SampleBatchBuilder)>,
    rows: usize,
}

impl SampleRows {
    /// Appends a sample to its hour's columns.
    pub fn push(&mut self, s: &Sample) {
        self.by_hour
            .entry(s.event_time.timestamp().div_euclid(3600))
            .or_insert_with(|| (event_partition(s.event_time), SampleBatchBuilder::default()))
            .1
            .push(s);
        self.rows += 1;
    }

    /// Rows buffered.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Encodes one zstd Parquet file per hour partition: `(partition directory, rows,
    /// file bytes)`, in partition order. The buffer is left empty.
    pub fn encode(&mut self) -> Result<Vec<(String, u64, bytes::Bytes)>> {
        let mut out = Vec::with_capacity(self.by_hour.len());
        for (_, (partition, mut builder)) in std::mem::take(&mut self.by_hour) {
            let rows = builder.len() as u64;
            out.push((partition, rows, encode_parquet(&[builder.finish()?])?));
        }
        self.rows = 0;
        Ok(out)
    }
}

/// Encodes samples as one zstd Parquet file per UTC hour partition (see
/// [`SampleRows::encode`]).
pub fn encode_samples(samples: &[Sample]) -> Result<Vec<(String, u64, bytes::Bytes)>> {
    let mut rows = SampleRows::default();
    for s in samples {
        rows.push(s);
    }
    rows.encode()
}

/// Writes samples, anomalies and rollups of one partition's offset range `[first, last]`.
pub async fn write_range(
    lake: &Lake,
    range: &Range<'_>,
    samples: &[Sample],
    anomalies: &[AnomalyEvent],
    rollups: &[Rollup],
) -> Result<WriteStats> {
    write_encoded_range(lake, range, &encode_samples(samples)?, anomalies, rollups).await
}

/// [`write_range`] with the sample files already encoded (by [`SampleRows::encode`]), so
/// a retried flush publishes the very same bytes.
pub async fn write_encoded_range(
    lake: &Lake,
    range: &Range<'_>,
    sample_files: &[(String, u64, bytes::Bytes)],
    anomalies: &[AnomalyEvent],
    rollups: &[Rollup],
) -> Result<WriteStats> {
    let name = file_name(range.topic, range.partition, range.first, range.last);
    let mut stats = WriteStats::default();

    for (date, rows, bytes) in sample_files {
        put(
            lake,
            &format!("{SAMPLES_TABLE}/{date}/{name}"),
            bytes.clone(),
            *rows,
            &mut stats,
        )
        .await?;
    }

    let mut anomalies_by_date: BTreeMap<String, Vec<&AnomalyEvent>> = BTreeMap::new();
    for a in anomalies {
        anomalies_by_date
            .entry(event_partition(a.event_time))
            .or_default()
            .push(a);
    }
    for (date, events) in anomalies_by_date {
        let bytes = encode_parquet(&[anomalies_to_batch(events.iter().copied())?])?;
        // Anomaly rows are not sample rows: count the file, not the rows.
        put(
            lake,
            &format!("{ANOMALIES_TABLE}/{date}/{name}"),
            bytes,
            0,
            &mut stats,
        )
        .await?;
    }

    let mut rollups_by_date: BTreeMap<String, Vec<&Rollup>> = BTreeMap::new();
    for r in rollups {
        rollups_by_date
            .entry(event_partition(r.window_start))
            .or_default()
            .push(r);
    }
    for (date, windows) in rollups_by_date {
        let file = if range.closing {
            // Several GPUs can go idle at the same last offset: name the file after its windows.
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            for w in &windows {
                h.update(w.host.as_bytes());
                h.update(&[0x1f]);
                h.update(w.gpu.as_bytes());
                h.update(&w.window_start.timestamp_micros().to_le_bytes());
            }
            name.replace(".parquet", &format!("-closed-{:016x}.parquet", h.digest()))
        } else {
            name.clone()
        };
        let bytes = encode_parquet(&[rollups_to_batch(windows.iter().copied())?])?;
        put(
            lake,
            &format!("{ROLLUPS_TABLE}/{date}/{file}"),
            bytes,
            0,
            &mut stats,
        )
        .await?;
    }
    Ok(stats)
}
