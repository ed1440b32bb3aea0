//! The `ai-agent` binary: `ai-agent --help` lists its commands.

flightmesh_runtime::service_main!(flightmesh_ai_agent::Command);
