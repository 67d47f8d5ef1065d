//! Reading a lake back in tests, through its Delta tables (what a reader sees), from
//! sync or async code alike.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use gpustream_lake::Lake;
use gpustream_lake::delta::deltalake_core::datafusion::prelude::SessionContext;

/// Runs `f` on a runtime of its own on another thread, so sync helpers work from
/// inside async tests too.
fn blocking<T: Send>(f: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("reader thread")
    })
}

/// Every row of the latest version of `table` (empty when the table does not exist).
pub async fn table_rows(lake: &Lake, table: &str) -> Vec<RecordBatch> {
    let Some(provider) = gpustream_lake::delta::table_provider(lake, table)
        .await
        .expect("open table")
    else {
        return Vec::new();
    };
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).expect("register");
    let batches = ctx
        .sql("SELECT * FROM t")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("read");
    batches.iter().map(plain_strings).collect()
}

/// `batch` with string views and dictionaries of strings as plain `Utf8` columns, so
/// tests read strings one way whatever the reader handed back.
fn plain_strings(batch: &RecordBatch) -> RecordBatch {
    use arrow::datatypes::{DataType, Field, Schema};
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let plain = matches!(f.data_type(), DataType::Utf8View)
            || matches!(f.data_type(), DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::Utf8View));
        if plain {
            columns.push(arrow::compute::cast(c, &DataType::Utf8).expect("to utf8"));
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
        } else {
            columns.push(c.clone());
            fields.push(f.as_ref().clone());
        }
    }
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns).expect("batch")
}

/// Event ids of `lake`'s `samples` table with how often each appears.
pub async fn sample_ids(lake: &Lake) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for b in table_rows(lake, "samples").await {
        let col = b.column_by_name("event_id").expect("event_id column");
        // Readers may hand strings back as views or dictionaries.
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).expect("as utf8");
        let col = col.as_string::<i32>();
        for i in 0..b.num_rows() {
            *ids.entry(col.value(i).to_string()).or_default() += 1;
        }
    }
    ids
}

/// Every row of a local lake table (`<lake dir>/<table>`), through Delta.
pub fn read_local_table(dir: &Path) -> Vec<RecordBatch> {
    let (Some(root), Some(table)) = (dir.parent(), dir.file_name()) else {
        return Vec::new();
    };
    let lake = Lake::open(root.to_str().expect("utf-8 path")).expect("lake");
    let table = table.to_string_lossy().into_owned();
    blocking(async move { table_rows(&lake, &table).await })
}

/// Event ids in a local lake's `samples` table with how often each appears, and the
/// files under the table that are neither data (`.parquet`) nor log (`_delta_log/`):
/// temporary files must never be visible.
pub fn lake_ids(lake: &Path) -> (HashMap<String, usize>, Vec<String>) {
    let strays = files_outside_log(&lake.join("samples"))
        .into_iter()
        .filter(|p| p.extension().is_none_or(|x| x != "parquet"))
        .map(|p| p.display().to_string())
        .collect();
    let lake = Lake::open(lake.to_str().expect("utf-8 path")).expect("lake");
    let ids = blocking(async move { sample_ids(&lake).await });
    (ids, strays)
}

/// Every Parquet data file under a local lake table directory, recursively, sorted
/// (committed or not: what is on disk).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files_outside_log(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    out.sort();
    out
}

/// Every file under a table directory, recursively, except those in `_delta_log/`
/// (unreadable directories are skipped).
fn files_outside_log(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "_delta_log") {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Active data files of a table's latest version (what readers read).
pub fn active_files(lake: &Lake, table: &str) -> u64 {
    let lake = lake.clone();
    let table = table.to_string();
    blocking(async move {
        match gpustream_lake::delta::open_table(&lake, &table)
            .await
            .expect("open table")
        {
            Some(t) => t
                .snapshot()
                .map(|s| s.log_data().into_iter().count() as u64)
                .unwrap_or(0),
            None => 0,
        }
    })
}
