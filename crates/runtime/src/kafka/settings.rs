//! How to reach and authenticate to the Kafka brokers: bootstrap servers plus any
//! librdkafka property, from the file's `[kafka]` section, `-X key=value` flags and,
//! for secrets only, the environment.
//!
//! ```toml
//! [kafka]
//! brokers = "b-1.msk.example:9096"
//! security.protocol = "SASL_SSL"
//! sasl.mechanism = "SCRAM-SHA-512"
//! sasl.username = "gpustream"
//! ssl.ca.location = "/etc/gpustream/ca.pem"
//! # sasl.password comes from GPUSTREAM_KAFKA_SASL_PASSWORD(_FILE), never from here
//! ```

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigFile, env_name, secret_from_env};
use crate::error::{Error, Result};

/// Properties whose values are secrets: accepted only from the environment (or a file
/// named by `<VAR>_FILE`), never logged, redacted when printed.
const SECRET_PROPERTIES: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.password",
    "ssl.key.pem",
    "ssl_key",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.config",
];

/// Whether a librdkafka property holds a secret.
///
/// ```
/// use gpustream_runtime::kafka::is_secret_property;
/// assert!(is_secret_property("sasl.password"));
/// assert!(is_secret_property("ssl.truststore.password"));
/// assert!(!is_secret_property("sasl.username"));
/// ```
pub fn is_secret_property(name: &str) -> bool {
    SECRET_PROPERTIES.contains(&name) || name.contains("password") || name.contains("secret")
}

/// Brokers and librdkafka properties of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSettings {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// librdkafka properties (`security.protocol`, `ssl.ca.location`, ...), secrets
    /// excluded.
    pub properties: BTreeMap<String, String>,
    /// Secret properties read from the environment: applied, never shown.
    #[serde(skip)]
    secrets: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// A plaintext connection to `brokers` with no other property.
    pub fn plaintext(brokers: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.to_string(),
            ..Default::default()
        }
    }

    /// The settings of a Kafka binary: the file's `[kafka]` section, then `-X`
    /// properties, then `--brokers` (flag or `GPUSTREAM_BROKERS`), then the secret
    /// properties from the environment (`GPUSTREAM_KAFKA_SASL_PASSWORD` for
    /// `sasl.password`, or `..._FILE`).
    ///
    /// A secret property in the file or in `-X` is an error naming where it came from
    /// and the environment variable to use instead.
    pub fn load(
        file: Option<&ConfigFile>,
        brokers_flag: Option<&str>,
        overrides: &[String],
        default_brokers: &str,
    ) -> Result<KafkaSettings> {
        let mut s = KafkaSettings {
            brokers: default_brokers.to_string(),
            ..Default::default()
        };
        // Where the brokers were set in the file, for an error about them.
        let mut from_file = None;
        if let Some(f) = file {
            let mut flat = BTreeMap::new();
            flatten("", &f.section("kafka"), &mut flat);
            for (key, value) in flat {
                if is_secret_property(&key) {
                    return Err(Error::ConfigFile {
                        location: f.location_of(&key_path(&key)),
                        message: secret_message(&key),
                    });
                }
                if key == "brokers" || key == "bootstrap.servers" {
                    s.brokers = value;
                    from_file = Some(f.location_of(&key_path(&key)));
                } else {
                    s.properties.insert(key, value);
                }
            }
        }
        for o in overrides {
            let Some((key, value)) = o.split_once('=') else {
                return Err(Error::Setting {
                    name: "-X".into(),
                    message: format!("`{o}` is not key=value (e.g. -X security.protocol=SSL)"),
                });
            };
            let key = key.trim();
            if is_secret_property(key) {
                return Err(Error::Setting {
                    name: format!("-X {key}"),
                    message: secret_message(key),
                });
            }
            if key == "bootstrap.servers" {
                s.brokers = value.to_string();
                from_file = None;
            } else {
                s.properties.insert(key.to_string(), value.to_string());
            }
        }
        if let Some(b) = brokers_flag {
            s.brokers = b.to_string();
            from_file = None;
        }
        if s.brokers.trim().is_empty()
            && let Some(location) = from_file
        {
            // Found by fuzzing (config_toml): the error did not name the file.
            return Err(Error::ConfigFile {
                location,
                message: "[kafka] `brokers` is empty: give HOST:PORT[,HOST:PORT...]".into(),
            });
        }
        if s.brokers.trim().is_empty() {
            return Err(Error::Setting {
                name: "brokers".into(),
                message: "no Kafka brokers given (--brokers, GPUSTREAM_BROKERS or [kafka] brokers)"
                    .into(),
            });
        }
        for name in SECRET_PROPERTIES {
            if let Some(v) = secret_from_env(&secret_env(name))? {
                s.secrets.insert((*name).to_string(), v);
            }
        }
        Ok(s)
    }

    /// A base client configuration: brokers, properties and secrets.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = super::base_config();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in self.properties.iter().chain(&self.secrets) {
            c.set(k, v);
        }
        c
    }

    /// Producer configuration: idempotent, `acks=all`, lz4, batched; properties given by
    /// the user win over these defaults.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = super::base_config();
        c.set("bootstrap.servers", &self.brokers);
        super::producer_defaults(&mut c);
        self.apply(&mut c);
        c
    }

    /// Consumer-group configuration (manual commits, earliest on a new group);
    /// properties given by the user win over these defaults.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = super::base_config();
        c.set("bootstrap.servers", &self.brokers);
        super::consumer_defaults(&mut c, group);
        self.apply(&mut c);
        c
    }

    fn apply(&self, c: &mut ClientConfig) {
        for (k, v) in self.properties.iter().chain(&self.secrets) {
            c.set(k, v);
        }
    }

    /// The security protocol in use (`plaintext` when unset).
    pub fn security_protocol(&self) -> String {
        self.properties
            .get("security.protocol")
            .map_or_else(|| "plaintext".to_string(), |p| p.to_ascii_lowercase())
    }

    /// Names of the secret properties set from the environment (values never shown).
    pub fn secret_names(&self) -> Vec<&str> {
        self.secrets.keys().map(String::as_str).collect()
    }

    /// Creates topics that do not exist yet (an existing topic is not an error).
    pub async fn ensure_topics(&self, topics: &[(&str, i32)]) -> Result<()> {
        super::create_topics(self.client_config(), &self.brokers, topics).await
    }

    /// The `[kafka]` section as TOML, secrets shown as `<redacted>`.
    pub fn to_toml_redacted(&self) -> String {
        let mut out = format!("[kafka]\nbrokers = {}\n", toml_string(&self.brokers));
        for (k, v) in &self.properties {
            out.push_str(&format!("{} = {}\n", toml_string(k), toml_string(v)));
        }
        for k in self.secrets.keys() {
            out.push_str(&format!(
                "# {} = <redacted> (from {})\n",
                toml_string(k),
                secret_env(k)
            ));
        }
        out
    }
}

