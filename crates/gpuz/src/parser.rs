//! GPU-Z log lines → samples, with every row either turned into a sample or reported.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use gpustream::{Metrics, Sample, Source, event_id};
use serde::{Deserialize, Serialize};

use crate::cells::{cell_strs, split_cells};
use crate::columns::{Column, Header, is_header_cell};
use crate::lines::MAX_LINE;
use crate::number::parse_f64;

/// Who the log belongs to: no line of a GPU-Z log names the host or the GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Host name.
    pub host: String,
    /// Stable GPU id on the host.
    pub gpu: String,
    /// GPU index on the host.
    pub gpu_index: u32,
    /// GPU model, if the user knows it.
    pub gpu_name: Option<String>,
}

/// How to read a log.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Timezone of the log's wall-clock timestamps.
    pub timezone: Tz,
    /// Header line to use for data rows that come before any header in the file.
    pub fallback_header: Option<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            timezone: chrono_tz::UTC,
            fallback_header: None,
        }
    }
}

/// Why a data row produced no sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// A data row came before any header line and no header was supplied.
    NoHeader,
    /// The first cell is not a `YYYY-MM-DD HH:MM:SS` timestamp.
    BadTimestamp,
    /// The line is longer than any GPU-Z line (more than [`MAX_LINE`] bytes).
    LineTooLong,
}

impl SkipReason {
    /// Short name used in summaries and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoHeader => "no_header",
            SkipReason::BadTimestamp => "bad_timestamp",
            SkipReason::LineTooLong => "line_too_long",
        }
    }
}

/// What is wrong with a row or a field.
#[derive(Debug, Clone, PartialEq)]
pub enum IssueKind {
    /// The row was not turned into a sample.
    RowSkipped(SkipReason),
    /// One cell was not a number; the rest of the row was kept.
    InvalidValue,
    /// The row has fewer or more cells than its header; what could be matched was kept.
    CellCount,
    /// A local time that does not exist (spring-forward gap); mapped to the offset before it.
    NonexistentLocalTime,
}

/// One problem found in a log, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// File name as given.
    pub file: String,
    /// 1-based line number in the decoded text.
    pub line: usize,
    /// Column label, for field-level issues.
    pub field: Option<String>,
    /// What kind of problem.
    pub kind: IssueKind,
    /// Details (the offending text).
    pub detail: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        match &self.kind {
            IssueKind::RowSkipped(r) => write!(f, "row skipped ({}): {}", r.as_str(), self.detail),
            IssueKind::InvalidValue => {
                write!(f, "not a number, field left absent: {}", self.detail)
            }
            IssueKind::CellCount => write!(f, "{}", self.detail),
            IssueKind::NonexistentLocalTime => write!(f, "{}", self.detail),
        }
    }
}

/// Counts of what happened to a log's lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Header lines seen (= sessions).
    pub headers: u64,
    /// Data rows seen.
    pub data_rows: u64,
    /// Samples produced.
    pub samples: u64,
    /// Rows skipped, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Field-level problems (row kept).
    pub field_issues: u64,
}

impl Summary {
    /// Rows skipped in total.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Adds another summary into this one.
    pub fn merge(&mut self, o: &Summary) {
        self.headers += o.headers;
        self.data_rows += o.data_rows;
        self.samples += o.samples;
        self.field_issues += o.field_issues;
        for (k, v) in &o.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
    }
}

fn as_strs(cells: &[String]) -> Vec<&str> {
    cells.iter().map(String::as_str).collect()
}

/// A [`LineParser`]'s position in a log, saved by follow mode so a restart resumes
/// mid-session with the same header, session name and sequence numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParserState {
    /// Cells of the header in force.
    pub header_cells: Option<Vec<String>>,
    /// Headers seen so far.
    pub session_ordinal: u32,
    /// Name of the current session, once its first row was seen.
    pub session: Option<String>,
    /// Next data-row ordinal.
    pub seq: u64,
    /// Event time of the last row (orders a DST fall-back's repeated hour).
    pub last_utc: Option<DateTime<Utc>>,
}

