//! The on/off flags of every mode, defined once.

use clap::Arg;
use clap::builder::BoolishValueParser;

/// Makes a flag an on/off switch, written `switch()` in a field's `#[arg(...)]`: `--follow`
/// alone turns it on, `--follow=false` turns off what the file or the environment turned
/// on (the `=` is required, so a FILE argument after the flag is never taken for its
/// value), and the value may be any of true/false, yes/no, on/off, 1/0. Its field is an
/// `Option<bool>`, so that an unset switch leaves the file's value alone.
pub trait Switch {
    /// This flag, as a switch with the value name `BOOL`.
    fn switch(self) -> Self;
}

impl Switch for Arg {
    fn switch(self) -> Self {
        self.value_name("BOOL")
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(BoolishValueParser::new())
            .hide_possible_values(true)
    }
}
