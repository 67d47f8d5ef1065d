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

    /// A section's table (empty when the file has none). `name` may be the dotted path
    /// of a subsection: `producer.replay` is the `[producer.replay]` table.
    pub fn section(&self, name: &str) -> toml::Table {
        let mut table = &self.table;
        for part in name.split('.') {
            match table.get(part).and_then(|v| v.as_table()) {
                Some(t) => table = t,
                None => return toml::Table::new(),
            }
        }
        table.clone()
    }

    /// Checks that the table at `section` (a dotted path) holds only `keys` and the
    /// subsections `subsections` (each a table). An unknown key is an error naming the
    /// file, its line and a close known key; a subsection given as a value names its line.
    ///
    /// For a section whose own keys are read only in part (a table of shared keys with a
    /// subsection per mode), where [`crate::config::resolve`] cannot see the whole table.
    pub fn check_keys(&self, section: &str, keys: &[&str], subsections: &[&str]) -> Result<()> {
        let path: Vec<&str> = section.split('.').collect();
        for (name, value) in &self.section(section) {
            let at = |name: &str| {
                let mut full = path.clone();
                full.push(name);
                self.location_of(&full)
            };
            if subsections.contains(&name.as_str()) {
                if !value.is_table() {
                    return Err(Error::ConfigFile {
                        location: at(name),
                        message: format!(
                            "`{name}` must be a section ([{section}.{name}]), not a value"
                        ),
                    });
                }
            } else if !keys.contains(&name.as_str()) {
                let known: Vec<&str> = keys.iter().chain(subsections).copied().collect();
                let hint = match did_you_mean(name, &known) {
                    s if s.is_empty() => format!(
                        " (keys: {}; sections: {})",
                        keys.join(", "),
                        subsections
                            .iter()
                            .map(|s| format!("[{section}.{s}]"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    s => s,
                };
                return Err(Error::ConfigFile {
                    location: at(name),
                    message: format!("[{section}] unknown key `{name}`{hint}"),
                });
            }
        }
        Ok(())
    }

    /// `path:line` of the key at `keys` (section first), or the path alone when the key
    /// cannot be found.
    pub fn location_of(&self, keys: &[&str]) -> String {
        location(&self.path, self.line_of(keys).unwrap_or(0))
    }

    /// The 1-based line where the key at `keys` is set: `[a]` then `b = ...` (or a
    /// dotted `b.c = ...`), found by reading the file the way a person would.
    pub fn line_of(&self, keys: &[&str]) -> Option<usize> {
        if keys.is_empty() {
            return None;
        }
        let starts_with_keys = |path: &[String]| {
            path.len() >= keys.len() && path.iter().zip(keys).all(|(a, b)| a == b)
        };
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
                // `[a]` for the key `a`, and `[a.b]` for `a` or `a.b` (a subsection).
                if starts_with_keys(&current) {
                    return Some(i + 1);
                }
                continue;
            }
            let Some((key, _)) = line.split_once('=') else {
                continue;
            };
            let mut full = current.clone();
            full.extend(split_key(key));
            if starts_with_keys(&full) {
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
    fn subsections_by_dotted_path_and_their_keys_checked() {
        let text =
            "[producer]\ntopic = \"t\"\ncompresion = \"lz4\"\n\n[producer.replay]\nspeed = 2\n";
        let f = ConfigFile::parse("/p.toml", text).expect("valid");
        assert_eq!(f.section("producer.replay")["speed"].as_integer(), Some(2));
        assert!(f.section("producer.nvml").is_empty());
        assert!(
            f.section("producer.topic").is_empty(),
            "a value is not a table"
        );
        assert_eq!(f.line_of(&["producer", "replay", "speed"]), Some(6));
        assert_eq!(
            f.line_of(&["producer", "replay"]),
            Some(5),
            "a subsection's header"
        );
        let modes = ["replay", "simulate", "nvml"];
        let err = f
            .check_keys("producer", &["topic", "compression"], &modes)
            .expect_err("typo")
            .to_string();
        assert_eq!(
            err,
            "/p.toml:3: [producer] unknown key `compresion` (did you mean `compression`?)"
        );
        let f = ConfigFile::parse("/p.toml", "[producer]\nzzz = 1\n").expect("valid");
        let err = f
            .check_keys("producer", &["topic"], &modes)
            .expect_err("unknown")
            .to_string();
        assert!(err.starts_with("/p.toml:2: [producer] unknown key `zzz` (keys: topic; sections: [producer.replay], "), "{err}");
        let f =
            ConfigFile::parse("/p.toml", "[producer]\ntopic = \"t\"\nreplay = 1\n").expect("valid");
        let err = f
            .check_keys("producer", &["topic"], &modes)
            .expect_err("value, not a table")
            .to_string();
        assert!(
            err.starts_with("/p.toml:3: `replay` must be a section ([producer.replay])"),
            "{err}"
        );
        let f = ConfigFile::parse("/p.toml", "[producer.replay]\nspeed = 1\n").expect("valid");
        f.check_keys("producer", &["topic"], &modes)
            .expect("only a subsection");
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
