//! One skeleton for every service binary: `main` is one call to [`run_service`], which parses the
//! command line (clap), installs logging, reads the configuration, runs the command on a Tokio
//! runtime, and turns a failure into one log line with its cause chain and a failing exit code.
//!
//! A service describes itself by implementing [`Binary`] on its command enum.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgMatches, Subcommand};

use crate::config::{ConfigError, Env, Var, markdown_table};
use crate::shutdown::{self, CancellationToken};
use crate::telemetry::{self, TelemetryConfig};

/// Start-up and run-time failures of a service, with their cause chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long the runtime waits, after the command returned, for blocking threads still running
/// (a `getaddrinfo` for a name DNS does not answer) before the process exits regardless.
const BLOCKING_GRACE: Duration = Duration::from_secs(1);

/// `TOKIO_WORKER_THREADS`: the runtime's worker threads (Tokio's own name for it).
pub const WORKER_THREADS: Var = Var::optional("TOKIO_WORKER_THREADS").doc(
    "Threads running the service's tasks (1..=256); unset: one per CPU the process may use. One \
     costs the least CPU per request where services share cores (docs/benchmarks.md); the charts \
     set 1 and scale out by replicas",
);

/// What every service binary reads before its own configuration: its logging and its runtime.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// The runtime's worker threads; `None`: Tokio's default (one per available CPU).
    pub worker_threads: Option<usize>,
}

impl ProcessConfig {
    /// Reads the telemetry variables and `TOKIO_WORKER_THREADS`.
    pub fn read(r: &mut crate::config::Reader<'_>) -> Self {
        let telemetry = TelemetryConfig::read(r);
        let worker_threads: Option<usize> = r.opt(WORKER_THREADS);
        if let Some(threads) = worker_threads {
            r.ensure(
                &WORKER_THREADS,
                (1..=256).contains(&threads),
                "must be 1..=256",
            );
        }
        Self {
            telemetry,
            worker_threads,
        }
    }
}

crate::env_config!(ProcessConfig);

/// A service binary: its name, its configuration and its commands. Implemented by each service
/// on its `Command` enum (a `clap::Subcommand`; the doc comment of each variant is its help).
pub trait Binary: Subcommand + Sized {
    /// The binary's name, as in logs and health.
    const NAME: &'static str;
    /// What the service does, in one line (`--help`).
    const ABOUT: &'static str;
    /// The command run when none is given.
    const DEFAULT: Self;

    /// The service's configuration.
    type Config;

    /// The environment variables the service reads (the `config` command prints them).
    const VARS: fn() -> Vec<Var>;
    /// Reads the configuration from the environment (errors name the variable).
    const CONFIG: fn(&Env) -> Result<Self::Config, ConfigError>;

    /// Runs the command until it is done or `shutdown` is cancelled (SIGTERM, SIGINT).
    fn run(
        self,
        config: Self::Config,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>>;
}

/// The whole of a service's `main`: see the module docs. Exit codes: 0 done, 1 failed, 2 a usage
/// or configuration error found before starting.
#[must_use]
pub fn run_service<B: Binary>() -> ExitCode {
    let command = match parse::<B>(std::env::args_os()) {
        Ok(Parsed::Run(command)) => command,
        Ok(Parsed::PrintConfig) => {
            print_config(&(B::VARS)());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let process = match ProcessConfig::from_env(&Env::process()) {
        Ok(process) => process,
        Err(err) => {
            eprintln!("{}: {err}", B::NAME);
            return ExitCode::from(2);
        }
    };
    telemetry::init(&process.telemetry, B::NAME);
    let mut runtime = runtime_builder(process.worker_threads);
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return exit(Err(err.into())),
    };
    let result = runtime.block_on(async {
        let config = (B::CONFIG)(&Env::process())?;
        command.run(config, shutdown::on_signal()).await
    });
    runtime.shutdown_timeout(BLOCKING_GRACE);
    exit(result)
}

/// The runtime for `worker_threads`. One thread is Tokio's current-thread scheduler: the tasks
/// run on the thread that polls the sockets, with none of the multi-threaded scheduler's
/// cross-thread queues, notifications and parking (docs/benchmarks.md, "One thread, the
/// current-thread scheduler"); more threads, or Tokio's default, the multi-threaded one.
pub fn runtime_builder(worker_threads: Option<usize>) -> tokio::runtime::Builder {
    match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = threads {
                runtime.worker_threads(threads);
            }
            runtime
        }
    }
}

