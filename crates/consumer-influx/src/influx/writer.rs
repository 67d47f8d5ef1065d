//! Sends line-protocol batches: gzip, the request with its credentials, retries until
//! InfluxDB answers for good or the caller gives up.

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use gpustream_runtime::service::Health;
use reqwest::{StatusCode, Url};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{Credentials, InfluxConfig, Token, write_url};
use super::retry::{Backoff, Disposition, RetryPolicy, classify_status};
use crate::error::{Error, Result};
use crate::stats::SinkMetrics;

/// Gzip-compresses a batch body (fast level: the network is rarely the bottleneck here).
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 6 + 64), Compression::fast());
    enc.write_all(data).map_err(Error::Compress)?;
    enc.finish().map_err(Error::Compress)
}

/// InfluxDB's final answer to one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every point was written.
    Accepted,
    /// The server refused the batch with a status no retry can fix (400 malformed line
    /// or field-type conflict, 413 too large, ...). InfluxDB 1.x may still have written
    /// the batch's valid points; writing them again is harmless (same series and time).
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

enum Attempt {
    Accepted,
    Rejected { status: StatusCode, message: String },
    Retry(String),
}

/// Writes line-protocol batches to the v1 or v2 write endpoint.
pub struct InfluxWriter {
    client: reqwest::Client,
    write_url: Url,
    credentials: Option<Credentials>,
    token: Option<Token>,
    retry: RetryPolicy,
    metrics: SinkMetrics,
    health: Health,
}

impl InfluxWriter {
    /// A writer for `config`; updates `metrics` and marks `health` failed while writes fail.
    pub fn new(config: &InfluxConfig, metrics: SinkMetrics, health: Health) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(InfluxWriter {
            client,
            write_url: write_url(&config.url, &config.api)?,
            credentials: config.credentials.clone(),
            token: config.token.clone(),
            retry: config.retry,
            metrics,
            health,
        })
    }

    /// The URL batches are posted to.
    pub fn url(&self) -> &Url {
        &self.write_url
    }

    /// Writes one batch of `points` lines, retrying transient failures with backoff until
    /// it is written, rejected, `abort` is cancelled or `deadline` passes.
    ///
    /// Returns the outcome once InfluxDB answered for good (a rejection is not an
    /// error: the caller decides what to do with the refused points), or
    /// [`Error::WriteAbandoned`].
    pub async fn write(
        &self,
        lines: &str,
        points: usize,
        abort: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<WriteOutcome> {
        let body = Bytes::from(gzip(lines.as_bytes())?);
        self.write_gzipped(body, points, abort, deadline).await
    }

    /// [`InfluxWriter::write`] for a body already gzip-compressed (the pipeline compresses
    /// a batch while the previous one is in flight).
    pub async fn write_gzipped(
        &self,
        body: Bytes,
        points: usize,
        abort: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<WriteOutcome> {
        let mut backoff = Backoff::new(self.retry);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match self.attempt(body.clone()).await {
                Attempt::Accepted => {
                    self.health.ok("influxdb");
                    self.metrics.points_written.inc_by(points as u64);
                    self.metrics.batches_written.inc();
                    if attempt > 1 {
                        tracing::info!(attempt, points, "InfluxDB write succeeded after retries");
                    }
                    return Ok(WriteOutcome::Accepted);
                }
                Attempt::Rejected { status, message } => {
                    self.health.ok("influxdb");
                    self.metrics.write_errors.inc();
                    tracing::debug!(
                        status = status.as_u16(),
                        points,
                        error = %message,
                        "InfluxDB refused the batch"
                    );
                    return Ok(WriteOutcome::Rejected {
                        status: status.as_u16(),
                        message,
                    });
                }
                Attempt::Retry(reason) => {
                    self.metrics.write_errors.inc();
                    self.health
                        .fail("influxdb", format!("writes failing: {reason}"));
                    let now = Instant::now();
                    if abort.is_cancelled() || deadline.is_some_and(|d| now >= d) {
                        return Err(Error::WriteAbandoned {
                            points,
                            last_error: reason,
                        });
                    }
                    let mut delay = backoff.next_delay();
                    if let Some(d) = deadline {
                        delay = delay.min(d.saturating_duration_since(now));
                    }
                    tracing::warn!(
                        attempt,
                        points,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %reason,
                        "InfluxDB write failed; retrying"
                    );
                    self.metrics.write_retries.inc();
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = abort.cancelled() => {
                            return Err(Error::WriteAbandoned { points, last_error: reason });
                        }
                    }
                }
            }
        }
    }

    async fn attempt(&self, body: Bytes) -> Attempt {
        let mut req = self
            .client
            .post(self.write_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(Token(token)) = &self.token {
            req = req.header(reqwest::header::AUTHORIZATION, format!("Token {token}"));
        } else if let Some(c) = &self.credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(describe_reqwest_error(&e)),
        };
        let status = resp.status();
        let disposition = classify_status(status);
        if disposition == Disposition::Success {
            return Attempt::Accepted;
        }
        let message = match resp.text().await {
            Ok(text) => error_message(&text),
            Err(e) => format!("(no body: {})", describe_reqwest_error(&e)),
        };
        match disposition {
            Disposition::Reject => Attempt::Rejected { status, message },
            _ => Attempt::Retry(format!("HTTP {status}: {message}")),
        }
    }
}

