//! Alert routing: anomaly transitions to Alertmanager (`/api/v2/alerts`) and to a plain
//! JSON webhook, from a background task behind a bounded queue.
//!
//! The pipeline only ever calls [`Alerter::dispatch`], which never waits: when a
//! destination is slow or down, requests are retried with backoff in the background and,
//! once the queue is full, new transitions are dropped and counted
//! (`stream_processor_alerts_dropped_total`). The Kafka topic and the lake stay the
//! complete record; alerts are a notification path.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gpustream::{AnomalyEvent, AnomalyState};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// Where and how alerts are sent.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Alertmanager base URL (`http://host:9093`); alerts go to `<url>/api/v2/alerts`.
    pub alertmanager_url: Option<String>,
    /// URL that receives each batch of transitions as a JSON array of anomaly events.
    pub webhook_url: Option<String>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Attempts per batch and destination before it is given up (logged and counted).
    pub max_attempts: u32,
    /// Transitions that may wait for delivery; beyond, new ones are dropped.
    pub queue: usize,
    /// How often firing alerts are re-sent to Alertmanager, which resolves an alert on
    /// its own once its `endsAt` (4 resend intervals ahead) passes without news: so a
    /// processor that dies does not leave alerts firing forever.
    pub resend_interval: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            alertmanager_url: None,
            webhook_url: None,
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            queue: 10_000,
            resend_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Clone)]
struct AlertMetrics {
    sent: IntCounterVec,
    failed: IntCounterVec,
    dropped: IntCounter,
}

impl AlertMetrics {
    fn new(registry: Option<&Registry>) -> Result<AlertMetrics> {
        let prom = Error::Metrics;
        let m = AlertMetrics {
            sent: IntCounterVec::new(
                Opts::new(
                    "stream_processor_alerts_sent_total",
                    "Alert batches delivered, by destination",
                ),
                &["destination"],
            )
            .map_err(prom)?,
            failed: IntCounterVec::new(
                Opts::new(
                    "stream_processor_alerts_failed_total",
                    "Alert batches given up after every retry, by destination",
                ),
                &["destination"],
            )
            .map_err(prom)?,
            dropped: IntCounter::new(
                "stream_processor_alerts_dropped_total",
                "Anomaly transitions not queued for alerting because the queue was full",
            )
            .map_err(prom)?,
        };
        if let Some(r) = registry {
            r.register(Box::new(m.sent.clone())).map_err(prom)?;
            r.register(Box::new(m.failed.clone())).map_err(prom)?;
            r.register(Box::new(m.dropped.clone())).map_err(prom)?;
        }
        Ok(m)
    }
}

/// Handle the pipeline uses to hand transitions to the alert task.
pub struct Alerter {
    tx: mpsc::Sender<AnomalyEvent>,
    task: tokio::task::JoinHandle<()>,
    metrics: AlertMetrics,
}

impl Alerter {
    /// Starts the background task (on the current Tokio runtime); `None` when no
    /// destination is configured.
    pub fn start(cfg: AlertConfig, registry: Option<&Registry>) -> Result<Option<Alerter>> {
        if cfg.alertmanager_url.is_none() && cfg.webhook_url.is_none() {
            return Ok(None);
        }
        if cfg.queue == 0 || cfg.max_attempts == 0 {
            return Err(Error::Alerting(
                "alert queue and attempts must be at least 1".into(),
            ));
        }
        for url in [&cfg.alertmanager_url, &cfg.webhook_url]
            .into_iter()
            .flatten()
        {
            reqwest::Url::parse(url)
                .map_err(|e| Error::Alerting(format!("alert URL `{url}`: {e}")))?;
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| Error::Alerting(format!("HTTP client: {e}")))?;
        let metrics = AlertMetrics::new(registry)?;
        let (tx, rx) = mpsc::channel(cfg.queue);
        let worker = Worker {
            am_url: cfg
                .alertmanager_url
                .as_ref()
                .map(|u| format!("{}/api/v2/alerts", u.trim_end_matches('/'))),
            webhook_url: cfg.webhook_url.clone(),
            cfg,
            client,
            metrics: metrics.clone(),
            firing: HashMap::new(),
        };
        let task = tokio::spawn(worker.run(rx));
        Ok(Some(Alerter { tx, task, metrics }))
    }

    /// Queues transitions for delivery; never waits. Transitions that do not fit in the
    /// queue are dropped, logged and counted.
    pub fn dispatch(&self, events: &[AnomalyEvent]) {
        for e in events {
            if let Err(err) = self.tx.try_send(e.clone()) {
                self.metrics.dropped.inc();
                tracing::warn!(anomaly_id = %e.anomaly_id, rule = %e.rule, error = %err, "alert queue full: transition not alerted (it is still on the anomalies topic and in the lake)");
            }
        }
    }

    /// Stops taking transitions and waits up to `grace` for the queued ones to be sent.
    pub async fn finish(self, grace: Duration) {
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!(?grace, "alerts still undelivered at shutdown were dropped");
            task.abort();
        }
    }
}

