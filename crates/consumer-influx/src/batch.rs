//! One InfluxDB write: the line protocol of a run of messages, gzip-compressed while it
//! fills, and where each point's line ends (so a refused batch can be split and a
//! refused point traced back to its message).

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::{Error, Result};

/// Where one point's line ends in [`Batch::lines`], and the message it came from.
#[derive(Debug, Clone)]
pub struct PointRef {
    /// End of the line (exclusive) in `lines`.
    pub end: usize,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// Messages accumulated for one write.
#[derive(Default)]
pub struct Batch {
    /// Line protocol of the decodable messages, one line per point.
    pub lines: String,
    /// `lines[..compressed]`, gzip-compressed as the lines arrive, so compression overlaps
    /// the previous batch's write instead of delaying this one's.
    gzip: Option<GzEncoder<Vec<u8>>>,
    compressed: usize,
    /// One per point, in line order.
    pub points: Vec<PointRef>,
}

impl Batch {
    /// Whether the batch holds no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Records that the lines appended since the last point belong to one point from
    /// `topic`/`partition`/`offset`, and compresses them.
    pub fn push_point(&mut self, topic: &str, partition: i32, offset: i64) {
        self.points.push(PointRef {
            end: self.lines.len(),
            topic: topic.to_string(),
            partition,
            offset,
        });
        if let Err(e) = self.compress_new_lines() {
            // In-memory compression does not fail in practice; if it ever does, the
            // write compresses the whole batch again from scratch.
            tracing::warn!(error = %e, "gzip");
            self.gzip = None;
            self.compressed = 0;
        }
    }

    /// Drops lines appended after the last point (a record that failed half-way).
    pub fn truncate_to_points(&mut self) {
        let end = self.points.last().map_or(0, |p| p.end);
        self.lines.truncate(end);
    }

    /// The lines of points `range`.
    pub fn lines_of(&self, range: std::ops::Range<usize>) -> &str {
        let start = match range.start {
            0 => 0,
            i => self.points[i - 1].end,
        };
        let end = match range.end {
            0 => 0,
            i => self.points[i - 1].end,
        };
        &self.lines[start..end]
    }

    fn compress_new_lines(&mut self) -> Result<()> {
        if self.gzip.is_none() {
            // Restart from the first line (a reset after a failure, or the first point).
            self.compressed = 0;
        }
        let gz = self
            .gzip
            .get_or_insert_with(|| GzEncoder::new(Vec::new(), Compression::fast()));
        gz.write_all(&self.lines.as_bytes()[self.compressed..])
            .map_err(Error::Compress)?;
        self.compressed = self.lines.len();
        Ok(())
    }

    /// The gzip body of every line (finishing the compression started while they arrived).
    pub fn gzipped(&mut self) -> Result<Bytes> {
        self.compress_new_lines()?;
        let body = match self.gzip.take() {
            Some(gz) => gz.finish().map_err(Error::Compress)?,
            None => Vec::new(),
        };
        self.compressed = 0;
        Ok(Bytes::from(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn lines_of_points_and_gzip_round_trip() {
        let mut b = Batch::default();
        b.lines.push_str("a x=1 1\n");
        b.push_point("t", 0, 5);
        b.lines.push_str("b x=2 2\n");
        b.push_point("t", 1, 9);
        b.lines.push_str("half");
        b.truncate_to_points();
        assert_eq!(b.lines_of(0..1), "a x=1 1\n");
        assert_eq!(b.lines_of(1..2), "b x=2 2\n");
        assert_eq!(b.lines_of(0..2), "a x=1 1\nb x=2 2\n");
        let gz = b.gzipped().expect("gzip");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text, "a x=1 1\nb x=2 2\n");
    }
}
