//! The `flights` binary: `flights --help` lists its commands.

flightmesh_runtime::service_main!(flightmesh_flights::Command);
