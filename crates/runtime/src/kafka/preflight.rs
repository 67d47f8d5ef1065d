//! The start-up check: before a binary starts working it connects to the brokers once,
//! so a wrong password, an untrusted certificate or an unreachable broker ends the run
//! with one clear line naming the setting to check, within a bounded time, instead of
//! librdkafka retrying in the background forever.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaSettings;
use super::context::Context;
use crate::error::{Error, Result};

/// Connects to the brokers and reads the cluster metadata, at most `timeout`.
///
/// Fails at once on an authentication or TLS error, and after `timeout` when no broker
/// answers; the error says which settings to check.
pub async fn preflight(settings: &KafkaSettings, timeout: Duration) -> Result<()> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || check(&settings, timeout))
        .await
        .map_err(|e| Error::Connect(format!("start-up check did not finish: {e}")))?
}

fn check(settings: &KafkaSettings, timeout: Duration) -> Result<()> {
    let context = Context::quiet();
    let consumer: BaseConsumer<Context> = settings
        .client_config()
        // Fail as soon as librdkafka gives up on a broker, not after its own retries.
        .set("reconnect.backoff.max.ms", "1000")
        .create_with_context(context.clone())
        .map_err(|e| Error::Connect(explain_config_error(&e)))?;
    let deadline = Instant::now() + timeout;
    loop {
        let step =
            Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now()));
        match consumer.fetch_metadata(None, step) {
            Ok(_) => return Ok(()),
            Err(e) => {
                drain_events(&consumer);
                if let Some((err, reason)) = context.last_error()
                    && let Some(message) = fatal(settings, Some(&err), &reason)
                {
                    return Err(Error::Connect(message));
                }
                if let Some(line) = context.last_log()
                    && let Some(message) = fatal(settings, None, &line)
                {
                    return Err(Error::Connect(message));
                }
                if Instant::now() >= deadline {
                    let cause = context
                        .last_error()
                        .map_or_else(|| e.to_string(), |(_, reason)| reason);
                    return Err(Error::Connect(format!(
                        "no broker of `{}` answered within {timeout:?} ({cause}); check brokers and security.protocol (now {})",
                        settings.brokers,
                        settings.security_protocol()
                    )));
                }
            }
        }
    }
}

/// Serves the queued log and error events, so the context sees them: one zero-timeout
/// poll serves at most one event (and says nothing of whether more wait), and a failed
/// handshake queues several.
fn drain_events(consumer: &BaseConsumer<Context>) {
    for _ in 0..64 {
        let _ = consumer.poll(Duration::ZERO);
    }
}

/// An error no retry can fix, explained with the settings to check.
fn fatal(settings: &KafkaSettings, err: Option<&KafkaError>, reason: &str) -> Option<String> {
    let code = err.and_then(KafkaError::rdkafka_error_code);
    let lower = reason.to_ascii_lowercase();
    // The server refused our certificate (or wanted one): reported as a transport
    // error after the handshake, so recognised by OpenSSL's alert text.
    if lower.contains("certificate required")
        || lower.contains("alert bad certificate")
        || lower.contains("alert unknown ca")
        || lower.contains("alert certificate")
    {
        return Some(format!(
            "TLS to `{}` failed: {} — the broker wants a client certificate it trusts: check ssl.certificate.location and ssl.key.location",
            settings.brokers,
            first_line(reason)
        ));
    }
    if code == Some(RDKafkaErrorCode::Authentication) || lower.contains("sasl authentication") {
        return Some(format!(
            "authentication to `{}` failed: {} — check sasl.mechanism, sasl.username and GPUSTREAM_KAFKA_SASL_PASSWORD",
            settings.brokers,
            first_line(reason)
        ));
    }
    if code == Some(RDKafkaErrorCode::SSL) || lower.contains("ssl handshake failed") {
        let hint = if lower.contains("certificate verify failed") {
            "the broker's certificate is not trusted: check ssl.ca.location"
        } else {
            "check security.protocol and the ssl.* settings"
        };
        return Some(format!(
            "TLS to `{}` failed: {} — {hint}",
            settings.brokers,
            first_line(reason)
        ));
    }
    if lower.contains("sasl") && lower.contains("mechanism") {
        return Some(format!(
            "SASL to `{}` failed: {} — check sasl.mechanism",
            settings.brokers,
            first_line(reason)
        ));
    }
    None
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// A property librdkafka refused when the client was created (unknown name, bad value,
/// a feature this build lacks).
fn explain_config_error(e: &KafkaError) -> String {
    format!("invalid client settings: {e} (see `-X` and the [kafka] section)")
}
