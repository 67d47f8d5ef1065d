//! One configuration model for every binary.
//!
//! Each setting can come from a flag (`--flush-interval 5s`), from an environment
//! variable named after the flag (`GPUSTREAM_FLUSH_INTERVAL`), or from the binary's
//! section of a TOML file (`[stream_processor] flush_interval = "5s"`) given with
//! `--config FILE` or `GPUSTREAM_CONFIG`; precedence is flag > environment > file >
//! built-in default. Kafka settings shared by the Kafka binaries live in the file's
//! `[kafka]` section (see [`crate::kafka::KafkaSettings`]).
//!
//! Layering is done by [`figment`]: the defaults, the file's section and what clap
//! read from flags and the environment are merged and extracted into the binary's
//! settings struct, which denies unknown keys. An unknown key or a wrong type is an
//! error naming the file, the line and the key, with a suggestion for a misspelling.
//! Secrets never come from flags or the file: see [`secret_from_env`].

mod duration;
mod file;

pub use duration::{format_duration, parse_duration, serde_duration, serde_opt_duration};
pub use file::{ConfigFile, SECTIONS, did_you_mean};

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Prefix of every environment variable the binaries read.
pub const ENV_PREFIX: &str = "GPUSTREAM_";

/// Env var name for a flag / config key: `influx-url` → `GPUSTREAM_INFLUX_URL`.
///
/// ```
/// assert_eq!(gpustream_runtime::config::env_name("influx-url"), "GPUSTREAM_INFLUX_URL");
/// ```
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace(['-', '.'], "_").to_ascii_uppercase()
    )
}

/// The configuration file named by `--config` (already parsed by clap) or
/// `GPUSTREAM_CONFIG`, loaded; `None` when neither is set.
pub fn load_file(flag: Option<&std::path::Path>) -> Result<Option<ConfigFile>> {
    match flag {
        Some(p) => ConfigFile::load(p).map(Some),
        None => match std::env::var_os(env_name("config")) {
            Some(p) if !p.is_empty() => ConfigFile::load(std::path::PathBuf::from(p)).map(Some),
            _ => Ok(None),
        },
    }
}

/// One section of a configuration file as a figment layer that names its origin.
struct FileSection {
    table: toml::Table,
    name: String,
}

impl Provider for FileSection {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Serialized::defaults(&self.table).data()
    }
}

/// Settings of `section`: `S::default()`, overlaid with the file's `[section]`, overlaid
/// with `cli` (the flags and environment variables clap read; unset fields must be
/// skipped when serialized). `S` should deny unknown fields.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use gpustream_runtime::config::{ConfigFile, resolve};
///
/// #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
/// #[serde(deny_unknown_fields, default)]
/// struct Settings { group: String, batch_size: u32 }
///
/// #[derive(Serialize)]
/// struct Cli { #[serde(skip_serializing_if = "Option::is_none")] batch_size: Option<u32> }
///
/// let file = ConfigFile::parse("/c.toml", "[consumer_influx]\ngroup = \"g\"\nbatch_size = 10\n").unwrap();
/// let s: Settings = resolve(Some(&file), "consumer_influx", &Cli { batch_size: Some(50) }).unwrap();
/// assert_eq!(s, Settings { group: "g".into(), batch_size: 50 });
///
/// let typo = ConfigFile::parse("/c.toml", "[consumer_influx]\ngrup = \"g\"\n").unwrap();
/// let err = resolve::<Settings>(Some(&typo), "consumer_influx", &Cli { batch_size: None }).unwrap_err();
/// assert_eq!(err.to_string(), "/c.toml:2: [consumer_influx] unknown key `grup` (did you mean `group`?)");
/// ```
pub fn resolve<S>(file: Option<&ConfigFile>, section: &str, cli: &impl Serialize) -> Result<S>
where
    S: Serialize + DeserializeOwned + Default,
{
    let file_name = file.map(|f| format!("configuration file {}", f.path().display()));
    let mut figment = Figment::from(Serialized::defaults(S::default()));
    if let Some(f) = file {
        figment = figment.merge(FileSection {
            table: f.section(section),
            name: file_name.clone().unwrap_or_default(),
        });
    }
    figment
        .merge(Serialized::defaults(cli))
        .extract::<S>()
        .map_err(|e| describe(e, file, file_name.as_deref(), section))
}

/// One clear line for a figment error: where the bad value came from (file and line,
/// or the flag/environment), the key, and what is wrong with it.
fn describe(
    e: figment::Error,
    file: Option<&ConfigFile>,
    file_name: Option<&str>,
    section: &str,
) -> Error {
    let from_file = e.metadata.as_ref().map(|m| m.name.as_ref()) == file_name && file.is_some();
    let key = e.path.join(".");
    let message = match &e.kind {
        figment::error::Kind::UnknownField(name, expected) => match did_you_mean(name, expected) {
            s if s.is_empty() => {
                format!("unknown key `{name}` (keys: {})", expected.join(", "))
            }
            s => format!("unknown key `{name}`{s}"),
        },
        other => format!("`{key}`: {other}"),
    };
    match (from_file, file) {
        (true, Some(f)) => {
            let mut keys: Vec<&str> = vec![section];
            keys.extend(e.path.iter().map(String::as_str));
            if let figment::error::Kind::UnknownField(name, _) = &e.kind
                && keys.last() != Some(&name.as_str())
            {
                keys.push(name);
            }
            Error::ConfigFile {
                location: f.location_of(&keys),
                message: format!("[{section}] {message}"),
            }
        }
        _ => Error::Setting {
            name: if key.is_empty() {
                section.to_string()
            } else {
                key
            },
            message,
        },
    }
}

/// Reads a secret from the environment variable `name`, or from the file named by
/// `name_FILE` (trailing newline trimmed). Secrets are never flags or file keys, so they
/// never show in `--help`, in `ps`, or in a configuration file; never log them.
pub fn secret_from_env(name: &str) -> Result<Option<String>> {
    if let Ok(v) = std::env::var(name) {
        return Ok(Some(v));
    }
    let file_var = format!("{name}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|e| Error::Setting {
                name: file_var,
                message: format!("cannot read {path}: {e}"),
            }),
        Err(_) => Ok(None),
    }
}
