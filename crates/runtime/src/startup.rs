//! The start-up every binary shares: logging, a multi-threaded runtime, and one way of
//! reporting a fatal error (one line on stderr with its causes, exit status 1).

use std::process::ExitCode;

/// Runs `main` on a multi-threaded tokio runtime after setting up logging; prints an
/// error as `<binary>: error: <error>: <cause>: ...` and exits 1.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     gpustream_runtime::startup::run("my-binary", async { Ok::<(), std::io::Error>(()) })
/// }
/// ```
pub fn run<E>(binary: &str, main: impl std::future::Future<Output = Result<(), E>>) -> ExitCode
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    crate::service::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(binary, &e),
    };
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            report(binary, e.as_ref())
        }
    }
}

/// Prints `error` with its chain of causes on one line and returns exit status 1.
pub fn report(binary: &str, error: &(dyn std::error::Error + 'static)) -> ExitCode {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Many errors repeat their source in their own message.
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    eprintln!("{binary}: error: {line}");
    ExitCode::FAILURE
}
