//! One configuration model for every binary.
//!
//! Each setting can come from a flag (`--flush-interval 5s`), from an environment
//! variable named after the flag (`GPUSTREAM_FLUSH_INTERVAL`), or from the binary's
//! section of a TOML file (`[stream_processor] flush_interval = "5s"`) given with
//! `--config FILE` or `GPUSTREAM_CONFIG`; precedence is flag > environment > file >
//! built-in default. Kafka settings shared by the Kafka binaries live in the file's
//! `[kafka]` section (see [`crate::kafka::KafkaSettings`]). A binary with modes may
//! read subsections (`[producer.replay]`) over a table of shared keys (`[producer]`):
//! see [`resolve_layers`].
//!
//! Layering is done by [`figment`]: the defaults, the file's section and what clap
//! read from flags and the environment are merged and extracted into the binary's
//! settings struct, which denies unknown keys. An unknown key or a wrong type is an
//! error naming the file, the line and the key, with a suggestion for a misspelling.
//! Secrets never come from flags or the file: see [`secret_from_env`].

mod command;
mod connection;
mod duration;
mod file;

pub use command::ConfigCommand;
pub use connection::ConnectionArgs;
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
    resolve_layers(file, &[Layer::section(section)], cli)
}

/// One table of the configuration file in a [`resolve_layers`] stack.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// The table: a section (`producer`) or the dotted path of a subsection
    /// (`producer.replay`).
    pub section: &'a str,
    /// Only these keys of the table are taken (`None`: all of them, and an unknown key is
    /// an error). For a table of keys shared by several subsections; check its other keys
    /// with [`ConfigFile::check_keys`].
    pub only: Option<&'a [&'a str]>,
}

