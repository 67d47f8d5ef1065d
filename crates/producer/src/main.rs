//! `producer`: GPU-Z logs, live GPUs or a simulated fleet into Kafka. The command line
//! and the work live in the library (`producer::cli`).

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = producer::cli::Cli::parse();
    gpustream_runtime::startup::run("producer", producer::cli::run(cli))
}
