//! `batch-analytics`: see the library crate for what each command does.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use batch_analytics::cli::{Cli, run};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match try_main().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable line, no backtrace: these are user-facing errors (bad SQL, a
            // missing table, an unreachable store), not bugs.
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

async fn try_main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    run(cli, &mut out).await?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

/// The error and its causes, skipping causes whose text the message already quotes
/// (the library's errors embed their source's message).
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Logs to stderr so stdout carries only results; `RUST_LOG` overrides `info`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