struct Worker {
    cfg: AlertConfig,
    am_url: Option<String>,
    webhook_url: Option<String>,
    client: reqwest::Client,
    metrics: AlertMetrics,
    /// Alertmanager alerts currently firing, by anomaly id, for re-sending.
    firing: HashMap<String, AnomalyEvent>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<AnomalyEvent>) {
        let mut resend = tokio::time::interval(self.cfg.resend_interval);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resend.tick().await;
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, 500) => {
                    if n == 0 {
                        break;
                    }
                    let events = std::mem::take(&mut batch);
                    self.deliver(&events).await;
                }
                _ = resend.tick() => {
                    if self.am_url.is_some() && !self.firing.is_empty() {
                        let now = Utc::now();
                        let alerts: Vec<Value> = self.firing.values().map(|e| self.am_alert(e, now)).collect();
                        self.post("alertmanager", Value::Array(alerts)).await;
                    }
                }
            }
        }
        tracing::debug!("alert task stopped");
    }

    async fn deliver(&mut self, events: &[AnomalyEvent]) {
        if self.am_url.is_some() {
            let now = Utc::now();
            for e in events {
                match e.state {
                    AnomalyState::Firing => {
                        self.firing.insert(e.anomaly_id.clone(), e.clone());
                    }
                    AnomalyState::Resolved => {
                        self.firing.remove(&e.anomaly_id);
                    }
                }
            }
            let alerts: Vec<Value> = events.iter().map(|e| self.am_alert(e, now)).collect();
            self.post("alertmanager", Value::Array(alerts)).await;
        }
        if self.webhook_url.is_some() {
            match serde_json::to_value(events) {
                Ok(v) => self.post("webhook", v).await,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode anomaly events for the webhook")
                }
            }
        }
    }

    /// One Alertmanager v2 alert. Labels identify the episode (so two episodes of one rule
    /// on one GPU are two alerts); `endsAt` in the past resolves it.
    fn am_alert(&self, e: &AnomalyEvent, now: DateTime<Utc>) -> Value {
        let mut labels = serde_json::Map::new();
        let mut label = |k: &str, v: &str| {
            labels.insert(k.to_string(), Value::String(v.to_string()));
        };
        label("alertname", &e.rule);
        label("severity", e.severity.as_str());
        label("host", &e.host);
        label("gpu", &e.gpu);
        label("gpu_index", &e.gpu_index.to_string());
        label("source", e.source.as_str());
        label("anomaly_id", &e.anomaly_id);
        if let Some(m) = &e.metric {
            label("metric", m);
        }
        let mut annotations = serde_json::Map::new();
        annotations.insert("summary".into(), Value::String(e.message.clone()));
        annotations.insert("session".into(), Value::String(e.session.clone()));
        annotations.insert(
            "event_time".into(),
            Value::String(e.event_time.to_rfc3339()),
        );
        if let Some(v) = e.value {
            annotations.insert("value".into(), Value::String(v.to_string()));
        }
        if let Some(v) = e.threshold {
            annotations.insert("threshold".into(), Value::String(v.to_string()));
        }
        // Replays carry past event times and simulators may run ahead of the clock;
        // Alertmanager wants startsAt <= endsAt and judges endsAt against its own clock.
        let ends = match e.state {
            AnomalyState::Firing => {
                now + chrono::Duration::from_std(self.cfg.resend_interval * 4)
                    .unwrap_or(chrono::Duration::minutes(4))
            }
            AnomalyState::Resolved => e.event_time.min(now),
        };
        let starts = e.started_at.min(ends).min(now);
        json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts.to_rfc3339(),
            "endsAt": ends.to_rfc3339(),
        })
    }

    /// POSTs `body` with retries and exponential backoff; gives up after the configured
    /// attempts.
    async fn post(&self, dest: &'static str, body: Value) {
        let url = match dest {
            "alertmanager" => self.am_url.as_deref(),
            _ => self.webhook_url.as_deref(),
        };
        let Some(url) = url else { return };
        let payload = match serde_json::to_vec(&body) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode alert payload");
                return;
            }
        };
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=self.cfg.max_attempts {
            let res = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(payload.clone())
                .send()
                .await;
            let err = match res {
                Ok(r) if r.status().is_success() => {
                    self.metrics.sent.with_label_values(&[dest]).inc();
                    return;
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    format!(
                        "HTTP {status}: {}",
                        text.chars().take(200).collect::<String>()
                    )
                }
                Err(e) => e.to_string(),
            };
            if attempt == self.cfg.max_attempts {
                self.metrics.failed.with_label_values(&[dest]).inc();
                tracing::error!(destination = dest, %url, attempts = attempt, error = %err, "alert delivery given up");
                return;
            }
            tracing::warn!(destination = dest, %url, attempt, error = %err, retry_in = ?backoff, "alert delivery failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}
