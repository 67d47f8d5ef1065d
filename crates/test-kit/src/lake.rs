//! Reading a local lake back in tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};

/// Every Parquet file under a local lake table directory, recursively, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every row of every Parquet file of a local lake table.
pub fn read_local_table(dir: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in parquet_files(dir) {
        let file = std::fs::File::open(&f).expect("open parquet");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet reader")
            .build()
            .expect("build reader");
        for b in reader {
            out.push(b.expect("batch"));
        }
    }
    out
}

/// Event ids in a local lake's `samples` table with how often each appears, and the
/// files there that are not Parquet (temporary files must never be visible).
pub fn lake_ids(lake: &Path) -> (HashMap<String, usize>, Vec<String>) {
    let table = lake.join("samples");
    let mut ids = HashMap::new();
    let mut strays = Vec::new();
    let mut stack = vec![table];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x != "parquet") {
                strays.push(p.display().to_string());
            }
        }
    }
    for b in read_local_table(&lake.join("samples")) {
        let col = b
            .column_by_name("event_id")
            .expect("event_id column")
            .as_string::<i32>();
        for i in 0..b.num_rows() {
            *ids.entry(col.value(i).to_string()).or_default() += 1;
        }
    }
    (ids, strays)
}
