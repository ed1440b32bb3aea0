//! The `stats-worker` binary: `stats-worker --help` lists its commands.

flightmesh_runtime::service_main!(flightmesh_stats_worker::Command);
