//! The checks the coverage-guided fuzzers run: one function per parser of outside
//! input, each taking the fuzzer's bytes and panicking when an invariant breaks.
//!
//! The fuzz crate (`fuzz/`, its own workspace, built with `cargo fuzz`) calls these
//! functions and nothing else; `tests/corpus.rs` replays every saved corpus and
//! regression file through them as a plain test, so a fixed crash stays fixed without a
//! fuzzing build. See `FUZZING.md`.
//!
//! | target | input |
//! |---|---|
//! | [`gpuz_parse`] | a GPU-Z log (bytes → samples) |
//! | [`wire_decode`] | a Kafka message (the wire decoder against the serde reference) |
//! | [`rules_toml`] | an anomaly rules file |
//! | [`config_toml`] | a configuration file, resolved for every binary |
//! | [`line_protocol_roundtrip`] | samples, anomalies and rollups through the InfluxDB encoder and back |
//! | [`follow_state`] | a follow-mode state file |

mod config;
mod follow;
mod gpuz;
pub mod input;
mod line_protocol;
pub mod mutate;
mod rules;
pub mod saved;
mod wire;

pub use config::config_toml;
pub use follow::follow_state;
pub use gpuz::gpuz_parse;
pub use line_protocol::line_protocol_roundtrip;
pub use rules::rules_toml;
pub use wire::wire_decode;

/// A fuzz target: takes any bytes, panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by the name of its fuzz binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("gpuz_parse", gpuz_parse),
    ("wire_decode", wire_decode),
    ("rules_toml", rules_toml),
    ("config_toml", config_toml),
    ("line_protocol_roundtrip", line_protocol_roundtrip),
    ("follow_state", follow_state),
];

/// The input as text, as a reader that replaces invalid UTF-8 would see it: TOML is
/// UTF-8, and a mutation that breaks one byte should still reach the parser.
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Checks that every line number an error message names (`PATH:N: ...` where the
/// message starts with `path`, and TOML's `at line N`) is a line of `text` (or the line
/// just after it, where an unexpected end is reported).
fn line_in_range(shown: &str, path: &str, text: &str) {
    let lines = text.split('\n').count();
    let mut numbers = Vec::new();
    if let Some(rest) = shown.strip_prefix(path).and_then(|r| r.strip_prefix(':')) {
        numbers.push(leading_number(rest));
    }
    for (i, _) in shown.match_indices("at line ") {
        numbers.push(leading_number(&shown[i + 8..]));
    }
    for n in numbers.into_iter().flatten() {
        assert!(
            (1..=lines).contains(&n),
            "line {n} of a {lines}-line file: {shown}"
        );
    }
}

fn leading_number(s: &str) -> Option<usize> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
