//! The real `stream-processor` command line, built inside this test package so crash
//! tests can start it as a process of its own and kill it with SIGKILL.

/// mimalloc rather than glibc malloc: glibc keeps freed memory in per-thread arenas, so the
/// processor's RSS climbed for hours (BENCHMARKS.md, "Soak").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stream_processor::cli::main()
}
