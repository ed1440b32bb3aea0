//! The little every service binary shares: its subcommands, telemetry set-up, and turning a
//! start-up error into one log line with its cause chain and a failing exit code.

use std::process::ExitCode;

use crate::config::{Env, Var, markdown_table};
use crate::telemetry::{self, TelemetryConfig};

/// What the binary was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit (Kubernetes hook Jobs run this).
    Migrate,
    /// A command of this service's own (see [`start_with`]).
    Other(&'static str),
}

/// Parses the command line and installs logging. `Err` carries the exit code for `--help`,
/// `config` (prints the configuration table) or a usage error.
pub fn start(name: &str, vars: &[Var]) -> Result<Command, ExitCode> {
    start_with(name, vars, &[])
}

/// [`start`] for a service with commands of its own: `(command, one-line help)`.
#[allow(clippy::print_stdout)]
pub fn start_with(
    name: &str,
    vars: &[Var],
    extra: &[(&'static str, &'static str)],
) -> Result<Command, ExitCode> {
    let arg = std::env::args().nth(1);
    let command = match arg.as_deref() {
        None | Some("serve") => Command::Serve,
        Some("migrate") => Command::Migrate,
        Some(other) if extra.iter().any(|(command, _)| *command == other) => {
            let (command, _) = extra
                .iter()
                .find(|(command, _)| *command == other)
                .expect("found above");
            Command::Other(command)
        }
        Some("config") => {
            let mut all = vars.to_vec();
            all.extend_from_slice(TelemetryConfig::VARS);
            print!("{}", markdown_table(&all));
            return Err(ExitCode::SUCCESS);
        }
        Some("-h" | "--help" | "help") => {
            println!(
                "usage: {name} [serve|migrate|config{}]",
                extra
                    .iter()
                    .map(|(c, _)| format!("|{c}"))
                    .collect::<String>()
            );
            println!("  serve    run the service (default)");
            println!("  migrate  apply database migrations and exit");
            println!("  config   print the environment variables it reads");
            for (command, help) in extra {
                println!("  {command:<8} {help}");
            }
            return Err(ExitCode::SUCCESS);
        }
        Some(other) => {
            eprintln!("{name}: unknown command {other:?} (try --help)");
            return Err(ExitCode::from(2));
        }
    };
    match TelemetryConfig::from_env(&Env::process()) {
        Ok(config) => telemetry::init(&config, name),
        Err(err) => {
            eprintln!("{name}: {err}");
            return Err(ExitCode::from(2));
        }
    }
    Ok(command)
}

/// Logs a failure with its whole cause chain; the exit code says whether it failed.
pub fn exit(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let chain = telemetry::error_chain(err.as_ref());
            tracing::error!(error = %chain, "fatal");
            eprintln!("error: {chain}");
            ExitCode::FAILURE
        }
    }
}
