//! When to try a write again: the status classification and the backoff between tries.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use reqwest::StatusCode;

/// Exponential backoff between write attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry (before jitter).
    pub initial: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

/// Delays of successive retries: doubling from [`RetryPolicy::initial`] up to
/// [`RetryPolicy::max`], each drawn uniformly from the upper half of its step
/// ("equal jitter"), so that many sinks restarting together do not retry in lockstep.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff sequence starting at the first retry.
    pub fn new(policy: RetryPolicy) -> Self {
        // Seeded from std's per-process random hasher keys: no RNG dependency needed.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Backoff {
            policy,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// Delay before the next retry.
    pub fn next_delay(&mut self) -> Duration {
        let max = self.policy.max.max(Duration::from_millis(1));
        let step = self
            .policy
            .initial
            .max(Duration::from_millis(1))
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(max);
        self.attempt = self.attempt.saturating_add(1);
        let step_ms = u64::try_from(step.as_millis()).unwrap_or(u64::MAX);
        let half = step_ms / 2;
        Duration::from_millis(step_ms - half + self.next_random() % (half + 1))
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// What to do with a batch after InfluxDB answered with a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Written.
    Success,
    /// Transient or not the data's fault: try the same batch again.
    Retry,
    /// The data is bad: retrying cannot help. Log, count and skip it.
    Reject,
}

/// Classifies an InfluxDB write response status.
///
/// A rejected batch is not dropped: the pipeline splits it to find the points InfluxDB
/// refuses and sends those to a dead-letter topic (see [`crate::pipeline`]).
///
/// - 2xx: success;
/// - 429 and 5xx: retry (overload, timeouts, storage trouble);
/// - 401, 403, 404, 407, 408: retry. These mean wrong credentials, a missing database or
///   a proxy problem, not bad data: rejecting would commit past, and so drop, every
///   message until someone fixes the configuration. Retrying keeps them in Kafka and
///   `/health` reports the failure meanwhile;
/// - any other 4xx (400 malformed line or field-type conflict, 413, ...): reject;
/// - anything else (1xx, 3xx): retry.
pub fn classify_status(status: StatusCode) -> Disposition {
    match status.as_u16() {
        200..=299 => Disposition::Success,
        401 | 403 | 404 | 407 | 408 | 429 => Disposition::Retry,
        400..=499 => Disposition::Reject,
        _ => Disposition::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let cases = [
            (200, Disposition::Success),
            (204, Disposition::Success),
            (400, Disposition::Reject),
            (413, Disposition::Reject),
            (422, Disposition::Reject),
            (401, Disposition::Retry),
            (403, Disposition::Retry),
            (404, Disposition::Retry),
            (408, Disposition::Retry),
            (429, Disposition::Retry),
            (500, Disposition::Retry),
            (502, Disposition::Retry),
            (503, Disposition::Retry),
            (504, Disposition::Retry),
            (301, Disposition::Retry),
        ];
        for (code, want) in cases {
            let status = StatusCode::from_u16(code).expect("valid status");
            assert_eq!(classify_status(status), want, "{code}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let mut b = Backoff::new(policy);
        let expected_steps = [100u64, 200, 400, 800, 1600, 2000, 2000, 2000];
        for step in expected_steps {
            let d = b.next_delay().as_millis() as u64;
            assert!(
                d >= step / 2 && d <= step,
                "delay {d} not in [{}, {step}]",
                step / 2
            );
        }
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
    }

    #[test]
    fn backoff_jitter_varies() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(10),
        };
        let mut b = Backoff::new(policy);
        let delays: std::collections::HashSet<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 1, "no jitter: {delays:?}");
    }
}
