//! `gateway [serve]`: the REST edge binary.

use std::process::ExitCode;

use flightmesh_gateway::{Config, migrate, serve};
use flightmesh_runtime::cli::{self, Command};
use flightmesh_runtime::{Env, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match cli::start("gateway", &Config::vars()) {
        Ok(command) => command,
        Err(code) => return code,
    };
    cli::exit(
        async {
            let config = Config::from_env(&Env::process())?;
            match command {
                Command::Serve => serve(config, shutdown::on_signal()).await,
                Command::Migrate => Ok(migrate(&config.db).await.map(drop)?),
                Command::Other(other) => Err(format!("unknown command {other}").into()),
            }
        }
        .await,
    )
}
