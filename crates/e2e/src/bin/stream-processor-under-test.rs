//! The real `stream-processor` command line, built inside this test package so crash
//! tests can start it as a process of its own and kill it with SIGKILL.

fn main() -> std::process::ExitCode {
    stream_processor::cli::main()
}
