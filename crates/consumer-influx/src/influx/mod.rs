//! InfluxDB write client: gzip-compressed line protocol to the v1 (`/write?db=`) or v2
//! (`/api/v2/write?org=&bucket=`) API, retries with backoff and jitter.
//!
//! `config` says where and how to write, `retry` when to try again, `writer` sends.

mod config;
mod retry;
mod writer;

pub use config::{Credentials, InfluxConfig, Token, WriteApi, write_url};
pub use retry::{Backoff, Disposition, RetryPolicy, classify_status};
pub use writer::{InfluxWriter, WriteOutcome, gzip};
