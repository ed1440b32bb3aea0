//! The `flights` binary: `flights --help` lists its commands.

fn main() -> std::process::ExitCode {
    flightmesh_runtime::cli::run_service::<flightmesh_flights::Command>()
}
