//! Upkeep of the lake's Delta tables: compaction of closed days, checkpoints, vacuum.
//!
//! The stream processor commits every few seconds, one small file per Kafka partition
//! and hour each time, and every nightly re-run replaces a day's files. Upkeep keeps
//! readers fast and storage bounded, table by table (`samples`, `anomalies`,
//! `rollups_1m` and every `analytics/<table>`):
//!
//! 1. **compaction** of the selected days with Delta OPTIMIZE
//!    ([`gpustream_lake::delta::compact`]): the small files of each partition are
//!    rewritten into files of about the target size, swapped in one commit that
//!    concurrent readers and appends never notice. Only days that have a partition with
//!    two or more files below the target size are rewritten;
//! 2. a **checkpoint** of the latest version, and removal of log entries older than the
//!    table's log retention;
//! 3. **vacuum**: data files no version younger than the retention references (the
//!    files compaction and re-runs replaced, and files a crashed writer never
//!    committed) are deleted.
//!
//! Only closed days should be compacted: by default every day strictly before today
//! (UTC), the days the stream processor no longer appends to.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use gpustream_lake::delta::deltalake_core::DeltaTable;
use gpustream_lake::delta::{self, MaintainOptions};
use gpustream_lake::{ANALYTICS_PREFIX, Lake};

use crate::error::{Error, Result};
use crate::tables::{DATE_COLUMN, STREAM_TABLES, analytics_table_names};

/// Which days of each table are compacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaySelection {
    /// These days (whether or not they are closed).
    Days(Vec<NaiveDate>),
    /// Every day strictly before this one.
    Before(NaiveDate),
}

impl DaySelection {
    fn includes(&self, day: &str) -> bool {
        let Ok(day) = day.parse::<NaiveDate>() else {
            return false;
        };
        match self {
            DaySelection::Days(days) => days.contains(&day),
            DaySelection::Before(limit) => day < *limit,
        }
    }
}

/// What upkeep did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUpkeep {
    /// Location relative to the lake root (`samples`, `analytics/daily_gpu`).
    pub table: String,
    /// Selected days the table has.
    pub days: usize,
    /// Days that were compacted (had small files to merge).
    pub days_compacted: usize,
    /// Active files of the selected days before compaction.
    pub files_before: u64,
    /// ... and after.
    pub files_after: u64,
    /// Data files vacuum deleted.
    pub files_vacuumed: u64,
    /// Wall time of the table's upkeep.
    pub elapsed: Duration,
}

impl std::fmt::Display for TableUpkeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} day(s), {} compacted, files {} -> {}, {} file(s) removed by vacuum, {:.2}s",
            self.table,
            self.days,
            self.days_compacted,
            self.files_before,
            self.files_after,
            self.files_vacuumed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Maintains every Delta table of the lake: compacts the selected days, then writes a
/// checkpoint and vacuums. Tables are independent: a failure on one is reported after
/// the others were maintained ([`Error::Maintenance`]).
pub async fn maintain_lake(
    lake: &Lake,
    days: &DaySelection,
    options: &MaintainOptions,
) -> Result<Vec<TableUpkeep>> {
    let mut locations: Vec<String> = STREAM_TABLES.iter().map(|t| t.to_string()).collect();
    for name in analytics_table_names(lake).await? {
        locations.push(format!("{ANALYTICS_PREFIX}/{name}"));
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for location in locations {
        match maintain_table(lake, &location, days, options).await {
            Ok(Some(upkeep)) => {
                tracing::info!(table = %location, "{upkeep}");
                done.push(upkeep);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(table = %location, error = %e, "maintenance failed");
                failed.push(format!("{location}: {e}"));
            }
        }
    }
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(Error::Maintenance(failed))
    }
}

/// Maintains one table; `Ok(None)` when `location` is not a Delta table.
pub async fn maintain_table(
    lake: &Lake,
    location: &str,
    days: &DaySelection,
    options: &MaintainOptions,
) -> Result<Option<TableUpkeep>> {
    let Some(mut table) = delta::open_table(lake, location).await? else {
        return Ok(None);
    };
    let started = Instant::now();
    let before = file_counts(&table, location, days, options)?;
    let mut days_compacted = 0;
    for day in &before.to_compact {
        let (compacted, report) = delta::compact(table, day, options).await?;
        table = compacted;
        if report.files_added > 0 || report.files_removed > 0 {
            days_compacted += 1;
        }
    }
    let after = file_counts(&table, location, days, options)?;
    delta::checkpoint(&table).await?;
    let (_, vacuum) = delta::vacuum(table, options.retention).await?;
    Ok(Some(TableUpkeep {
        table: location.to_string(),
        days: before.per_day.len(),
        days_compacted,
        files_before: before.per_day.values().sum(),
        files_after: after.per_day.values().sum(),
        files_vacuumed: vacuum.files_deleted,
        elapsed: started.elapsed(),
    }))
}