/// What a [`LineParser`] builds for each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Whole samples (event id, session, identity, extra columns) and issues.
    Samples,
    /// What a first pass needs: counts, sessions, event times and metric values; issues
    /// are counted, not kept.
    Scan,
}

/// Turns lines into samples one at a time (also usable on a growing file).
///
/// Nothing is allocated per line beyond the sample's own strings: cells are spans of
/// the line in a reused list, and the row is built in a reused [`Sample`].
pub struct LineParser {
    file: String,
    identity: Identity,
    timezone: Tz,
    header: Option<Header>,
    /// The cells of the header in force, kept so a checkpoint can rebuild it.
    header_cells: Option<Vec<String>>,
    session_ordinal: u32,
    session: Option<String>,
    seq: u64,
    last_utc: Option<DateTime<Utc>>,
    /// Running counts.
    pub summary: Summary,
    mode: Mode,
    /// Cell spans of the current line.
    cells: Vec<Range<usize>>,
    /// The sample of the last data row.
    sample: Sample,
    /// Issues found and not yet taken, oldest first.
    issues: VecDeque<Issue>,
    /// Issues found so far (kept or not).
    issue_count: u64,
}

/// What one line produced.
#[derive(Debug)]
pub enum Parsed {
    /// A sample, tagged with the 1-based ordinal of its session in the file.
    Sample(Box<Sample>, u32),
    /// A problem (row skipped, or a field-level warning).
    Issue(Issue),
}

const TIME_FORMATS: [&str; 2] = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"];

fn parse_time(cell: &str) -> Option<NaiveDateTime> {
    // Hot path: every row starts with a plain `YYYY-MM-DD HH:MM:SS`; chrono's format-driven
    // parser costs more than the rest of the cell parsing together.
    if let Some(t) = parse_plain_time(cell.as_bytes()) {
        return Some(t);
    }
    // chrono's `%Y` also reads signed years of any length, which the wire format (RFC
    // 3339: four digits) cannot carry: found by the gpuz_parse fuzzer (`-0025-...`).
    TIME_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(cell, f).ok())
        .filter(|t| (0..=9999).contains(&t.year()))
        // chrono reads second 60 as a leap second (a nanosecond field over 1e9), which
        // every later step writes as the next second: the sample would not survive its
        // own round trip through the wire. Windows clocks never show a 60th second, so
        // such a cell is a bad timestamp (found by the gpuz_parse fuzzer).
        .filter(|t| t.nanosecond() < 1_000_000_000)
}

fn parse_plain_time(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
}

fn empty_sample() -> Sample {
    Sample {
        event_id: String::new(),
        event_time: DateTime::UNIX_EPOCH,
        host: String::new(),
        gpu: String::new(),
        gpu_index: 0,
        gpu_name: None,
        source: Source::Gpuz,
        session: String::new(),
        seq: 0,
        metrics: Metrics::default(),
        unsupported: Vec::new(),
        extra: BTreeMap::new(),
    }
}

impl LineParser {
    /// A parser for one file.
    pub fn new(file: impl Into<String>, identity: Identity, opts: &ParseOptions) -> Self {
        let header_cells: Option<Vec<String>> = opts.fallback_header.as_deref().map(|h| {
            let mut spans = Vec::new();
            split_cells(h, &mut spans);
            spans.iter().map(|r| h[r.clone()].to_string()).collect()
        });
        let header = header_cells.as_ref().map(|c| Header::parse(&as_strs(c)));
        LineParser {
            file: file.into(),
            identity,
            timezone: opts.timezone,
            header,
            header_cells,
            session_ordinal: 0,
            session: None,
            seq: 0,
            last_utc: None,
            summary: Summary::default(),
            mode: Mode::Samples,
            cells: Vec::new(),
            sample: empty_sample(),
            issues: VecDeque::new(),
            issue_count: 0,
        }
    }

