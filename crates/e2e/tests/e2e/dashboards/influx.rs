//! Talking to InfluxDB's `/query` and reading its answers.

use serde_json::Value;

/// Sends one InfluxQL query (`epoch=ms`); the HTTP status and the body.
pub(super) async fn query(client: &reqwest::Client, url: &str, db: &str, q: &str) -> (u16, String) {
    let r = client
        .get(format!("{url}/query"))
        .query(&[("db", db), ("q", q), ("epoch", "ms")])
        .send()
        .await
        .expect("InfluxDB reachable");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Sends a statement that changes the server (`CREATE DATABASE`), which InfluxDB takes
/// only by POST.
pub(super) async fn manage(
    client: &reqwest::Client,
    url: &str,
    statement: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{url}/query"))
        .query(&[("q", statement)])
        .send()
        .await
}

/// A single number from `SELECT count(...)`, 0 when there is no series.
pub(super) async fn count(client: &reqwest::Client, url: &str, db: &str, q: &str) -> u64 {
    let (_, body) = query(client, url, db, q).await;
    first_result_rows(&body)
        .first()
        .and_then(|row| row[1].as_u64())
        .unwrap_or(0)
}

/// Checks an InfluxDB `/query` answer: HTTP 200, no `error` anywhere, at least one series
/// with at least one row holding a non-null value besides `time`. Returns the rows with
/// data, or why it failed.
pub(super) fn check_answer(status: u16, body: &str) -> Result<usize, String> {
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {body}"))?;
    if let Some(e) = v.get("error") {
        return Err(format!("error: {e}"));
    }
    let results = v["results"]
        .as_array()
        .ok_or_else(|| format!("no results: {body}"))?;
    let mut rows = 0;
    for r in results {
        if let Some(e) = r.get("error") {
            return Err(format!("error: {e}"));
        }
        for s in r["series"].as_array().into_iter().flatten() {
            let columns: Vec<&str> = s["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for row in s["values"].as_array().into_iter().flatten() {
                let has_value = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .any(|(i, x)| columns.get(i) != Some(&"time") && !x.is_null());
                if has_value {
                    rows += 1;
                }
            }
        }
    }
    if rows == 0 {
        return Err(format!("no data: {body}"));
    }
    Ok(rows)
}

/// Values of a `SHOW TAG VALUES` answer.
pub(super) fn tag_values(body: &str) -> Vec<String> {
    first_result_rows(body)
        .iter()
        .filter_map(|row| row.get(1).and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The rows of every series of the first statement's result of a `/query` answer, empty
/// when it has none (or is not JSON).
pub(super) fn first_result_rows(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .collect()
}
