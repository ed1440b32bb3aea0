//! The `ai-agent` binary: `ai-agent --help` lists its commands.

fn main() -> std::process::ExitCode {
    flightmesh_runtime::cli::run_service::<flightmesh_ai_agent::Command>()
}
