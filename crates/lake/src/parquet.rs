//! Parquet encoding of the lake's files: LZ4 for the stream's appends, zstd for files
//! meant to stay (compaction, nightly tables); row groups sized for scans.

use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};

/// Columns that hold a different value in (almost) every row: a dictionary never pays
/// off there, and building one costs a hash of every value until the encoder gives up.
const UNIQUE_COLUMNS: [&str; 4] = ["event_id", "seq", "sample_event_id", "anomaly_id"];

fn properties(compression: Compression) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(128 * 1024));
    for column in UNIQUE_COLUMNS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    builder.build()
}

/// Writer settings for lake files meant to stay: zstd, row groups sized for scans. Used
/// by compaction, which rewrites the stream's files of closed days with them, and by
/// the nightly job's tables.
pub fn writer_properties() -> WriterProperties {
    properties(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
}

/// Writer settings of the stream's appends ([`crate::delta::TableWriter::append`]): LZ4
/// (raw) instead of zstd. Parquet makes a codec for every column chunk, and a zstd codec
/// allocates a compression and a decompression context each time; a flush writes ~280
/// column chunks (the rollups table alone has 199 columns), and that setup was a fifth of
/// the processor's CPU while catching up (BENCHMARKS.md, "Writer setup and the loop's timers"). LZ4 keeps
/// no state. The files are larger until compaction rewrites them with
/// [`writer_properties`].
pub fn stream_writer_properties() -> WriterProperties {
    properties(Compression::LZ4_RAW)
}

/// Encodes record batches as one Parquet file in memory, with [`writer_properties`].
pub fn encode_parquet(batches: &[RecordBatch]) -> Result<Bytes> {
    encode_parquet_with(batches, writer_properties())
}

/// Encodes record batches as one Parquet file in memory, with `properties`.
pub fn encode_parquet_with(batches: &[RecordBatch], properties: WriterProperties) -> Result<Bytes> {
    let Some(first) = batches.first() else {
        return Err(Error::Invalid("no batches to encode".into()));
    };
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, first.schema(), Some(properties))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(Bytes::from(buf))
}