/// `GPUSTREAM_KAFKA_SASL_PASSWORD` for `sasl.password`.
fn secret_env(property: &str) -> String {
    env_name(&format!("kafka.{property}"))
}

fn secret_message(property: &str) -> String {
    format!(
        "`{property}` is a secret and is not read from files or flags: set {} (or {}_FILE to a file holding it)",
        secret_env(property),
        secret_env(property)
    )
}

fn key_path(dotted: &str) -> Vec<&str> {
    std::iter::once("kafka").chain(dotted.split('.')).collect()
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Nested tables (TOML's dotted keys) back to librdkafka's dotted property names;
/// values as librdkafka reads them (`true`, `5000`, `a,b` for arrays).
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let text = match v {
            toml::Value::Table(t) => {
                flatten(&key, t, out);
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.insert(key, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse("/etc/g.toml", text).expect("valid toml")
    }

    /// Found by fuzzing (config_toml): empty brokers in the file gave an error that did
    /// not name the file.
    #[test]
    fn empty_brokers_in_the_file_name_the_file_and_line() {
        let f = file("[kafka]\nclient.id = \"x\"\nbrokers = \" \"\n");
        let err = KafkaSettings::load(Some(&f), None, &[], "127.0.0.1:9092")
            .expect_err("empty brokers")
            .to_string();
        assert!(err.starts_with("/etc/g.toml:3: "), "{err}");
        let s = KafkaSettings::load(Some(&f), Some("b:2"), &[], "x").expect("a flag wins");
        assert_eq!(s.brokers, "b:2");
    }

    #[test]
    fn file_then_overrides_then_flag() {
        let f = file(
            "[kafka]\nbrokers = \"a:1\"\nsecurity.protocol = \"SSL\"\n\"ssl.ca.location\" = \"/ca.pem\"\nsocket.keepalive.enable = true\n",
        );
        let s = KafkaSettings::load(
            Some(&f),
            None,
            &["security.protocol=SASL_SSL".into()],
            "127.0.0.1:9092",
        )
        .expect("settings");
        assert_eq!(s.brokers, "a:1");
        assert_eq!(s.properties["security.protocol"], "SASL_SSL");
        assert_eq!(s.properties["ssl.ca.location"], "/ca.pem");
        assert_eq!(s.properties["socket.keepalive.enable"], "true");
        let s = KafkaSettings::load(Some(&f), Some("b:2"), &[], "x").expect("settings");
        assert_eq!(s.brokers, "b:2");
    }

    #[test]
    fn secrets_are_refused_from_files_and_flags() {
        let f = file(
            "[kafka]\nbrokers = \"a:1\"\nsasl.username = \"u\"\nsasl.password = \"hunter2\"\n",
        );
        let err = KafkaSettings::load(Some(&f), None, &[], "x")
            .expect_err("secret in file")
            .to_string();
        assert!(err.starts_with("/etc/g.toml:4:"), "{err}");
        assert!(err.contains("GPUSTREAM_KAFKA_SASL_PASSWORD"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = KafkaSettings::load(None, None, &["ssl.key.password=p".into()], "x")
            .expect_err("secret in -X")
            .to_string();
        assert!(err.contains("GPUSTREAM_KAFKA_SSL_KEY_PASSWORD"), "{err}");
        let err = KafkaSettings::load(None, None, &["oops".into()], "x")
            .expect_err("not key=value")
            .to_string();
        assert!(err.contains("key=value"), "{err}");
    }

    #[test]
    fn printing_redacts_secrets() {
        let mut s = KafkaSettings::plaintext("a:1");
        s.secrets.insert("sasl.password".into(), "hunter2".into());
        let text = s.to_toml_redacted();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("sasl.password"), "{text}");
        assert!(s.client_config().get("sasl.password") == Some("hunter2"));
    }
}
