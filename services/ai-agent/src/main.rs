//! `ai-agent [serve|reembed]`.

use std::process::ExitCode;

use flightmesh_ai_agent::{Config, reembed, serve};
use flightmesh_runtime::cli::{self, Command};
use flightmesh_runtime::{Env, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match cli::start_with(
        "ai-agent",
        &Config::vars(),
        &[(
            "reembed",
            "re-embed every destination description with the configured embedder, and exit",
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
                Command::Other("reembed") => reembed(&config).await.map(drop),
                Command::Other(other) => Err(format!("unknown command {other}").into()),
            }
        }
        .await,
    )
}
