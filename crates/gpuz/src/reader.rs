//! A whole log, streamed: a first pass ([`scan`]) finds what needs every row of a
//! session (sensors that read 0 throughout are unsupported) and the counts; the second
//! ([`LogReader`]) hands out the samples and issues one at a time. Memory does not
//! depend on the size of the log: one read buffer, one line, one sample, and a few bytes
//! per logging session.

use std::io::{Read, Seek};

use chrono::{DateTime, Utc};
use gpustream::Sample;

use crate::decode::Encoding;
use crate::error::{Error, Result};
use crate::lines::{DEFAULT_BUFFER, LineReader, SingleByte};
use crate::parser::{Identity, Issue, LineParser, ParseOptions, Summary};
use crate::unsupported::{SessionMarks, SessionZeros};

/// What a first pass over a log found.
#[derive(Debug, Clone, PartialEq)]
pub struct LogScan {
    /// The encoding the log is read with.
    pub encoding: Encoding,
    /// Rows, sessions, samples and issues of the whole log: what the second pass ends
    /// with, known before it starts.
    pub summary: Summary,
    /// Issues the second pass will report.
    pub issues: u64,
    /// Earliest and latest event time of the samples.
    pub time_range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    marks: SessionMarks,
}

/// First pass over a log: counts, time range, and the sensors each session has
/// unsupported. Reads `src` from its start (and, for a single-byte log with lines in
/// more than one encoding, a second time: see [`crate::lines`]).
pub fn scan<R: Read + Seek>(file: &str, src: R, opts: &ParseOptions) -> Result<LogScan> {
    scan_with_buffer(file, src, opts, DEFAULT_BUFFER)
}

/// [`scan`] with a read buffer of `capacity` bytes.
pub fn scan_with_buffer<R: Read + Seek>(
    file: &str,
    mut src: R,
    opts: &ParseOptions,
    capacity: usize,
) -> Result<LogScan> {
    let rewind = |src: &mut R| {
        src.rewind().map_err(|source| Error::Read {
            file: file.to_string(),
            line: 0,
            source,
        })
    };
    rewind(&mut src)?;
    let mut lines = LineReader::with_buffer(&mut src, SingleByte::PerLine, capacity);
    let mut found = scan_lines(file, &mut lines, opts)?;
    if lines.read_lines_differently() {
        // Latin-1 after all, and some line was read as UTF-8: read them all as Latin-1.
        drop(lines);
        rewind(&mut src)?;
        let mut again = LineReader::with_buffer(&mut src, SingleByte::Latin1, capacity);
        found = scan_lines(file, &mut again, opts)?;
    }
    Ok(found)
}

