//! Configuration files: every binary reads flags, then `GPUSTREAM_*` env vars, then an
//! optional TOML file, with the same names everywhere (`--influx-url`,
//! `GPUSTREAM_INFLUX_URL`, `influx_url = ...`).

use crate::error::{Error, Result};

/// Prefix of every environment variable the binaries read.
pub const ENV_PREFIX: &str = "GPUSTREAM_";

/// Env var name for a flag / config key: `influx-url` → `GPUSTREAM_INFLUX_URL`.
///
/// ```
/// assert_eq!(gpustream::config::env_name("influx-url"), "GPUSTREAM_INFLUX_URL");
/// ```
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('-', "_").to_ascii_uppercase())
}

/// Finds `--config FILE` (or `--config=FILE`) in the arguments, else `GPUSTREAM_CONFIG`.
pub fn config_path_from_args(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(v.to_string());
        }
    }
    std::env::var(env_name("config")).ok()
}

/// Reads a TOML file of `key = value` pairs into `(ENV_NAME, value)` pairs.
///
/// Nested tables are flattened with `_` (`[kafka] brokers` → `GPUSTREAM_KAFKA_BROKERS`),
/// arrays become comma-separated lists.
pub fn read_config_file(path: &str) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| Error::Config {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    flatten("", &table, &mut out);
    Ok(out)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}_{k}")
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
        out.push((env_name(&key), text));
    }
}

/// Makes the config file's values visible to clap as env-var fallbacks.
///
/// Precedence is flags > environment > file: a variable already set is left alone.
/// Call this first thing in `main`, before any thread is started.
pub fn load_config_file_into_env() -> Result<Option<String>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = config_path_from_args(&args) else {
        return Ok(None);
    };
    for (name, value) in read_config_file(&path)? {
        if std::env::var_os(&name).is_none() {
            // SAFETY: called at the start of `main`, before any other thread exists.
            unsafe { std::env::set_var(&name, value) };
        }
    }
    Ok(Some(path))
}

/// Reads a secret from `NAME` or from the file named by `NAME_FILE` (trailing newline trimmed).
pub fn secret_from_env(name: &str) -> Result<Option<String>> {
    if let Ok(v) = std::env::var(name) {
        return Ok(Some(v));
    }
    let file_var = format!("{name}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|e| Error::Config {
                path,
                reason: e.to_string(),
            }),
        Err(_) => Ok(None),
    }
}

/// Parses a duration like `500ms`, `5s`, `2m`, `1h`, `3d` (a bare number is seconds).
///
/// ```
/// use std::time::Duration;
/// use gpustream::config::parse_duration;
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
/// assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 5s, 2m, 1h)"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}` (use ms, s, m, h, d)"
            ));
        }
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_tables_and_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "brokers = \"a:1\"\nspeed = 2.5\n[influx]\nurl = \"http://x\"\nhosts = [\"a\", \"b\"]\n").unwrap();
        let mut got = read_config_file(p.to_str().unwrap()).unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("GPUSTREAM_BROKERS".into(), "a:1".into()),
                ("GPUSTREAM_INFLUX_HOSTS".into(), "a,b".into()),
                ("GPUSTREAM_INFLUX_URL".into(), "http://x".into()),
                ("GPUSTREAM_SPEED".into(), "2.5".into()),
            ]
        );
    }

    #[test]
    fn bad_toml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "brokers = ").unwrap();
        let err = read_config_file(p.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml"), "{err}");
    }

    #[test]
    fn config_flag_is_found() {
        let args = vec!["x".to_string(), "--config=/a.toml".to_string()];
        assert_eq!(config_path_from_args(&args).as_deref(), Some("/a.toml"));
        let args = vec![
            "x".to_string(),
            "--config".to_string(),
            "/b.toml".to_string(),
        ];
        assert_eq!(config_path_from_args(&args).as_deref(), Some("/b.toml"));
    }
}
