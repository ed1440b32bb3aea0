//! `stats-worker [serve]`.

use std::process::ExitCode;

use flightmesh_runtime::cli::{self, Command};
use flightmesh_runtime::{Env, shutdown};
use flightmesh_stats_worker::{Config, serve};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match cli::start("stats-worker", &Config::vars()) {
        Ok(command) => command,
        Err(code) => return code,
    };
    cli::exit(
        async {
            let config = Config::from_env(&Env::process())?;
            match command {
                Command::Serve => serve(config, shutdown::on_signal()).await,
                Command::Migrate => Ok(()),
            }
        }
        .await,
    )
}
