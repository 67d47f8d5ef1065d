//! `batch-analytics`: see the library crate for what each command does.

use std::io::Write;
use std::process::ExitCode;

use batch_analytics::cli::{Cli, run};
use clap::Parser;

/// Log filter when `RUST_LOG` is not set: delta-rs and its kernel log every snapshot
/// they build at `info`, with the table's whole schema.
const DEFAULT_LOG: &str = "info,buoyant_kernel=warn,delta_kernel=warn,deltalake_core=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    gpustream_runtime::startup::run("batch-analytics", async move {
        let mut out = std::io::stdout().lock();
        run(cli, &mut out).await?;
        out.flush()?;
        Ok::<(), batch_analytics::Error>(())
    })
}

/// Logs to stderr as every binary does (`gpustream_runtime::service::init_logging`,
/// whose own initialisation then finds this one in place), with [`DEFAULT_LOG`].
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if std::env::var("GPUSTREAM_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
