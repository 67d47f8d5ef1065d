//! `stream-processor`: Kafka → anomalies, rollups and the lake.

/// mimalloc rather than glibc malloc: glibc keeps freed memory in per-thread arenas, so the
/// processor's RSS climbed for hours (BENCHMARKS.md, "Soak").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stream_processor::cli::main()
}
