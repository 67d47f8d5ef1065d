//! Plays Prometheus for the pipeline dashboard: scrapes the services' `/metrics` and
//! pushes what it reads to VictoriaMetrics.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

/// One scrape target: a service's ops endpoint, under the job name Prometheus would give it.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) job: String,
    pub(super) component: &'static str,
    pub(super) addr: SocketAddr,
}

/// What the scraper did.
#[derive(Debug, Clone, Default)]
pub(super) struct ScrapeLog {
    /// Timestamp of the first and the last push, epoch milliseconds.
    pub(super) first_ms: i64,
    pub(super) last_ms: i64,
    pub(super) pushes: usize,
    /// Jobs whose exposition held a `gpustream_consumer_lag` series at least once.
    pub(super) lag_seen: BTreeSet<String>,
    /// Pushes since every target had shown its lag.
    pub(super) pushes_after_lag: usize,
    pub(super) errors: Vec<String>,
}

/// Scrapes every target's `/metrics` and pushes each exposition to VictoriaMetrics with
/// the job and instance labels a Prometheus scrape would add, stamped with the scrape
/// time.
async fn scrape_once(
    client: &reqwest::Client,
    vm: &str,
    targets: &[Target],
    log: &Mutex<ScrapeLog>,
) {
    let now_ms = Utc::now().timestamp_millis();
    let mut lag = Vec::new();
    let mut errors = Vec::new();
    for t in targets {
        let text = match client
            .get(format!("http://{}/metrics", t.addr))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => {
                errors.push(format!("scrape {}: {e}", t.addr));
                continue;
            }
        };
        if text.contains("gpustream_consumer_lag{") {
            lag.push(t.job.clone());
        }
        let pushed = client
            .post(format!("{vm}/api/v1/import/prometheus"))
            .query(&[
                ("extra_label", format!("job={}", t.job)),
                ("extra_label", format!("instance={}", t.addr)),
                ("timestamp", now_ms.to_string()),
            ])
            .body(text)
            .send()
            .await;
        match pushed {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => errors.push(format!("push {}: HTTP {}", t.job, r.status())),
            Err(e) => errors.push(format!("push {}: {e}", t.job)),
        }
    }
    let mut log = log.lock().expect("scrape log");
    if log.pushes == 0 {
        log.first_ms = now_ms;
    }
    log.last_ms = now_ms;
    log.pushes += 1;
    let all_seen = targets.iter().all(|t| log.lag_seen.contains(&t.job));
    log.lag_seen.extend(lag);
    if all_seen {
        log.pushes_after_lag += 1;
    }
    log.errors.extend(errors);
}

/// Scrapes every two seconds until `stop`, then once more.
pub(super) fn start_scraper(
    vm: String,
    targets: Vec<Target>,
    stop: CancellationToken,
) -> (Arc<Mutex<ScrapeLog>>, tokio::task::JoinHandle<()>) {
    let log = Arc::new(Mutex::new(ScrapeLog::default()));
    let shared = log.clone();
    let handle = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        loop {
            scrape_once(&client, &vm, &targets, &shared).await;
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        scrape_once(&client, &vm, &targets, &shared).await;
    });
    (log, handle)
}