fn scan_lines<R: Read>(
    file: &str,
    lines: &mut LineReader<R>,
    opts: &ParseOptions,
) -> Result<LogScan> {
    let mut parser = LineParser::scanner(file, opts);
    let mut marks = SessionMarks::default();
    let mut session = (parser.session_ordinal(), SessionZeros::default());
    let mut time_range: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    let mut last_line = 0;
    loop {
        let line = lines.next_line().map_err(|source| Error::Read {
            file: file.to_string(),
            line: last_line,
            source,
        })?;
        let Some(line) = line else { break };
        last_line = line.no;
        let produced = match line.too_long {
            Some(len) => {
                parser.too_long(line.no, len);
                false
            }
            None => parser.line(line.no, line.text),
        };
        if !produced {
            continue;
        }
        let ordinal = parser.session_ordinal();
        if ordinal != session.0 {
            marks.push(session.0, session.1.unsupported());
            session = (ordinal, SessionZeros::default());
        }
        let sample = parser.sample_mut();
        session.1.add(&sample.metrics);
        let t = sample.event_time;
        time_range = Some(time_range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
    }
    marks.push(session.0, session.1.unsupported());
    Ok(LogScan {
        encoding: lines.encoding().unwrap_or(Encoding::Latin1),
        summary: parser.summary.clone(),
        issues: parser.issue_count(),
        time_range,
        marks,
    })
}

/// One thing a log holds, in file order.
#[derive(Debug)]
pub enum Event<'a> {
    /// A sample (the reader's own: valid until the next call, free to change, e.g. to
    /// move it in time).
    Sample(&'a mut Sample),
    /// A problem found in a row or a field.
    Issue(Issue),
}

/// Second pass: a log's samples and issues, one at a time.
///
/// With the [`LogScan`] of the same log, samples carry the sensors their session has
/// unsupported and single-byte text is read as the whole log is encoded. Without one
/// (a log that cannot be read twice), nothing is marked unsupported and each line of
/// single-byte text is read as UTF-8 when it is valid UTF-8, else as Latin-1.
pub struct LogReader<R> {
    file: String,
    lines: LineReader<R>,
    parser: LineParser,
    marks: SessionMarks,
    sample_ready: bool,
    last_line: usize,
}

impl<R: Read> LogReader<R> {
    /// A reader of `src` (from where it stands), `file` naming it in issues and errors.
    pub fn new(
        file: &str,
        src: R,
        identity: &Identity,
        opts: &ParseOptions,
        scan: Option<&LogScan>,
    ) -> Self {
        Self::with_buffer(file, src, identity, opts, scan, DEFAULT_BUFFER)
    }

    /// [`LogReader::new`] with a read buffer of `capacity` bytes.
    pub fn with_buffer(
        file: &str,
        src: R,
        identity: &Identity,
        opts: &ParseOptions,
        scan: Option<&LogScan>,
        capacity: usize,
    ) -> Self {
        let single_byte = match scan.map(|s| s.encoding) {
            Some(Encoding::Utf8) => SingleByte::Utf8,
            Some(Encoding::Latin1) => SingleByte::Latin1,
            _ => SingleByte::PerLine,
        };
        LogReader {
            file: file.to_string(),
            lines: LineReader::with_buffer(src, single_byte, capacity),
            parser: LineParser::new(file, identity.clone(), opts),
            marks: scan.map(|s| s.marks.clone()).unwrap_or_default(),
            sample_ready: false,
            last_line: 0,
        }
    }

    /// The next sample or issue; `None` at the end of the log. An error is a failed
    /// read, named with the file and the last line read; problems in the log's content
    /// are [`Event::Issue`]s.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>> {
        loop {
            if let Some(issue) = self.parser.take_issue() {
                return Ok(Some(Event::Issue(issue)));
            }
            if self.sample_ready {
                self.sample_ready = false;
                let marks = self.marks.get(self.parser.session_ordinal());
                let sample = self.parser.sample_mut();
                SessionMarks::write(marks, &mut sample.unsupported);
                return Ok(Some(Event::Sample(sample)));
            }
            let line = self.lines.next_line().map_err(|source| Error::Read {
                file: self.file.clone(),
                line: self.last_line,
                source,
            })?;
            let Some(line) = line else { return Ok(None) };
            self.last_line = line.no;
            self.sample_ready = match line.too_long {
                Some(len) => {
                    self.parser.too_long(line.no, len);
                    false
                }
                None => self.parser.line(line.no, line.text),
            };
        }
    }

    /// Counts so far (of the whole log once [`next_event`](Self::next_event) returned `None`).
    pub fn summary(&self) -> &Summary {
        &self.parser.summary
    }

    /// The encoding (see [`LineReader::encoding`]).
    pub fn encoding(&self) -> Option<Encoding> {
        self.lines.encoding()
    }
}

/// A fully parsed log.
#[derive(Debug)]
pub struct ParsedLog {
    /// Samples in file order.
    pub samples: Vec<Sample>,
    /// Every problem found, in file order.
    pub issues: Vec<Issue>,
    /// Counts.
    pub summary: Summary,
    /// Encoding the file was read with.
    pub encoding: Encoding,
}

/// Parses a whole log held in memory into samples and issues: [`scan`] then
/// [`LogReader`], collected. Sensors that read exactly 0 for a whole session are marked
/// unsupported (fan RPM on cards without a tachometer, VRM temperatures on AMD boards).
pub fn parse_log(file: &str, bytes: &[u8], identity: &Identity, opts: &ParseOptions) -> ParsedLog {
    // Reading from memory cannot fail: the `Err` arms are never taken.
    let scan = scan(file, std::io::Cursor::new(bytes), opts).ok();
    let mut reader = LogReader::new(file, bytes, identity, opts, scan.as_ref());
    let mut samples = Vec::with_capacity(scan.as_ref().map_or(0, |s| s.summary.samples as usize));
    let mut issues = Vec::new();
    while let Ok(Some(event)) = reader.next_event() {
        match event {
            Event::Sample(s) => samples.push(s.clone()),
            Event::Issue(i) => issues.push(i),
        }
    }
    ParsedLog {
        samples,
        issues,
        summary: reader.summary().clone(),
        encoding: reader
            .encoding()
            .or(scan.map(|s| s.encoding))
            .unwrap_or(Encoding::Latin1),
    }
}
