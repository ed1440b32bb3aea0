//! The `bookings` binary: `bookings --help` lists its commands.

flightmesh_runtime::service_main!(flightmesh_bookings::Command);
