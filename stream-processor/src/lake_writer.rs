//! Writes one flush of one Kafka partition to the lake.
//!
//! File names are deterministic: `<topic>-<partition>-<first offset>-<last offset>.parquet`
//! inside each table's `date=YYYY-MM-DD/hour=HH/` partition (UTC event time). Files are published whole and only once
//! (see [`Lake::publish`]), and the Kafka offsets are committed only afterwards, so a
//! restart re-reads the same offsets and rewrites the same names.

use std::collections::BTreeMap;

use gpustream::columnar::{SampleBatchBuilder, anomalies_to_batch, rollups_to_batch};
use gpustream::lake::{
    ANOMALIES_TABLE, Lake, Published, ROLLUPS_TABLE, SAMPLES_TABLE, encode_parquet, event_partition,
};
use gpustream::rollup::Rollup;
use gpustream::{AnomalyEvent, Sample};

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

/// Writes samples, anomalies and rollups of one partition's offset range `[first, last]`.
pub async fn write_range(
    lake: &Lake,
    range: &Range<'_>,
    samples: &[Sample],
    anomalies: &[AnomalyEvent],
    rollups: &[Rollup],
) -> Result<WriteStats> {
    let name = file_name(range.topic, range.partition, range.first, range.last);
    let mut stats = WriteStats::default();

    let mut by_date: BTreeMap<String, SampleBatchBuilder> = BTreeMap::new();
    for s in samples {
        by_date
            .entry(event_partition(s.event_time))
            .or_default()
            .push(s);
    }
    for (date, mut builder) in by_date {
        let rows = builder.len() as u64;
        let bytes = encode_parquet(&[builder.finish()?])?;
        put(
            lake,
            &format!("{SAMPLES_TABLE}/{date}/{name}"),
            bytes,
            rows,
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
