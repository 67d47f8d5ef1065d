//! The test's InfluxDB database: created per test, queried, dropped.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Env;

/// A client for one database of the test InfluxDB.
pub(crate) struct Influx {
    pub(crate) http: reqwest::Client,
    url: String,
    db: String,
}

impl Influx {
    pub(crate) async fn query(&self, q: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}/query", self.url))
            .query(&[("db", self.db.as_str()), ("epoch", "ns")])
            .form(&[("q", q)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("query {q}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "query {q}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("query {q}: {e}: {text}"))
    }

    /// `values` of the first series of the first statement (empty when no data).
    pub(crate) async fn rows(&self, q: &str) -> Vec<Vec<Value>> {
        let v = self.query(q).await;
        if let Some(err) = v["results"][0]["error"].as_str() {
            panic!("query {q}: {err}");
        }
        v["results"][0]["series"][0]["values"]
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r.as_array().cloned()).collect())
            .unwrap_or_default()
    }

    pub(crate) async fn count(&self, q: &str) -> u64 {
        self.rows(q)
            .await
            .first()
            .and_then(|r| r.get(1))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    pub(crate) async fn wait_count(&self, q: &str, want: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.count(q).await;
            if got == want {
                return;
            }
            assert!(got < want, "{q}: {got} > {want}");
            assert!(
                Instant::now() < deadline,
                "{q}: {got} after {secs} s, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Drops the test's database; a failure is left for the server to clean up.
    pub(crate) async fn drop_database(&self) {
        let _ = self.query(&format!("DROP DATABASE \"{}\"", self.db)).await;
    }
}

/// InfluxQL single-quoted string literal.
pub(crate) fn ql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Creates database `db` on the test InfluxDB and returns a client for it.
pub(crate) async fn new_database(env: &Env, db: &str) -> Influx {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    create_database(&http, &env.influx_url, db).await;
    Influx {
        http,
        url: env.influx_url.clone(),
        db: db.to_string(),
    }
}

async fn create_database(http: &reqwest::Client, url: &str, db: &str) {
    let resp = http
        .post(format!("{url}/query"))
        .form(&[("q", format!("CREATE DATABASE \"{db}\""))])
        .send()
        .await
        .expect("create database");
    assert!(
        resp.status().is_success(),
        "create database: {}",
        resp.status()
    );
}
