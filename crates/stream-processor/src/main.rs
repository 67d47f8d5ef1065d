//! `stream-processor`: Kafka → anomalies, rollups and the lake.

fn main() -> std::process::ExitCode {
    stream_processor::cli::main()
}
