//! The `gateway` binary: `gateway --help` lists its commands.

flightmesh_runtime::service_main!(flightmesh_gateway::Command);
