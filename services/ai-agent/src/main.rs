//! `ai-agent [serve]`.

use std::process::ExitCode;

use flightmesh_ai_agent::{Config, serve};
use flightmesh_runtime::cli::{self, Command};
use flightmesh_runtime::{Env, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match cli::start("ai-agent", &Config::vars()) {
        Ok(command) => command,
        Err(code) => return code,
    };
    cli::exit(
        async {
            let config = Config::from_env(&Env::process())?;
            match command {
                Command::Serve => serve(config, shutdown::on_signal()).await,
                Command::Migrate => Ok(()),
                Command::Other(other) => Err(format!("unknown command {other}").into()),
            }
        }
        .await,
    )
}
