//! Liveness and readiness.
//!
//! *Live* means the process should keep running: it turns false only when the service
//! cannot recover by itself (an orchestrator restarts it). *Ready* means it is doing
//! its work: each part (`kafka`, `lake`, `influxdb`, ...) reports its own problem, and
//! the service is ready when none has one. An outage of a dependency makes a service
//! not ready, never not live: it resumes by itself when the dependency is back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    problems: BTreeMap<String, String>,
    fatal: Option<String>,
}

/// Shared health state: live and ready until a part reports otherwise.
///
/// ```
/// let h = gpustream_runtime::service::Health::default();
/// h.fail("influxdb", "connection refused");
/// assert!(h.is_live());
/// assert_eq!(h.problem().as_deref(), Some("influxdb: connection refused"));
/// h.ok("influxdb");
/// assert!(h.problem().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Health(Arc<Mutex<State>>);

impl Health {
    /// Marks `part` not ready, with the reason shown on `/health/ready`.
    pub fn fail(&self, part: &str, reason: impl Into<String>) {
        if let Ok(mut g) = self.0.lock() {
            g.problems.insert(part.to_string(), reason.into());
        }
    }

    /// Marks `part` ready again.
    pub fn ok(&self, part: &str) {
        if let Ok(mut g) = self.0.lock() {
            g.problems.remove(part);
        }
    }

    /// Marks the service not live: it cannot recover by itself.
    pub fn fatal(&self, reason: impl Into<String>) {
        if let Ok(mut g) = self.0.lock() {
            g.fatal = Some(reason.into());
        }
    }

    /// Whether the process should keep running.
    pub fn is_live(&self) -> bool {
        self.0.lock().map(|g| g.fatal.is_none()).unwrap_or(false)
    }

    /// `None` when ready, else every part's problem (`part: reason; ...`).
    pub fn problem(&self) -> Option<String> {
        let g = self.0.lock().ok()?;
        let mut all: Vec<String> = g
            .problems
            .iter()
            .map(|(part, reason)| format!("{part}: {reason}"))
            .collect();
        if let Some(f) = &g.fatal {
            all.insert(0, format!("fatal: {f}"));
        }
        (!all.is_empty()).then(|| all.join("; "))
    }
}
