//! `config --print`: the one subcommand of a binary that otherwise runs without one.

/// What `stream-processor` and `consumer-influx` do instead of running, flattened into
/// their command line as `#[command(subcommand)] command: Option<ConfigCommand>`.
///
/// ```
/// use clap::Parser;
/// use gpustream_runtime::config::ConfigCommand;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(subcommand)]
///     command: Option<ConfigCommand>,
/// }
///
/// let cli = Cli::parse_from(["bin", "config", "--print"]);
/// assert!(matches!(cli.command, Some(ConfigCommand::Config { print: true })));
/// assert!(Cli::parse_from(["bin"]).command.is_none());
/// ```
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ConfigCommand {
    /// Shows the effective configuration (secrets redacted) and exits.
    Config {
        /// Print it (the only action, kept explicit for scripts).
        #[arg(long)]
        print: bool,
    },
}
