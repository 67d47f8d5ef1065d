//! The lake read by engines that share no code with gpustream: delta-rs' Python bindings
//! with pyarrow, and polars (`scripts/read_lake.py`, in the venv `scripts/install-deps.sh`
//! creates at `.tools/reader-venv`).

use std::process::Command;

use crate::data::workspace_root;

/// What the other engines saw in one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCounts {
    /// The table's name.
    pub table: String,
    /// Rows counted by `deltalake` (delta-rs Python bindings, pyarrow dataset).
    pub deltalake: u64,
    /// Rows counted by polars' Delta scan.
    pub polars: u64,
    /// Distinct `event_id`s (`samples`, `anomalies`) counted by polars.
    pub distinct_keys: Option<u64>,
    /// The table version read.
    pub version: u64,
    /// Data files in that version.
    pub files: u64,
}

/// Reads `tables` of the lake at `url` (a directory or `s3://...`, with the `AWS_*`
/// environment for S3) with the other engines; panics with the reader's error when a
/// table cannot be read or the reader is not installed.
pub fn table_counts(url: &str, tables: &[&str]) -> Vec<TableCounts> {
    let root = workspace_root();
    let python = root.join(".tools/reader-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/install-deps.sh",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root.join("scripts/read_lake.py"))
        .arg(url)
        .args(tables)
        .output()
        .expect("run scripts/read_lake.py");
    assert!(
        out.status.success(),
        "read_lake.py {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
            TableCounts {
                table: v["table"].as_str().unwrap_or_default().to_string(),
                deltalake: n("deltalake").expect("deltalake count"),
                polars: n("polars").expect("polars count"),
                distinct_keys: n("distinct_keys"),
                version: n("version").unwrap_or_default(),
                files: n("files").unwrap_or_default(),
            }
        })
        .collect()
}