    /// A parser for a first pass (see [`Mode::Scan`]).
    pub(crate) fn scanner(file: impl Into<String>, opts: &ParseOptions) -> Self {
        let identity = Identity {
            host: String::new(),
            gpu: String::new(),
            gpu_index: 0,
            gpu_name: None,
        };
        LineParser {
            mode: Mode::Scan,
            ..LineParser::new(file, identity, opts)
        }
    }

    fn issue(&mut self, line: usize, field: Option<String>, kind: IssueKind, detail: String) {
        self.issue_count += 1;
        if self.mode == Mode::Samples {
            self.issues.push_back(Issue {
                file: self.file.clone(),
                line,
                field,
                kind,
                detail,
            });
        }
    }

    /// Where the parser stands: enough to carry on with the next line after a restart.
    pub fn state(&self) -> ParserState {
        ParserState {
            header_cells: self.header_cells.clone(),
            session_ordinal: self.session_ordinal,
            session: self.session.clone(),
            seq: self.seq,
            last_utc: self.last_utc,
        }
    }

    /// Carries on from a saved [`ParserState`] (counts in `summary` start from zero).
    pub fn restore(&mut self, state: ParserState) {
        self.header = state
            .header_cells
            .as_ref()
            .map(|c| Header::parse(&as_strs(c)));
        self.header_cells = state.header_cells;
        self.session_ordinal = state.session_ordinal;
        self.session = state.session;
        self.seq = state.seq;
        self.last_utc = state.last_utc;
    }

    /// Parses one line (without its line terminator; a trailing `\r` is tolerated).
    pub fn feed(&mut self, line_no: usize, line: &str, out: &mut Vec<Parsed>) {
        let produced = self.line(line_no, line);
        out.extend(self.issues.drain(..).map(Parsed::Issue));
        if produced {
            out.push(Parsed::Sample(
                Box::new(self.sample.clone()),
                self.session_ordinal,
            ));
        }
    }

    /// The 1-based ordinal of the session in force (0 before the first header).
    pub(crate) fn session_ordinal(&self) -> u32 {
        self.session_ordinal
    }

    /// The sample of the last data row [`line`](Self::line) accepted.
    pub(crate) fn sample_mut(&mut self) -> &mut Sample {
        &mut self.sample
    }

    /// The oldest issue not yet taken.
    pub(crate) fn take_issue(&mut self) -> Option<Issue> {
        self.issues.pop_front()
    }

    /// Issues found so far, including those a first pass does not keep.
    pub(crate) fn issue_count(&self) -> u64 {
        self.issue_count
    }