impl<'a> Layer<'a> {
    /// Every key of `section`.
    pub fn section(section: &'a str) -> Layer<'a> {
        Layer {
            section,
            only: None,
        }
    }

    /// Only the keys `keys` of `section`.
    pub fn only(section: &'a str, keys: &'a [&'a str]) -> Layer<'a> {
        Layer {
            section,
            only: Some(keys),
        }
    }
}

/// Like [`resolve`] with several tables of the file, later ones overriding earlier ones:
/// `S::default()` < `layers[0]` < `layers[1]` < ... < `cli`. Errors name the file, the
/// line and the table the bad key is in.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use gpustream_runtime::config::{ConfigFile, Layer, resolve_layers};
///
/// #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
/// #[serde(deny_unknown_fields, default)]
/// struct Replay { topic: String, speed: f64 }
///
/// #[derive(Serialize)]
/// struct NoFlags {}
///
/// let file = ConfigFile::parse(
///     "/c.toml",
///     "[producer]\ntopic = \"shared\"\n\n[producer.replay]\nspeed = 2.0\n",
/// ).unwrap();
/// let layers = [Layer::only("producer", &["topic"]), Layer::section("producer.replay")];
/// let s: Replay = resolve_layers(Some(&file), &layers, &NoFlags {}).unwrap();
/// assert_eq!(s, Replay { topic: "shared".into(), speed: 2.0 });
///
/// let typo = ConfigFile::parse("/c.toml", "[producer.replay]\nsped = 2.0\n").unwrap();
/// let err = resolve_layers::<Replay>(Some(&typo), &layers, &NoFlags {}).unwrap_err();
/// assert_eq!(err.to_string(), "/c.toml:2: [producer.replay] unknown key `sped` (did you mean `speed`?)");
/// ```
pub fn resolve_layers<S>(
    file: Option<&ConfigFile>,
    layers: &[Layer<'_>],
    cli: &impl Serialize,
) -> Result<S>
where
    S: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(S::default()));
    // Each table is its own provider, named so that an error can be traced to it.
    let mut names: Vec<(String, &str)> = Vec::new();
    if let Some(f) = file {
        for layer in layers {
            let name = format!(
                "configuration file {} [{}]",
                f.path().display(),
                layer.section
            );
            let mut table = f.section(layer.section);
            if let Some(keys) = layer.only {
                table.retain(|k, _| keys.contains(&k));
            }
            figment = figment.merge(FileSection {
                table,
                name: name.clone(),
            });
            names.push((name, layer.section));
        }
    }
    figment
        .merge(Serialized::defaults(cli))
        .extract::<S>()
        .map_err(|e| {
            let origin = e.metadata.as_ref().and_then(|m| {
                names
                    .iter()
                    .find(|(name, _)| *name == m.name)
                    .map(|(_, section)| *section)
            });
            let fallback = layers.last().map_or("", |l| l.section);
            describe(e, file, origin, fallback)
        })
}

/// One clear line for a figment error: where the bad value came from (file and line,
/// or the flag/environment), the key, and what is wrong with it. `origin` is the file's
/// table the value came from (`None`: not from the file); `section` names the settings
/// otherwise.
fn describe(
    e: figment::Error,
    file: Option<&ConfigFile>,
    origin: Option<&str>,
    section: &str,
) -> Error {
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
    match (origin, file) {
        (Some(table), Some(f)) => {
            let mut keys: Vec<&str> = table.split('.').collect();
            keys.extend(e.path.iter().map(String::as_str));
            if let figment::error::Kind::UnknownField(name, _) = &e.kind
                && keys.last() != Some(&name.as_str())
            {
                keys.push(name);
            }
            Error::ConfigFile {
                location: f.location_of(&keys),
                message: format!("[{table}] {message}"),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Mode {
        topic: String,
        partitions: u32,
        #[serde(with = "serde_duration")]
        poll: Duration,
    }

    impl Default for Mode {
        fn default() -> Self {
            Mode {
                topic: "default".into(),
                partitions: 4,
                poll: Duration::from_millis(250),
            }
        }
    }

    #[derive(Serialize, Default)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        partitions: Option<u32>,
    }

    const SHARED: &[&str] = &["topic", "partitions"];

    fn layers() -> [Layer<'static>; 2] {
        [
            Layer::only("producer", SHARED),
            Layer::section("producer.one"),
        ]
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse("/g.toml", text).expect("valid toml")
    }

    #[test]
    fn subsection_over_shared_table_over_defaults_under_flags() {
        let f = file(
            "[producer]\ntopic = \"shared\"\npartitions = 2\n[producer.one]\npartitions = 3\npoll = \"1s\"\n[producer.two]\npartitions = 9\n",
        );
        let m: Mode = resolve_layers(Some(&f), &layers(), &Flags::default()).expect("valid");
        assert_eq!(
            m,
            Mode {
                topic: "shared".into(),
                partitions: 3,
                poll: Duration::from_secs(1)
            }
        );
        let flags = Flags {
            partitions: Some(7),
        };
        let m: Mode = resolve_layers(Some(&f), &layers(), &flags).expect("valid");
        assert_eq!(m.partitions, 7, "flag over the subsection");
        let m: Mode = resolve_layers(None, &layers(), &Flags::default()).expect("no file");
        assert_eq!(m, Mode::default());
    }

    #[test]
    fn errors_name_the_table_and_line_they_come_from() {
        let f = file("[producer]\ntopic = 5\n[producer.one]\npoll = \"1s\"\n");
        let err = resolve_layers::<Mode>(Some(&f), &layers(), &Flags::default())
            .expect_err("wrong type in the shared table")
            .to_string();
        assert!(err.starts_with("/g.toml:2: [producer] `topic`: "), "{err}");
        let f = file("[producer]\ntopic = \"t\"\n[producer.one]\npoll = \"soon\"\n");
        let err = resolve_layers::<Mode>(Some(&f), &layers(), &Flags::default())
            .expect_err("bad duration in the subsection")
            .to_string();
        assert!(
            err.starts_with("/g.toml:4: [producer.one] `poll`: "),
            "{err}"
        );
        assert!(err.contains("not a duration"), "{err}");
        let f = file("[producer.one]\n\npartitons = 3\n");
        let err = resolve_layers::<Mode>(Some(&f), &layers(), &Flags::default())
            .expect_err("typo in the subsection")
            .to_string();
        assert_eq!(
            err,
            "/g.toml:3: [producer.one] unknown key `partitons` (did you mean `partitions`?)"
        );
        // A key of the shared table that this mode does not take is not read here.
        let f = file("[producer]\nhost = \"h\"\n");
        resolve_layers::<Mode>(Some(&f), &layers(), &Flags::default()).expect("not taken");
    }
}
