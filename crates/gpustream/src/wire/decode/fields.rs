//! The sample's maps and lists: metrics, extra columns, unsupported metrics.

use super::reader::Reader;
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::sample::Sample;

impl Reader<'_> {
    /// The metric a key without escapes names, read from the raw bytes (a catalogue
    /// name is ASCII, so a match needs no UTF-8 check); `None` (nothing consumed) for
    /// anything else, which the caller reads in full.
    #[inline]
    pub(super) fn metric_key(&mut self) -> Option<Metric> {
        let b: &[u8] = self.b;
        let rest = b
            .get(self.i + 1..)
            .filter(|_| b.get(self.i) == Some(&b'"'))?;
        let stop = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[stop] != b'"' {
            return None;
        }
        let metric = Metric::from_column_bytes(&rest[..stop])?;
        self.i += stop + 2;
        Some(metric)
    }

    /// `{"column": number, ...}` into the sample's metric slots.
    pub(super) fn metrics(&mut self, out: &mut Sample) -> Result<()> {
        self.object(|r| {
            let metric = match r.metric_key() {
                Some(m) => m,
                None => r.metric_name()?,
            };
            r.ws();
            r.expect(b':')?;
            r.ws();
            let value = r.float()?;
            out.metrics.set(metric, value);
            Ok(())
        })
    }

    /// A metric key read in full (escapes, or an unknown name for the error).
    pub(super) fn metric_name(&mut self) -> Result<Metric> {
        if let Some(name) = self.plain_str()? {
            return Metric::from_column(name)
                .ok_or_else(|| Error::Decode(format!("unknown metric `{name}`")));
        }
        let mut name = std::mem::take(&mut self.scratch);
        self.string_into(&mut name)?;
        let m = Metric::from_column(&name)
            .ok_or_else(|| Error::Decode(format!("unknown metric `{name}`")));
        self.scratch = name;
        m
    }

    /// `{"name": number, ...}` into the sample's extra columns.
    pub(super) fn extra(&mut self, out: &mut Sample) -> Result<()> {
        self.object(|r| {
            let mut name = String::new();
            r.string_into(&mut name)?;
            r.ws();
            r.expect(b':')?;
            r.ws();
            let value = r.float()?;
            out.extra.insert(name, value);
            Ok(())
        })
    }

    /// `["column", ...]` into the sample's unsupported metrics.
    pub(super) fn unsupported(&mut self, out: &mut Sample) -> Result<()> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let mut name = std::mem::take(&mut self.scratch);
            self.string_into(&mut name)?;
            let metric = Metric::from_column(&name)
                .ok_or_else(|| Error::Decode(format!("unknown metric `{name}`")))?;
            out.unsupported.push(metric);
            self.scratch = name;
            self.ws();
            match self.next()? {
                b',' => continue,
                b']' => return Ok(()),
                c => return Err(self.unexpected(c, "`,` or `]`")),
            }
        }
    }
}