/// A partition: its columns' values, sorted by column.
type Partition = Vec<(String, Option<String>)>;

/// Active files of the selected days, and the days worth compacting.
struct FileCounts {
    per_day: BTreeMap<String, u64>,
    to_compact: BTreeSet<String>,
}

/// One pass over the table's files: per selected day, how many there are, and which
/// days have a partition (a day, or a day and hour) with two or more files below the
/// target size — what OPTIMIZE would merge. Days already compacted are not rewritten
/// (and cost no OPTIMIZE planning).
fn file_counts(
    table: &DeltaTable,
    location: &str,
    days: &DaySelection,
    options: &MaintainOptions,
) -> Result<FileCounts> {
    let snapshot = table
        .snapshot()
        .map_err(|e| gpustream_lake::Error::delta(location, e))?;
    let target = options.target_file_size.get();
    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    // Per partition (its sorted values): its day and its files below the target size.
    let mut small: HashMap<Partition, (String, u64)> = HashMap::new();
    for file in snapshot.log_data() {
        let values = file.partition_values_map();
        let Some(day) = values.get(DATE_COLUMN).cloned().flatten() else {
            continue;
        };
        if !days.includes(&day) {
            continue;
        }
        *per_day.entry(day.clone()).or_default() += 1;
        if u64::try_from(file.size()).is_ok_and(|s| s < target) {
            let mut partition: Partition = values.into_iter().collect();
            partition.sort();
            small.entry(partition).or_insert((day, 0)).1 += 1;
        }
    }
    let to_compact = small
        .into_values()
        .filter(|(_, n)| *n >= 2)
        .map(|(day, _)| day)
        .collect();
    Ok(FileCounts {
        per_day,
        to_compact,
    })
}

/// Parses a size: a number of bytes, optionally with a unit (`B`, `KB`, `MB`, `GB`,
/// `TB` in powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` in powers of 1024; case and
/// spaces ignored), e.g. `128MiB`, `64 MB`, `1048576`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "tb" => 1000 * 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}` is not a size (e.g. 128MiB, 64MB, 1048576)"
            ));
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 128MiB, 64MB, 1048576)"))?;
    let bytes = (value * factor as f64).round();
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("`{text}`: a size must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// Formats a size the way [`parse_size`] reads it back (`128MiB`, `1500B`).
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// `#[serde(with = "crate::maintain::serde_size")]` for a size in bytes: written as
/// `128MiB`, read from such text or a number of bytes.
pub mod serde_size {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the size as text (`128MiB`).
    pub fn serialize<S: Serializer>(bytes: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_size(*bytes))
    }

    /// Reads `128MiB`-style text, or a number of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            S(String),
            N(u64),
        }
        match Size::deserialize(d)? {
            Size::S(s) => super::parse_size(&s).map_err(serde::de::Error::custom),
            Size::N(0) => Err(serde::de::Error::custom("a size must be at least 1 byte")),
            Size::N(n) => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print_back() {
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("64 MB"), Ok(64_000_000));
        assert_eq!(parse_size("1.5kib"), Ok(1536));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("big").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(format_size(128 << 20), "128MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1500), "1500B");
        for s in ["128MiB", "1GiB", "1500B", "3KiB"] {
            assert_eq!(parse_size(s).map(format_size).as_deref(), Ok(s));
        }
    }

    #[test]
    fn day_selection() {
        let d = |s: &str| s.parse::<NaiveDate>().expect("date");
        let before = DaySelection::Before(d("2024-01-03"));
        assert!(before.includes("2024-01-02"));
        assert!(!before.includes("2024-01-03"));
        assert!(!before.includes("not a date"));
        let days = DaySelection::Days(vec![d("2024-01-03")]);
        assert!(days.includes("2024-01-03") && !days.includes("2024-01-02"));
    }
}
