//! GPU-Z "Log to file" sensor logs: encoding detection, header mapping and rows to
//! samples.
//!
//! See `../shared/docs/gpuz-format.md` for the format as found in real logs: a header
//! per logging session, Latin-1 or UTF-16 text, `-` for a missing reading, sensors that
//! read 0 when unsupported, NUL holes left by truncation.
//!
//! - [`decode`]: bytes → text (BOM detection, Latin-1);
//! - [`columns`]: header cells → canonical metrics;
//! - [`parser`]: lines → sessions and [`gpustream::Sample`]s, with every skipped row and
//!   field reported by file, line and reason.
//!
//! Depends only on the model (`gpustream`): no I/O beyond what the caller hands in.

pub mod columns;
pub mod decode;
pub mod parser;

pub use parser::{
    Identity, Issue, IssueKind, LineParser, ParseOptions, ParsedLog, ParserState, SkipReason,
    Summary, parse_log,
};
