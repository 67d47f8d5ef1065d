//! `batch-analytics`: see the library crate for what each command does.

/// mimalloc rather than glibc malloc, as in the stream processor: DataFusion's buffers are
/// freed on other tokio workers than allocated them, which glibc's per-thread arenas keep.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;

use batch_analytics::cli::{Cli, run};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    gpustream_runtime::startup::run("batch-analytics", async move {
        let mut out = std::io::stdout().lock();
        run(cli, &mut out).await?;
        out.flush()?;
        Ok::<(), batch_analytics::Error>(())
    })
}
