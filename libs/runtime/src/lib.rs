//! What every flightmesh service runs on.
//!
//! - [`cli`]: the skeleton of every service binary ([`run_service`]).
//! - [`caller`]: the caller the gateway forwards as metadata, and the access policy's words.
//! - [`config`]: typed environment configuration; errors name the variable.
//! - [`telemetry`]: the process's tracing subscriber (JSON or text logs).
//! - [`shutdown`]: a cancellation token tripped by SIGTERM/SIGINT.
//! - [`host`]: binds the gRPC and admin ports, adds health (NOT_SERVING while draining) and
//!   reflection, runs background tasks and stops everything in order.
//! - [`metrics`]: the Prometheus recorder and per-RPC RED metrics.
//! - [`channel`]: gRPC client channels with deadlines and keep-alives.
//! - [`backoff`]: capped exponential backoff for retries.
//! - [`supervise`]: long-running tasks whose unexpected end stops the process (non-zero exit).
//! - [`shed`]: load shedding, a bound on calls in flight with fast UNAVAILABLE beyond it.

pub mod admin;
pub mod backoff;
pub mod caller;
pub mod channel;
pub mod cli;
pub mod config;
pub mod host;
pub mod metrics;
pub mod peers;
pub mod series;
pub mod shed;
pub mod shutdown;
pub mod status;
pub mod supervise;
pub mod telemetry;
pub mod trace;
pub mod ttl_cache;

pub use cli::{BoxError, run_service};
pub use config::{ConfigError, Env, Secret, Var};

pub use host::{Host, HostConfig, HostError, Listeners};
pub use shutdown::CancellationToken;
