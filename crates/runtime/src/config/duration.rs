//! Durations as people write them: `500ms`, `5s`, `2m`, `1h`, `3d`, `1h 30m`, or a bare
//! number of seconds; serde helpers so every configuration file and flag reads them the
//! same way.

use std::time::Duration;

/// Parses a duration: `500ms`, `5s`, `2m`, `1h`, `3d` (a bare number is seconds), or any
/// compound humantime form such as `1h 30m`.
///
/// ```
/// use std::time::Duration;
/// use gpustream_runtime::config::parse_duration;
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
/// assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let simple = num.parse::<f64>().ok().and_then(|value| {
        let secs = match unit.trim() {
            "ms" => value / 1000.0,
            "" | "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86400.0,
            _ => return None,
        };
        Duration::try_from_secs_f64(secs).ok()
    });
    match simple {
        Some(d) => Ok(d),
        None => humantime::parse_duration(t)
            .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 5s, 2m, 1h, 1h 30m)")),
    }
}

/// Formats a duration the way [`parse_duration`] reads it back (`500ms`, `10s`, `1h`).
///
/// ```
/// use std::time::Duration;
/// use gpustream_runtime::config::format_duration;
/// assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
/// assert_eq!(format_duration(Duration::from_secs(90)), "1m 30s");
/// ```
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `#[serde(with = "gpustream_runtime::config::duration")]` for a [`Duration`] field.
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as text (`500ms`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    /// Reads `500ms`-style text, or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            S(String),
            F(f64),
        }
        match Text::deserialize(d)? {
            Text::S(s) => super::parse_duration(&s).map_err(serde::de::Error::custom),
            Text::F(secs) => Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom),
        }
    }
}

/// `#[serde(with = ...)]` for an `Option<Duration>` field.
pub mod serde_opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as text, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::serde_duration")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}
