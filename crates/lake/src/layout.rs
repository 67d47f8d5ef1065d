//! How the lake is laid out: `LAKE/<table>/date=YYYY-MM-DD/[hour=HH/]<file>.parquet`,
//! dates and hours in UTC.

use chrono::{DateTime, Utc};

/// Table of raw samples.
pub const SAMPLES_TABLE: &str = "samples";
/// Table of anomaly events.
pub const ANOMALIES_TABLE: &str = "anomalies";
/// Table of 1-minute rollups.
pub const ROLLUPS_TABLE: &str = "rollups_1m";
/// Prefix of batch-analytics output tables (`analytics/<name>`).
pub const ANALYTICS_PREFIX: &str = "analytics";

/// `date=YYYY-MM-DD` partition directory for an event time (UTC).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2023, 6, 16, 8, 17, 8).unwrap();
/// assert_eq!(gpustream_lake::date_partition(t), "date=2023-06-16");
/// ```
pub fn date_partition(t: DateTime<Utc>) -> String {
    format!("date={}", t.format("%Y-%m-%d"))
}

/// `date=YYYY-MM-DD/hour=HH` partition directories of the stream tables (UTC), so
/// queries over an hour or a day read only those files.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2023, 6, 16, 8, 17, 8).unwrap();
/// assert_eq!(gpustream_lake::event_partition(t), "date=2023-06-16/hour=08");
/// ```
pub fn event_partition(t: DateTime<Utc>) -> String {
    format!("date={}/hour={}", t.format("%Y-%m-%d"), t.format("%H"))
}
