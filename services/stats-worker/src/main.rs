//! `stats-worker [serve|rebuild]`: the stats worker binary.

use std::process::ExitCode;

use flightmesh_runtime::cli::{self, Command};
use flightmesh_runtime::{Env, shutdown};
use flightmesh_stats_worker::{Config, rebuild, serve};

#[tokio::main]
#[allow(clippy::print_stdout)]
async fn main() -> ExitCode {
    let command = match cli::start_with(
        "stats-worker",
        &Config::vars(),
        &[(
            "rebuild",
            "recompute the statistics from the bookings service and swap them in",
        )],
    ) {
        Ok(command) => command,
        Err(code) => return code,
    };
    cli::exit(
        async {
            let config = Config::from_env(&Env::process())?;
            match command {
                Command::Serve => serve(config, shutdown::on_signal()).await,
                Command::Migrate => Ok(()),
                Command::Other(_) => {
                    let report = rebuild(&config).await?;
                    println!(
                        "rebuilt: {} bookings read, {} facts applied",
                        report.bookings_read, report.events_applied
                    );
                    Ok(())
                }
            }
        }
        .await,
    )
}
