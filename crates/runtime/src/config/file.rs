//! The configuration file: one TOML file may hold every binary's settings, each in its
//! own section, plus the shared `[kafka]` section.
//!
//! ```toml
//! [kafka]
//! brokers = "kafka-1:9093,kafka-2:9093"
//! security.protocol = "SASL_SSL"      # any librdkafka property
//!
//! [stream_processor]
//! group = "stream-processor"
//! lake = "s3://gpu-lake/lake"
//! flush_interval = "10s"
//!
//! [consumer_influx]
//! group = "consumer-influx"
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The sections a configuration file may have.
pub const SECTIONS: &[&str] = &[
    "kafka",
    "producer",
    "stream_processor",
    "consumer_influx",
    "batch_analytics",
];

/// A parsed configuration file, kept with its text so errors can name the line.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads and parses `path`. A syntax error names the file, line and column; an
    /// unknown section names the file and line, with a suggestion.
    pub fn load(path: impl AsRef<Path>) -> Result<ConfigFile> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::ConfigFile {
            location: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        ConfigFile::parse(path, text)
    }

    /// Parses `text` as if read from `path`.
    pub fn parse(path: impl Into<PathBuf>, text: impl Into<String>) -> Result<ConfigFile> {
        let (path, text) = (path.into(), text.into());
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| line_of_offset(&text, s.start))
                .unwrap_or(0);
            Error::ConfigFile {
                location: location(&path, line),
                message: e.message().trim().to_string(),
            }
        })?;
        let file = ConfigFile { path, text, table };
        for name in file.table.keys() {
            if !SECTIONS.contains(&name.as_str()) {
                return Err(Error::ConfigFile {
                    location: location(&file.path, file.line_of(&[name]).unwrap_or(0)),
                    message: format!(
                        "unknown section `{name}`{} (sections: {})",
                        did_you_mean(name, SECTIONS),
                        SECTIONS.join(", ")
                    ),
                });
            }
            if !file.table[name].is_table() {
                return Err(Error::ConfigFile {
                    location: location(&file.path, file.line_of(&[name]).unwrap_or(0)),
                    message: format!("`{name}` must be a section ([{name}]), not a value"),
                });
            }
        }
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A section's table (empty when the file has none).
    pub fn section(&self, name: &str) -> toml::Table {
        self.table
            .get(name)
            .and_then(|v| v.as_table())
            .cloned()
            .unwrap_or_default()
    }

    /// `path:line` of the key at `keys` (section first), or the path alone when the key
    /// cannot be found.
    pub fn location_of(&self, keys: &[&str]) -> String {
        location(&self.path, self.line_of(keys).unwrap_or(0))
    }

    /// The 1-based line where the key at `keys` is set: `[a]` then `b = ...` (or a
    /// dotted `b.c = ...`), found by reading the file the way a person would.
    pub fn line_of(&self, keys: &[&str]) -> Option<usize> {
        let (section, rest) = keys.split_first()?;
        let mut current: Vec<String> = Vec::new();
        for (i, raw) in self.text.lines().enumerate() {
            let line = raw.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(header) = line.strip_prefix('[') {
                let header = header.trim_start_matches('[');
                let end = header.find(']').unwrap_or(header.len());
                current = split_key(&header[..end]);
                if rest.is_empty() && current.first().map(String::as_str) == Some(*section) {
                    return Some(i + 1);
                }
                continue;
            }
            let Some((key, _)) = line.split_once('=') else {
                continue;
            };
            let mut full = current.clone();
            full.extend(split_key(key));
            if full.len() >= keys.len() && full.iter().zip(keys).all(|(a, b)| a == b) {
                return Some(i + 1);
            }
        }
        None
    }
}

/// `a.b."c.d"` → `["a", "b", "c.d"]`.
fn split_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in key.trim().chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => out.push(std::mem::take(&mut cur).trim().to_string()),
            (None, c) => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |t| t.matches('\n').count() + 1)
}

fn location(path: &Path, line: usize) -> String {
    if line == 0 {
        path.display().to_string()
    } else {
        format!("{}:{line}", path.display())
    }
}

/// ` (did you mean `x`?)` when one of `known` is close to `name`, else nothing.
///
/// ```
/// use gpustream_runtime::config::did_you_mean;
/// assert_eq!(did_you_mean("grup", &["group", "topic"]), " (did you mean `group`?)");
/// assert_eq!(did_you_mean("zzz", &["group", "topic"]), "");
/// ```
pub fn did_you_mean(name: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# shared\n[kafka]\nbrokers = \"a:1\"\nsecurity.protocol = \"SSL\"\n\n[stream_processor]\ngroup = \"g\"\nflush_interval = \"5s\"\n";

    #[test]
    fn finds_the_line_of_keys_and_sections() {
        let f = ConfigFile::parse("/etc/gpustream.toml", TEXT).expect("valid");
        assert_eq!(f.line_of(&["kafka"]), Some(2));
        assert_eq!(f.line_of(&["kafka", "brokers"]), Some(3));
        assert_eq!(f.line_of(&["kafka", "security", "protocol"]), Some(4));
        assert_eq!(f.line_of(&["stream_processor", "flush_interval"]), Some(8));
        assert_eq!(f.line_of(&["stream_processor", "lake"]), None);
        assert_eq!(f.section("stream_processor")["group"].as_str(), Some("g"));
        assert!(f.section("producer").is_empty());
    }

    #[test]
    fn syntax_errors_and_unknown_sections_name_file_and_line() {
        let err = ConfigFile::parse("/x.toml", "[kafka]\nbrokers = \n")
            .expect_err("syntax")
            .to_string();
        assert!(err.starts_with("/x.toml:2:"), "{err}");
        let err = ConfigFile::parse(
            "/x.toml",
            "[kafka]\nbrokers = \"a\"\n[stream_procesor]\ngroup = \"g\"\n",
        )
        .expect_err("unknown section")
        .to_string();
        assert!(err.starts_with("/x.toml:3:"), "{err}");
        assert!(err.contains("did you mean `stream_processor`"), "{err}");
    }
}
