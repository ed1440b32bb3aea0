//! `flightmesh up [--demo]`: the whole mesh on this machine, in one process.
//! `flightmesh config-docs`: the configuration tables of every service (for the README).

/// The binary's allocator: mimalloc with the `mimalloc` feature (the default), as the services'.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use flightmesh::{BoxError, Stack, config_docs, demo, deps};
use flightmesh_runtime::config::Env;
use flightmesh_runtime::telemetry::{self, TelemetryConfig};
use flightmesh_runtime::{channel, shutdown};

/// The developer command of flightmesh.
#[derive(Debug, Parser)]
#[command(name = "flightmesh")]
enum Cli {
    /// Run the whole mesh on this machine, in one process (Ctrl-C stops it)
    Up {
        /// Load the demo catalog (Cartagena, …) once the mesh is up
        #[arg(long)]
        demo: bool,
    },
    /// Print every service's configuration tables (the README's, see scripts/readme-config.sh)
    ConfigDocs,
}

#[tokio::main]
#[allow(clippy::print_stdout)]
async fn main() -> ExitCode {
    match Cli::parse() {
        Cli::Up { demo } => match up(demo).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("flightmesh: {}", telemetry::error_chain(err.as_ref()));
                ExitCode::FAILURE
            }
        },
        Cli::ConfigDocs => {
            print!("{}", config_docs());
            ExitCode::SUCCESS
        }
    }
}

#[allow(clippy::print_stdout)]
async fn up(demo: bool) -> Result<(), BoxError> {
    // Developers read logs as text; everything binds to loopback unless told otherwise.
    let env = Env::process()
        .with_default("LOG_FORMAT", "text")
        .with_default("HTTP_ADDR", "127.0.0.1:8080")
        .with_default("DRAIN_DELAY", "0s")
        .with_default("GATEWAY_ADMIN_ADDR", "127.0.0.1:8081")
        // A developer's machine: the development signing key, and the policy the old clients need
        // (read by the gateway and by bookings, which enforces booking ownership itself).
        .with_default("ENVIRONMENT", "development")
        .with_default("ACCESS_POLICY", "compatible");
    let env = ["FLIGHTS", "BOOKINGS", "STATS", "AI"]
        .iter()
        .zip([50051, 50052, 50053, 50054])
        .fold(env, |env, (service, port)| {
            env.with_default(format!("{service}_GRPC_ADDR"), format!("127.0.0.1:{port}"))
                .with_default(
                    format!("{service}_ADMIN_ADDR"),
                    format!("127.0.0.1:{}", port + 1000),
                )
        });
    telemetry::init(&TelemetryConfig::from_env(&env)?, "flightmesh");

    if let Some(dep) = deps::first_unreachable(&deps::dependencies(&env)).await {
        return Err(format!(
            "{} is not reachable at {} (set {} or start it: see README, \"Running it\")",
            dep.name, dep.address, dep.variable
        )
        .into());
    }
    let db = flightmesh_db::DbConfig::from_env(&env)?;
    if flightmesh_db::ensure_database(&db.url).await? {
        println!("flightmesh: created the database");
    }

    let stack = Stack::start(&env).await?;
    let addrs = stack.addrs;
    if demo {
        let created =
            demo::load(channel::lazy_channel(&format!("http://{}", addrs.flights))?).await?;
        println!("flightmesh: demo catalog loaded ({created} new rows)");
    }
    println!(
        "flightmesh is up: REST http://{gw}/api/v1 (docs http://{gw}/docs, metrics http://{}/metrics) · gRPC flights {} bookings {} stats {} ai {} · Ctrl-C stops it",
        addrs.gateway_admin,
        addrs.flights,
        addrs.bookings,
        addrs.stats,
        addrs.ai,
        gw = addrs.gateway
    );
    let token = stack.shutdown_token();
    let signal = shutdown::on_signal();
    tokio::spawn(async move {
        signal.cancelled().await;
        token.cancel();
    });
    stack.wait().await
}
