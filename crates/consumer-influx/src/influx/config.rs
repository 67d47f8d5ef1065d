//! Where and how to write: the server, the write API and its target, credentials.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::retry::RetryPolicy;
use crate::error::{Error, Result};

/// InfluxDB user name and password, sent as HTTP basic auth. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An API token (`Authorization: Token ...`). `Debug` never shows it.
#[derive(Clone)]
pub struct Token(pub String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Which write API, and where in it, points go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteApi {
    /// `POST /write?db=DATABASE` (InfluxDB 1.x, and 3.x's v1 compatibility API).
    V1 {
        /// Database name.
        database: String,
    },
    /// `POST /api/v2/write?org=ORG&bucket=BUCKET` (InfluxDB 2.x and 3.x, VictoriaMetrics).
    V2 {
        /// Organisation (2.x needs it; 3.x and VictoriaMetrics ignore it).
        org: String,
        /// Bucket (3.x: the database).
        bucket: String,
    },
}

/// Where and how to write.
#[derive(Debug, Clone)]
pub struct InfluxConfig {
    /// Base URL, e.g. `http://127.0.0.1:8086` (a path prefix is kept).
    pub url: String,
    /// API and target database or bucket.
    pub api: WriteApi,
    /// Optional basic-auth credentials (InfluxDB 1.x users).
    pub credentials: Option<Credentials>,
    /// Optional API token, sent as `Authorization: Token ...` (InfluxDB 2.x/3.x); takes
    /// precedence over `credentials`.
    pub token: Option<Token>,
    /// Timeout of one write request.
    pub request_timeout: Duration,
    /// Backoff between retries.
    pub retry: RetryPolicy,
}

impl InfluxConfig {
    /// A v1-API configuration (`/write?db=`) with default timeout and retry policy.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        Self::with_api(
            url,
            WriteApi::V1 {
                database: database.into(),
            },
        )
    }

    /// A v2-API configuration (`/api/v2/write?org=&bucket=`) with default timeout and
    /// retry policy; set [`InfluxConfig::token`] for servers that check it.
    pub fn v2(url: impl Into<String>, org: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self::with_api(
            url,
            WriteApi::V2 {
                org: org.into(),
                bucket: bucket.into(),
            },
        )
    }

    fn with_api(url: impl Into<String>, api: WriteApi) -> Self {
        InfluxConfig {
            url: url.into(),
            api,
            credentials: None,
            token: None,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

/// Builds `{base}/write?db=..&precision=ns` (v1) or
/// `{base}/api/v2/write?org=..&bucket=..&precision=ns` (v2), keeping any path prefix of
/// `base`.
pub fn write_url(base: &str, api: &WriteApi) -> Result<Url> {
    let mut url =
        Url::parse(base).map_err(|e| Error::Config(format!("InfluxDB URL `{base}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "InfluxDB URL `{base}`: scheme must be http or https"
        )));
    }
    let mut segments = url
        .path_segments_mut()
        .map_err(|()| Error::Config(format!("InfluxDB URL `{base}` cannot have a path")))?;
    segments.pop_if_empty();
    match api {
        WriteApi::V1 { .. } => segments.push("write"),
        WriteApi::V2 { .. } => segments.extend(["api", "v2", "write"]),
    };
    drop(segments);
    url.set_query(None);
    match api {
        WriteApi::V1 { database } => {
            if database.is_empty() {
                return Err(Error::Config("InfluxDB database name is empty".into()));
            }
            url.query_pairs_mut().append_pair("db", database);
        }
        WriteApi::V2 { org, bucket } => {
            if bucket.is_empty() {
                return Err(Error::Config("InfluxDB bucket name is empty".into()));
            }
            url.query_pairs_mut()
                .append_pair("org", org)
                .append_pair("bucket", bucket);
        }
    }
    url.query_pairs_mut().append_pair("precision", "ns");
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_url_keeps_prefix_and_encodes_database() {
        let v1 = |db: &str| WriteApi::V1 {
            database: db.into(),
        };
        let u = write_url("http://127.0.0.1:8086", &v1("gpu")).expect("valid");
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8086/write?db=gpu&precision=ns"
        );
        let u = write_url("https://proxy.example/influx/", &v1("my db&x")).expect("valid");
        assert_eq!(
            u.as_str(),
            "https://proxy.example/influx/write?db=my+db%26x&precision=ns"
        );
        assert!(write_url("ftp://x", &v1("db")).is_err());
        assert!(write_url("not a url", &v1("db")).is_err());
        assert!(write_url("http://x", &v1("")).is_err());
    }

    #[test]
    fn v2_write_url_names_org_and_bucket() {
        let api = WriteApi::V2 {
            org: "my org".into(),
            bucket: "gpu/raw".into(),
        };
        let u = write_url("http://127.0.0.1:8086/", &api).expect("valid");
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8086/api/v2/write?org=my+org&bucket=gpu%2Fraw&precision=ns"
        );
        let empty = WriteApi::V2 {
            org: "o".into(),
            bucket: String::new(),
        };
        assert!(write_url("http://x", &empty).is_err());
    }

    #[test]
    fn token_debug_hides_the_token() {
        let mut c = InfluxConfig::v2("http://x", "o", "b");
        c.token = Some(Token("t0ps3cret".into()));
        assert!(!format!("{c:?}").contains("t0ps3cret"));
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials {
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
