//! `stream-processor`: Kafka → anomalies, rollups and the Parquet lake.

fn main() -> anyhow::Result<()> {
    stream_processor::cli::main()
}
