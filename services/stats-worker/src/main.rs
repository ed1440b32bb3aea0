//! The `stats-worker` binary: `stats-worker --help` lists its commands.

fn main() -> std::process::ExitCode {
    flightmesh_runtime::cli::run_service::<flightmesh_stats_worker::Command>()
}
