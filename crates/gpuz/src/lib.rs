//! GPU-Z "Log to file" sensor logs: encoding detection, header mapping and rows to
//! samples, streamed with memory that does not grow with the log.
//!
//! See `../shared/docs/gpuz-format.md` for the format as found in real logs: a header
//! per logging session, Latin-1 or UTF-16 text, `-` for a missing reading, sensors that
//! read 0 when unsupported, NUL holes left by truncation.
//!
//! - [`decode`]: bytes → text (BOM detection, Latin-1);
//! - [`lines`]: a log read line by line through a fixed buffer;
//! - [`columns`]: header cells → canonical metrics;
//! - [`number`]: cells → numbers;
//! - [`parser`]: lines → sessions and [`gpustream::Sample`]s, with every skipped row and
//!   field reported by file, line and reason;
//! - [`unsupported`]: sensors that read 0 for a whole session;
//! - [`reader`]: a whole log in two passes ([`scan`], then [`LogReader`]), or in memory
//!   ([`parse_log`]).
//!
//! Depends only on the model (`gpustream`): no I/O beyond reading what the caller hands in.

mod cells;
pub mod columns;
pub mod decode;
pub mod error;
pub mod lines;
pub mod number;
pub mod parser;
pub mod reader;
pub mod unsupported;

pub use error::{Error, Result};
pub use parser::{
    Identity, Issue, IssueKind, LineParser, ParseOptions, ParserState, SkipReason, Summary,
};
pub use reader::{Event, LogReader, LogScan, ParsedLog, parse_log, scan};
