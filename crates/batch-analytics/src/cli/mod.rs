//! Command line and configuration of the `batch-analytics` binary, and what each command
//! does.
//!
//! Settings come from flags (each with its `GPUSTREAM_*` variable), over the
//! `[batch_analytics]` section of the `--config` file, over built-in defaults
//! ([`Settings`]). Which day to run, the query and the generator's knobs are
//! per-invocation flags, not settings.
//!
//! Each in its own module: the flags of each command ([`Cli`]), what they resolve to
//! over the file and the defaults ([`Settings`]), and what each command does ([`run`]).

mod args;
mod commands;
mod settings;
#[cfg(test)]
mod tests;

pub use args::{
    AnalysisFlags, Cli, Command, ConfigArgs, ConvertArgs, DailyArgs, GenerateArgs, LakeFlag,
    MaintainArgs, OutputFormat, SqlArgs, UpkeepFlags,
};
pub use commands::run;
pub use settings::Settings;

/// The configuration file section of this binary.
pub const SECTION: &str = "batch_analytics";