/// A reqwest error with its causes (reqwest's own message is often just "error sending
/// request"); never contains credentials, which travel in a header.
fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// InfluxDB's `{"error": "..."}` message, else the body itself, at most 2 000 characters.
fn error_message(body: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    match msg.char_indices().nth(2000) {
        Some((i, _)) => format!("{}...", &msg[..i]),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_prefers_influx_json() {
        assert_eq!(
            error_message("{\"error\":\"database not found: \\\"x\\\"\"}\n"),
            "database not found: \"x\""
        );
        assert_eq!(error_message(" plain text \n"), "plain text");
        assert!(error_message(&"x".repeat(5000)).len() < 2100);
    }

    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

    /// An HTTP server answering one request per connection with `responses` in turn (the
    /// last one repeats); records each request's head and gunzipped body.
    async fn mock_influx(responses: Vec<(u16, &'static str)>) -> (String, Seen) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Seen::default();
        let record = seen.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let request = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break Some((head, buf[end + 4..end + 4 + len].to_vec()));
                    }
                };
                let Some((head, body)) = request else {
                    continue;
                };
                let mut text = String::new();
                use std::io::Read as _;
                let _ = flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text);
                record.lock().expect("lock").push((head, text));
                let (code, body) = responses[i.min(responses.len() - 1)];
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (url, seen)
    }

    fn writer(url: &str, metrics: &SinkMetrics, health: &Health) -> InfluxWriter {
        let mut config = InfluxConfig::new(url, "gpu");
        config.credentials = Some(Credentials {
            username: "writer".into(),
            password: "pw".into(),
        });
        config.request_timeout = Duration::from_secs(5);
        config.retry = RetryPolicy {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
        };
        InfluxWriter::new(&config, metrics.clone(), health.clone()).expect("writer")
    }

    const LINES: &str = "gpu_samples,host=a seq=1i 1\ngpu_samples,host=a seq=2i 2\n";

    #[tokio::test]
    async fn transient_failures_are_retried_until_written() {
        let (url, seen) = mock_influx(vec![
            (503, "{\"error\":\"busy\"}"),
            (429, ""),
            (500, "oops"),
            (204, ""),
        ])
        .await;
        let metrics = SinkMetrics::unregistered().expect("metrics");
        let health = Health::default();
        let w = writer(&url, &metrics, &health);
        let out = w
            .write(LINES, 2, &CancellationToken::new(), None)
            .await
            .expect("written");
        assert_eq!(out, WriteOutcome::Accepted);
        assert_eq!(metrics.write_retries.get(), 3);
        assert_eq!(metrics.write_errors.get(), 3);
        assert_eq!(metrics.points_written.get(), 2);
        assert!(health.problem().is_none());
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 4);
        let (head, body) = &seen[3];
        assert!(
            head.starts_with("POST /write?db=gpu&precision=ns HTTP/1.1"),
            "{head}"
        );
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("content-encoding: gzip"), "{head}");
        // base64("writer:pw")
        assert!(head.contains("Basic d3JpdGVyOnB3"), "{head}");
        assert_eq!(body, LINES);
    }

    #[tokio::test]
    async fn bad_data_is_rejected_without_retry() {
        let (url, seen) = mock_influx(vec![(
            400,
            "{\"error\":\"partial write: field type conflict: input field \\\"seq\\\" dropped=1\"}",
        )])
        .await;
        let metrics = SinkMetrics::unregistered().expect("metrics");
        let w = writer(&url, &metrics, &Health::default());
        let out = w
            .write(LINES, 2, &CancellationToken::new(), None)
            .await
            .expect("answered");
        match out {
            WriteOutcome::Rejected { status, message } => {
                assert_eq!(status, 400);
                assert!(message.contains("field type conflict"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(metrics.points_written.get(), 0);
        assert_eq!(metrics.write_retries.get(), 0);
        assert_eq!(seen.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn missing_database_is_retried_and_marks_health() {
        let (url, _seen) = mock_influx(vec![(
            404,
            "{\"error\":\"database not found: \\\"gpu\\\"\"}",
        )])
        .await;
        let metrics = SinkMetrics::unregistered().expect("metrics");
        let health = Health::default();
        let w = writer(&url, &metrics, &health);
        let deadline = Instant::now() + Duration::from_millis(300);
        let err = w
            .write(LINES, 2, &CancellationToken::new(), Some(deadline))
            .await
            .expect_err("never written");
        match err {
            Error::WriteAbandoned { points, last_error } => {
                assert_eq!(points, 2);
                assert!(last_error.contains("database not found"), "{last_error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(metrics.write_retries.get() >= 2);
        assert!(health.problem().is_some_and(|p| p.contains("404")));
        assert_eq!(metrics.points_rejected.get(), 0);
    }

    #[tokio::test]
    async fn abort_stops_retrying_connection_errors() {
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}", l.local_addr().expect("addr"))
        };
        let metrics = SinkMetrics::unregistered().expect("metrics");
        let w = writer(&dead, &metrics, &Health::default());
        let abort = CancellationToken::new();
        let trigger = abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let result = tokio::time::timeout(Duration::from_secs(10), w.write(LINES, 2, &abort, None))
            .await
            .expect("write returns after abort");
        assert!(
            matches!(result, Err(Error::WriteAbandoned { .. })),
            "{result:?}"
        );
        assert!(metrics.write_errors.get() >= 1);
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let data = "gpu_samples,host=a seq=1i 1\n".repeat(100);
        let gz = gzip(data.as_bytes()).expect("compresses");
        assert!(gz.len() < data.len());
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut back)
            .expect("decompresses");
        assert_eq!(back, data);
    }
}