    /// Parses one line; returns whether it produced a sample (then in
    /// [`sample_mut`](Self::sample_mut)). Issues queue up for
    /// [`take_issue`](Self::take_issue).
    pub(crate) fn line(&mut self, line_no: usize, line: &str) -> bool {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            return false;
        }
        let mut cells = std::mem::take(&mut self.cells);
        split_cells(line, &mut cells);
        let produced = self.parse_cells(line_no, line, &cells);
        self.cells = cells;
        produced
    }

    /// Counts a line too long to be a GPU-Z line as a skipped row.
    pub(crate) fn too_long(&mut self, line_no: usize, len: u64) {
        self.summary.data_rows += 1;
        self.seq = self.seq.wrapping_add(1);
        self.skip(
            line_no,
            SkipReason::LineTooLong,
            format!("the line has {len} bytes, more than the {MAX_LINE} a GPU-Z line can have"),
        );
    }

    fn parse_cells(&mut self, line_no: usize, line: &str, cells: &[Range<usize>]) -> bool {
        let Some(first) = cells.first() else {
            return false;
        };
        if !is_header_cell(&line[first.clone()]) {
            return self.data_row(line_no, line, cells);
        }
        // A data row may be glued after a header (after a NUL hole): split at the
        // first cell that is a timestamp.
        let glued = cells
            .iter()
            .skip(1)
            .position(|c| parse_time(&line[c.clone()]).is_some())
            .map(|p| p + 1);
        let header_cells: Vec<&str> = match glued {
            Some(j) => cell_strs(line, &cells[..j])
                .into_iter()
                .filter(|c| !c.is_empty())
                .collect(),
            None => cell_strs(line, cells),
        };
        self.header = Some(Header::parse(&header_cells));
        self.header_cells = Some(header_cells.iter().map(|c| c.to_string()).collect());
        // Wrapping: a restored state (a follow-mode state file) may hold any value.
        self.session_ordinal = self.session_ordinal.wrapping_add(1);
        self.session = None;
        self.summary.headers += 1;
        match glued {
            Some(j) => self.data_row(line_no, line, &cells[j..]),
            None => false,
        }
    }

    fn data_row(&mut self, line_no: usize, line: &str, cells: &[Range<usize>]) -> bool {
        self.summary.data_rows += 1;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let Some(header) = self.header.take() else {
            self.skip(
                line_no,
                SkipReason::NoHeader,
                "data row before any header line (the file has no header; pass --header)".into(),
            );
            return false;
        };
        let produced = self.row_with_header(line_no, line, cells, &header, seq);
        self.header = Some(header);
        if produced {
            self.summary.samples += 1;
        }
        produced
    }

    fn skip(&mut self, line_no: usize, reason: SkipReason, detail: String) {
        *self.summary.skipped.entry(reason.as_str()).or_default() += 1;
        self.issue(line_no, None, IssueKind::RowSkipped(reason), detail);
    }

    fn row_with_header(
        &mut self,
        line_no: usize,
        line: &str,
        cells: &[Range<usize>],
        header: &Header,
        seq: u64,
    ) -> bool {
        let cell = |i: usize| cells.get(i).map(|r| &line[r.clone()]);
        let first = cell(0).unwrap_or_default();
        let Some(local) = parse_time(first) else {
            let shown: String = first.chars().take(40).collect();
            self.skip(
                line_no,
                SkipReason::BadTimestamp,
                format!("`{shown}` is not a YYYY-MM-DD HH:MM:SS timestamp"),
            );
            return false;
        };
        let event_time = self.resolve_local(line_no, local);
        // The wire carries RFC 3339's years 0000-9999 in UTC: the first and last hours of
        // that range in a local time zone can fall outside it (found by fuzzing).
        if !(0..=9999).contains(&event_time.year()) {
            self.skip(
                line_no,
                SkipReason::BadTimestamp,
                format!(
                    "`{local}` in {} is {event_time}, outside the years 0000-9999",
                    self.timezone
                ),
            );
            return false;
        }
        self.last_utc = Some(event_time);
        let build = self.mode == Mode::Samples;
        if build && self.session.is_none() {
            self.session = Some(format!(
                "{}-{}",
                local.format("%Y%m%dT%H%M%S"),
                self.session_ordinal
            ));
        }

        self.sample.metrics = Metrics::default();
        self.sample.extra.clear();
        for (i, col) in header.columns.iter().enumerate().skip(1) {
            let Some(text) = cell(i) else { break };
            if text.is_empty() || text == "-" {
                continue;
            }
            match parse_f64(text) {
                Some(v) if v.is_finite() => match col {
                    Column::Metric(m) => self.sample.metrics.set(*m, v),
                    Column::Extra(name) if build => {
                        self.sample.extra.insert(name.clone(), v);
                    }
                    Column::Extra(_) | Column::Date => {}
                },
                _ => {
                    self.summary.field_issues += 1;
                    let shown: String = text.chars().take(40).collect();
                    self.issue(
                        line_no,
                        Some(header.labels[i].clone()),
                        IssueKind::InvalidValue,
                        format!("`{shown}`"),
                    );
                }
            }
        }
        if cells.len() != header.columns.len() {
            self.summary.field_issues += 1;
            let detail = if cells.len() < header.columns.len() {
                format!(
                    "row has {} cells, header has {}: missing fields left absent",
                    cells.len(),
                    header.columns.len()
                )
            } else {
                // Keep numeric surplus cells rather than lose them.
                if build {
                    for i in header.columns.len()..cells.len() {
                        // Finite only, as in named columns: `inf` and `NaN` parse as numbers,
                        // but the wire format has no place for them.
                        if let Some(v) = cell(i).and_then(parse_f64)
                            && v.is_finite()
                        {
                            self.sample
                                .extra
                                .insert(format!("unnamed column {}", i + 1), v);
                        }
                    }
                }
                format!(
                    "row has {} cells, header has {}: surplus cells kept as `unnamed column N`",
                    cells.len(),
                    header.columns.len()
                )
            };
            self.issue(line_no, None, IssueKind::CellCount, detail);
        }
        let s = &mut self.sample;
        s.event_time = event_time;
        s.seq = seq;
        if build {
            let id = &self.identity;
            let session = self.session.as_deref().unwrap_or_default();
            s.event_id = event_id(Source::Gpuz, &id.host, &id.gpu, session, seq);
            s.host.clone_from(&id.host);
            s.gpu.clone_from(&id.gpu);
            s.gpu_index = id.gpu_index;
            s.gpu_name.clone_from(&id.gpu_name);
            s.source = Source::Gpuz;
            s.session.clear();
            s.session.push_str(session);
            s.unsupported.clear();
        }
        true
    }

    /// Local wall-clock → UTC. In a DST fall-back the repeated hour is resolved so time
    /// keeps moving forward: the earlier offset first, the later once the clock went back.
    fn resolve_local(&mut self, line_no: usize, local: NaiveDateTime) -> DateTime<Utc> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, late) => {
                let early = early.with_timezone(&Utc);
                match self.last_utc {
                    Some(last) if early < last => late.with_timezone(&Utc),
                    _ => early,
                }
            }
            LocalResult::None => {
                // Spring-forward gap: read the time with the offset in force just before it.
                let before = local - chrono::Duration::hours(3);
                let offset_utc = self
                    .timezone
                    .from_local_datetime(&before)
                    .earliest()
                    .map(|t| t.naive_utc() - before)
                    .unwrap_or_default();
                let detail = format!(
                    "local time {local} does not exist in {}; read with the offset before the change",
                    self.timezone
                );
                self.issue(line_no, None, IssueKind::NonexistentLocalTime, detail);
                Utc.from_utc_datetime(&(local + offset_utc))
            }
        }
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use crate::reader::parse_log;

    #[test]
    fn plain_time_matches_chrono() {
        for cell in [
            "2024-02-29 23:59:59",
            "1999-12-31 00:00:00",
            "2023-10-29 02:30:00",
        ] {
            assert_eq!(
                parse_plain_time(cell.as_bytes()),
                NaiveDateTime::parse_from_str(cell, "%Y-%m-%d %H:%M:%S").ok(),
                "{cell}"
            );
        }
        for bad in [
            "2023-02-29 00:00:00",
            "2023-13-01 00:00:00",
            "2023-01-01 24:00:00",
            "2023-01-01T00:00:00",
            "2023-01-01 00:00:0x",
        ] {
            assert_eq!(parse_plain_time(bad.as_bytes()), None, "{bad}");
        }
        assert!(parse_time("2023-01-01 00:00:00.250").is_some());
        // Found by fuzzing (gpuz_parse): signed years became samples the wire refuses.
        for far in [
            "-0025-03-14 09:00:10",
            "+12025-03-14 09:00:10",
            "-0001-01-01 00:00:00.5",
        ] {
            assert_eq!(parse_time(far), None, "{far}");
        }
        // Found by fuzzing (gpuz_parse): a 60th second became a chrono leap second that
        // the wire writes as the next second, so the sample changed on its way.
        for leap in [
            "0024-03-28 23:09:60",
            "2016-12-31 23:59:60",
            "2016-12-31 23:59:60.5",
        ] {
            assert_eq!(parse_time(leap), None, "{leap}");
        }
    }

    fn identity() -> Identity {
        Identity {
            host: "h".into(),
            gpu: "g".into(),
            gpu_index: 0,
            gpu_name: None,
        }
    }

    /// Found writing the `gpuz_parse` fuzz target (review): a surplus cell reading `inf` or `NaN`
    /// became an `extra` value the wire encoder writes as `null`, which every decoder refuses.
    #[test]
    fn surplus_cells_that_are_not_finite_are_left_out() {
        let log = parse_log(
            "f",
            b"Date , GPU Load [%] ,\n2024-01-01 00:00:00 , 5 , 7 , inf , NaN , -infinity ,\n",
            &identity(),
            &ParseOptions::default(),
        );
        let extra = &log.samples[0].extra;
        assert_eq!(extra.get("unnamed column 3"), Some(&7.0));
        assert_eq!(extra.len(), 1, "{extra:?}");
    }

    /// Found by the CI's corpus mutation (gpuz_parse): 0000-01-01 00:00 in a zone east of
    /// UTC is a UTC time in the year -1, which the wire refuses: the row was lost at the
    /// consumer instead of reported here. The rows around it stay.
    #[test]
    fn local_times_whose_utc_year_leaves_0000_9999_are_bad_timestamps() {
        let rows = "Date , GPU Load [%] ,\n\
                    0000-01-01 00:00:00 , 1 ,\n\
                    0000-01-01 12:00:00 , 2 ,\n\
                    9999-12-31 23:59:59 , 3 ,\n";
        let east = ParseOptions {
            timezone: chrono_tz::Asia::Tokyo,
            fallback_header: None,
        };
        let log = parse_log("f", rows.as_bytes(), &identity(), &east);
        let loads: Vec<_> = log
            .samples
            .iter()
            .map(|s| s.metrics.get(gpustream::Metric::GpuLoad))
            .collect();
        assert_eq!(loads, [Some(2.0), Some(3.0)]);
        assert_eq!(log.summary.skipped_total(), 1);
        let west = ParseOptions {
            timezone: chrono_tz::America::Los_Angeles,
            fallback_header: None,
        };
        let log = parse_log("f", rows.as_bytes(), &identity(), &west);
        assert_eq!(log.samples.len(), 2);
        let issue = log
            .issues
            .iter()
            .find(|i| i.line == 4)
            .map(|i| i.to_string())
            .unwrap_or_default();
        assert!(issue.contains("outside the years 0000-9999"), "{issue}");
        assert!(issue.contains("f:4"), "{issue}");
    }

    /// Found writing the `follow_state` fuzz target (review): a restored state at the end of its
    /// counters overflowed them (a panic in debug builds) at the next row or header.
    #[test]
    fn restored_counters_wrap_instead_of_overflowing() {
        let mut p = LineParser::new("f", identity(), &ParseOptions::default());
        p.restore(ParserState {
            header_cells: Some(vec!["Date".into(), "GPU Load [%]".into()]),
            session_ordinal: u32::MAX,
            session: None,
            seq: u64::MAX,
            last_utc: None,
        });
        let mut out = Vec::new();
        p.feed(1, "2024-01-01 00:00:00 , 5 ,", &mut out);
        p.feed(2, "2024-01-01 00:00:01 , 6 ,", &mut out);
        p.feed(3, "Date , GPU Load [%] ,", &mut out);
        let seqs: Vec<u64> = out
            .iter()
            .filter_map(|o| match o {
                Parsed::Sample(s, _) => Some(s.seq),
                Parsed::Issue(_) => None,
            })
            .collect();
        assert_eq!(seqs, [u64::MAX, 0]);
        assert_eq!(p.state().session_ordinal, 0);
    }
}
