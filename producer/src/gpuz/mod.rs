//! GPU-Z "Log to file" sensor logs: decoding, header mapping and row parsing.
//!
//! See `../shared/docs/gpuz-format.md` for the format as found in real logs.

pub mod columns;
pub mod decode;
pub mod parser;

pub use parser::{
    Identity, Issue, IssueKind, LineParser, ParseOptions, ParsedLog, ParserState, SkipReason,
    Summary, parse_log,
};
