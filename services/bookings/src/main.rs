//! The `bookings` binary: `bookings --help` lists its commands.

fn main() -> std::process::ExitCode {
    flightmesh_runtime::cli::run_service::<flightmesh_bookings::Command>()
}