/// A service binary's whole `main.rs` body: its allocator and `main`. The allocator is the
/// binary's choice, not a library's: mimalloc while the binary crate's `mimalloc` feature is on
/// (the default: a service allocates small, short-lived buffers per request from several threads,
/// and mimalloc takes 8–16% less CPU per booking than glibc's malloc through the gateway, for
/// some MB more RSS; docs/benchmarks.md, "Allocator"), the system allocator with
/// `--no-default-features`. The binary's `no-thp` feature (also default) keeps mimalloc from
/// asking for transparent huge pages, which held half of an idle service's RSS ("Idle memory").
#[macro_export]
macro_rules! service_main {
    ($command:ty) => {
        #[cfg(feature = "mimalloc")]
        #[global_allocator]
        static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

        fn main() -> std::process::ExitCode {
            $crate::run_service::<$command>()
        }
    };
}

/// Declares a service binary's `Command` enum and its [`Binary`] implementation, so that each
/// service writes only what is its own: its name, its configuration type, one line about it and
/// its commands besides `serve`. `serve` (the default) is always there and calls the crate's
/// `serve(config, shutdown)`, the same entry point in every service. Each command's doc comment is
/// its `--help` line.
///
/// ```ignore
/// flightmesh_runtime::service_binary! {
///     name: "flights", config: Config,
///     about: "The catalog service",
///     commands: |config| {
///         /// Apply the migrations and exit
///         Migrate => Ok(migrate(&config.db).await.map(drop)?),
///     }
/// }
/// ```
#[macro_export]
macro_rules! service_binary {
    (
        name: $name:expr, config: $config:ty,
        about: $about:expr,
        commands: |$cfg:ident| {
            $( $(#[doc = $doc:expr])* $variant:ident => $body:expr ),* $(,)?
        }
    ) => {
        /// The binary's commands (`--help` lists them); its `main` is
        /// `flightmesh_runtime::run_service::<Command>()`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
        pub enum Command {
            /// Run the service (the default)
            Serve,
            $( $(#[doc = $doc])* $variant, )*
        }

        impl $crate::cli::Binary for Command {
            const NAME: &'static str = $name;
            const ABOUT: &'static str = $about;
            const DEFAULT: Self = Self::Serve;
            type Config = $config;
            const VARS: fn() -> Vec<$crate::Var> = <$config>::vars;
            const CONFIG: fn(&$crate::Env) -> Result<$config, $crate::ConfigError> =
                <$config>::from_env;

            async fn run(
                self,
                $cfg: $config,
                shutdown: $crate::CancellationToken,
            ) -> Result<(), $crate::BoxError> {
                match self {
                    Self::Serve => serve($cfg, shutdown).await,
                    $( Self::$variant => $body, )*
                }
            }
        }
    };
}

/// What the command line asked for.
#[derive(Debug)]
enum Parsed<B> {
    Run(B),
    PrintConfig,
}

fn cli<B: Binary>() -> clap::Command {
    let command = clap::Command::new(B::NAME).subcommand(
        clap::Command::new("config")
            .about("Print the environment variables it reads (a Markdown table) and exit"),
    );
    // After the derive's own settings: the enum's doc comment is for readers of the code.
    B::augment_subcommands(command)
        .about(B::ABOUT)
        .long_about(format!(
            "{}\n\nConfigured by environment variables only: `{} config` lists them.",
            B::ABOUT,
            B::NAME
        ))
}

fn parse<B: Binary>(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<Parsed<B>, clap::Error> {
    let matches: ArgMatches = cli::<B>().try_get_matches_from(args)?;
    match matches.subcommand_name() {
        None => Ok(Parsed::Run(B::DEFAULT)),
        Some("config") => Ok(Parsed::PrintConfig),
        Some(_) => B::from_arg_matches(&matches).map(Parsed::Run),
    }
}

#[allow(clippy::print_stdout)]
fn print_config(vars: &[Var]) {
    let mut all = vars.to_vec();
    all.extend(ProcessConfig::vars());
    print!("{}", markdown_table(&all));
}

/// Logs a failure with its whole cause chain; the exit code says whether it failed.
pub fn exit(result: Result<(), BoxError>) -> ExitCode {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_are_tokios_default_unless_set_within_bounds() {
        let read =
            |pairs: &[(&str, &str)]| ProcessConfig::from_env(&Env::from_pairs(pairs.to_vec()));
        assert_eq!(read(&[]).unwrap().worker_threads, None);
        assert_eq!(
            read(&[("TOKIO_WORKER_THREADS", "1")])
                .unwrap()
                .worker_threads,
            Some(1)
        );
        for bad in ["0", "257", "many"] {
            let err = read(&[("TOKIO_WORKER_THREADS", bad)]).unwrap_err();
            assert!(err.to_string().contains("TOKIO_WORKER_THREADS"), "{err}");
        }
    }

    #[test]
    fn one_thread_is_the_current_thread_scheduler_and_more_the_multi_threaded_one() {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let flavor = |threads: Option<usize>| {
            let runtime = runtime_builder(threads).enable_all().build().unwrap();
            runtime.block_on(async {
                // Tasks and blocking work run on either, as the services use them.
                let task = tokio::spawn(async { 1 });
                let blocking = tokio::task::spawn_blocking(|| 2);
                assert_eq!(task.await.unwrap() + blocking.await.unwrap(), 3);
                (
                    Handle::current().runtime_flavor(),
                    Handle::current().metrics().num_workers(),
                )
            })
        };
        assert_eq!(flavor(Some(1)), (RuntimeFlavor::CurrentThread, 1));
        assert_eq!(flavor(Some(2)), (RuntimeFlavor::MultiThread, 2));
        assert_eq!(flavor(None).0, RuntimeFlavor::MultiThread);
    }

    /// A binary with a service's usual commands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
    enum Example {
        /// Run the service (the default)
        Serve,
        /// Apply the database migrations and exit
        Migrate,
    }

    impl Binary for Example {
        const NAME: &'static str = "example";
        const ABOUT: &'static str = "An example service";
        const DEFAULT: Self = Self::Serve;
        type Config = ();

        const VARS: fn() -> Vec<Var> = Vec::new;
        const CONFIG: fn(&Env) -> Result<(), ConfigError> = |_| Ok(());

        async fn run(self, (): (), _: CancellationToken) -> Result<(), BoxError> {
            Ok(())
        }
    }

    fn parse_args(args: &[&str]) -> Result<Parsed<Example>, clap::Error> {
        parse::<Example>(
            std::iter::once("example")
                .chain(args.iter().copied())
                .map(Into::into),
        )
    }

    #[test]
    fn commands_default_to_serve() {
        assert!(matches!(parse_args(&[]), Ok(Parsed::Run(Example::Serve))));
        assert!(matches!(
            parse_args(&["serve"]),
            Ok(Parsed::Run(Example::Serve))
        ));
        assert!(matches!(
            parse_args(&["migrate"]),
            Ok(Parsed::Run(Example::Migrate))
        ));
        assert!(matches!(parse_args(&["config"]), Ok(Parsed::PrintConfig)));
    }

    #[test]
    fn help_is_success_and_unknown_input_is_a_usage_error() {
        for help in [&["--help"][..], &["-h"], &["help"], &["migrate", "--help"]] {
            let err = parse_args(help).unwrap_err();
            assert_eq!(err.exit_code(), 0, "{help:?}");
        }
        let help = parse_args(&["--help"]).unwrap_err().to_string();
        for line in [
            "An example service",
            "serve",
            "migrate",
            "config",
            "Apply the database",
        ] {
            assert!(help.contains(line), "{line:?} missing from:\n{help}");
        }
        for bad in [
            &["--verbose"][..],
            &["deploy"],
            &["serve", "extra"],
            &["migrate", "-x"],
        ] {
            let err = parse_args(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
