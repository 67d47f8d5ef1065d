//! InfluxQL queries against the test InfluxDB (what the dashboards and the sink tests
//! read back).

/// Runs `q` on database `db`; returns the HTTP status and the JSON answer (`Null` when
/// the body is not JSON or nothing answered).
pub async fn query(url: &str, db: &str, q: &str) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let Ok(resp) = client
        .post(format!("{url}/query"))
        .query(&[("db", db)])
        .form(&[("q", q)])
        .send()
        .await
    else {
        return (0, serde_json::Value::Null);
    };
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// The first value of the first series of `q`'s answer as an integer (e.g. a
/// `SELECT count(...)`), 0 when there is none.
pub async fn first_value(url: &str, db: &str, q: &str) -> u64 {
    let (_, v) = query(url, db, q).await;
    v["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}
